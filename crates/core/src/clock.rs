//! Clock sync and the mapping from server time to steps.
//!
//! A client sends `CLOCK_SYNC {clientTime}`; the server answers with its own time. From each
//! round trip the client gets an offset estimate `serverTime + rtt/2 - receiveTime`; samples with
//! the smallest round trip are the most trustworthy, so [`ClockEstimator`] keeps a window of recent
//! samples and uses the best few.

/// 16th-note steps per millisecond at `tempo` BPM (four steps per beat).
pub fn steps_per_ms(tempo: u16) -> f64 {
    tempo as f64 * 4.0 / 60_000.0
}

/// Milliseconds per 16th-note step at `tempo` BPM.
pub fn step_ms(tempo: u16) -> f64 {
    60_000.0 / (tempo as f64 * 4.0)
}

/// One clock-sync round trip as the client saw it (all times in ms).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncSample {
    pub sent_at: f64,
    pub server_time: f64,
    pub received_at: f64,
}

impl SyncSample {
    pub fn rtt(&self) -> f64 {
        (self.received_at - self.sent_at).max(0.0)
    }
    /// Server clock minus client clock.
    pub fn offset(&self) -> f64 {
        self.server_time + self.rtt() / 2.0 - self.received_at
    }
}

/// Estimates the offset from a client clock to the server clock from recent round trips.
#[derive(Clone, Debug, Default)]
pub struct ClockEstimator {
    samples: Vec<SyncSample>,
}

impl ClockEstimator {
    /// Recent samples kept.
    pub const WINDOW: usize = 16;
    /// Samples with the smallest round trip averaged for the estimate.
    pub const BEST: usize = 4;

    pub fn add(&mut self, s: SyncSample) {
        if self.samples.len() == Self::WINDOW {
            self.samples.remove(0);
        }
        self.samples.push(s);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Server time minus client time, or `None` before the first sample.
    pub fn offset(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut best: Vec<&SyncSample> = self.samples.iter().collect();
        best.sort_by(|a, b| a.rtt().total_cmp(&b.rtt()));
        best.truncate(Self::BEST);
        Some(best.iter().map(|s| s.offset()).sum::<f64>() / best.len() as f64)
    }

    /// The smallest round trip seen in the window.
    pub fn best_rtt(&self) -> Option<f64> {
        self.samples.iter().map(|s| s.rtt()).min_by(f64::total_cmp)
    }

    pub fn to_server(&self, client_time: f64) -> Option<f64> {
        self.offset().map(|o| client_time + o)
    }

    pub fn to_client(&self, server_time: f64) -> Option<f64> {
        self.offset().map(|o| server_time - o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_delay_recovers_offset() {
        let mut c = ClockEstimator::default();
        // Client clock is 1000 ms behind the server; one-way delays vary.
        for (i, d) in [5.0, 40.0, 3.0, 12.0, 80.0, 4.0].iter().enumerate() {
            let sent = i as f64 * 100.0;
            let server = sent + 1000.0 + d;
            c.add(SyncSample {
                sent_at: sent,
                server_time: server,
                received_at: sent + 2.0 * d,
            });
        }
        assert!((c.offset().unwrap() - 1000.0).abs() < 1e-9);
        assert_eq!(c.best_rtt(), Some(6.0));
    }

    #[test]
    fn asymmetric_outliers_are_ignored_by_min_rtt_filter() {
        let mut c = ClockEstimator::default();
        for i in 0..10 {
            let sent = i as f64 * 100.0;
            c.add(SyncSample {
                sent_at: sent,
                server_time: sent + 500.0 + 1.0,
                received_at: sent + 2.0,
            });
        }
        // A slow, lopsided round trip: 100 ms out, 2 ms back.
        c.add(SyncSample {
            sent_at: 2000.0,
            server_time: 2000.0 + 500.0 + 100.0,
            received_at: 2102.0,
        });
        assert!((c.offset().unwrap() - 500.0).abs() < 1e-9);
    }

    #[test]
    fn steps_and_ms_are_inverse() {
        for t in [60u16, 97, 120, 180] {
            assert!((steps_per_ms(t) * step_ms(t) - 1.0).abs() < 1e-12);
        }
        assert_eq!(step_ms(120), 125.0);
    }
}
