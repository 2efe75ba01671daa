//! Clock sync and the mapping from server time to steps.
//!
//! A client sends `CLOCK_SYNC {clientTime}`; the server answers with its own time. Whatever the
//! delays were, the server read its clock somewhere between the client's send and receive, so
//! each round trip *bounds* the offset (server clock minus client clock):
//! `serverTime - receivedAt <= offset <= serverTime - sentAt`. [`ClockEstimator`] intersects
//! those intervals over a window of recent round trips and takes the middle. The lower bound is
//! set by the fastest trip back and the upper by the fastest trip out, so jitter shrinks the
//! interval quickly (the error falls like 1/n with n samples, where averaging falls like
//! 1/sqrt(n)), a slow or delayed sample can only loosen it, and a main thread that reads its
//! clock late only makes a bound looser, never wrong. What no round-trip sync can see is a
//! path that is slower one way than the other: the estimate is then off by half the difference.

use std::collections::VecDeque;

use crate::sorted;

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
    /// This round trip's own estimate: server clock minus client clock, assuming equal delays.
    pub fn offset(&self) -> f64 {
        self.server_time + self.rtt() / 2.0 - self.received_at
    }
    /// The offset cannot be below this (the answer cannot arrive before the server sent it).
    fn low(&self) -> f64 {
        self.server_time - self.received_at
    }
    /// The offset cannot be above this (the server cannot answer before the request was sent).
    fn high(&self) -> f64 {
        self.server_time - self.sent_at
    }
}

/// How a client paces its clock-sync requests: a burst at connect, then a steady trickle.
pub mod pace {
    /// Requests in the burst after connecting...
    pub const BURST: usize = 60;
    /// ... one every this many ms.
    pub const BURST_EVERY_MS: f64 = 50.0;
    /// Afterwards, one every this many ms.
    pub const STEADY_EVERY_MS: f64 = 500.0;
}

/// Estimates the offset from a client clock to the server clock from recent round trips.
#[derive(Clone, Debug, Default)]
pub struct ClockEstimator {
    samples: VecDeque<SyncSample>,
}

impl ClockEstimator {
    /// At most this many recent samples are kept...
    pub const WINDOW: usize = 96;
    /// ... and none older than this (ms) next to the newest: clocks drift apart (tens of ppm),
    /// so old bounds would pull the estimate towards the past.
    pub const MAX_AGE_MS: f64 = 30_000.0;
    /// Samples needed before the estimate is trusted whatever it says ([`Self::is_ready`]).
    pub const READY_SAMPLES: usize = pace::BURST;
    /// Fewer samples suffice when their halves agree to within this (ms).
    pub const READY_AGREEMENT_MS: f64 = 0.5;
    /// The fewest samples for that early readiness.
    pub const READY_MIN_SAMPLES: usize = 8;
    /// The most extreme bounds on each side left out of the intersection (fewer while there
    /// are few samples): outliers that cannot be trusted.
    pub const OUTLIERS: usize = 2;

    pub fn add(&mut self, s: SyncSample) {
        if !(s.sent_at.is_finite() && s.server_time.is_finite() && s.received_at.is_finite())
            || s.received_at < s.sent_at
        {
            return;
        }
        self.samples.push_back(s);
        while self.samples.len() > Self::WINDOW
            || self
                .samples
                .front()
                .is_some_and(|f| s.received_at - f.received_at > Self::MAX_AGE_MS)
        {
            self.samples.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Server time minus client time, or `None` before the first sample.
    pub fn offset(&self) -> Option<f64> {
        Self::estimate(&self.samples.iter().collect::<Vec<_>>())
    }

    fn estimate(samples: &[&SyncSample]) -> Option<f64> {
        let mut lows: Vec<f64> = samples.iter().map(|s| s.low()).collect();
        let mut highs: Vec<f64> = samples.iter().map(|s| s.high()).collect();
        if lows.is_empty() {
            return None;
        }
        // The tightest bounds, less the most extreme few: a server that stamped a reply with a
        // stale clock (or any other bad sample) gives a bound that is simply wrong, and one
        // wrong bound would move a plain intersection; a few are ignored.
        let k = Self::OUTLIERS.min((lows.len() - 1) / 4);
        sorted::sort_by(&mut lows, |a, b| b.total_cmp(a));
        sorted::sort_by(&mut highs, f64::total_cmp);
        let (lo, hi) = (lows[k], highs[k]);
        if lo <= hi {
            return Some((lo + hi) / 2.0);
        }
        // No offset fits every sample: a clock stepped or drifted within the window. Trust the
        // round trips with the smallest delay.
        let mut best = samples.to_vec();
        sorted::sort_by(&mut best, |a, b| a.rtt().total_cmp(&b.rtt()));
        best.truncate(4);
        Some(best.iter().map(|s| s.offset()).sum::<f64>() / best.len() as f64)
    }

    /// How far the estimate may be off, as a number to show a player: how much the estimates
    /// from the older and the newer half of the window disagree with the whole. `None` with
    /// fewer than four samples.
    pub fn uncertainty(&self) -> Option<f64> {
        let n = self.samples.len();
        if n < 4 {
            return None;
        }
        let all = self.offset()?;
        let samples: Vec<&SyncSample> = self.samples.iter().collect();
        let older = Self::estimate(&samples[..n / 2])?;
        let newer = Self::estimate(&samples[n / 2..])?;
        Some((older - all).abs().max((newer - all).abs()))
    }

    /// Whether the estimate is good enough to schedule sound by: the full burst of samples,
    /// or fewer that already agree (a fast, steady link).
    pub fn is_ready(&self) -> bool {
        self.samples.len() >= Self::READY_SAMPLES
            || (self.samples.len() >= Self::READY_MIN_SAMPLES
                && self
                    .uncertainty()
                    .is_some_and(|u| u <= Self::READY_AGREEMENT_MS))
    }

    /// The smallest round trip in the window.
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

/// How far ahead of the server's clock a shared transport change (play, stop, a new tempo) is
/// anchored, so that it reaches every player before it is due: the base lead, or more when a
/// player's round trip needs it (its one-way delay, its jitter and its scheduling, generously
/// covered by one whole round trip plus a margin). Bounded so a lying client cannot stall play.
pub fn transport_lead_ms(base_ms: f64, slowest_rtt_ms: Option<f64>) -> f64 {
    const MARGIN_MS: f64 = 150.0;
    const MAX_LEAD_MS: f64 = 2_000.0;
    match slowest_rtt_ms {
        Some(rtt) if rtt.is_finite() && rtt > 0.0 => {
            base_ms.max((rtt + MARGIN_MS).min(MAX_LEAD_MS))
        }
        _ => base_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round trip with the given one-way delays against a client clock `offset` ms behind.
    fn trip(sent: f64, offset: f64, up: f64, down: f64) -> SyncSample {
        SyncSample {
            sent_at: sent,
            server_time: sent + up + offset,
            received_at: sent + up + down,
        }
    }

    #[test]
    fn symmetric_delay_recovers_offset() {
        let mut c = ClockEstimator::default();
        for (i, d) in [5.0, 40.0, 3.0, 12.0, 80.0, 4.0].iter().enumerate() {
            c.add(trip(i as f64 * 100.0, 1000.0, *d, *d));
        }
        assert!((c.offset().unwrap() - 1000.0).abs() < 1e-9);
        assert_eq!(c.best_rtt(), Some(6.0));
    }

    #[test]
    fn a_slow_lopsided_trip_cannot_move_the_estimate() {
        let mut c = ClockEstimator::default();
        for i in 0..10 {
            c.add(trip(i as f64 * 100.0, 500.0, 1.0, 1.0));
        }
        c.add(trip(2000.0, 500.0, 100.0, 2.0));
        c.add(trip(2100.0, 500.0, 2.0, 100.0));
        assert!((c.offset().unwrap() - 500.0).abs() < 1e-9);
    }

    /// Seeded jitter: the intersection converges far below the jitter, where the old "average
    /// of the four fastest" did not.
    #[test]
    fn jitter_is_intersected_away() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        for (base, jitter) in [(50.0, 10.0), (125.0, 25.0)] {
            let mut worst: f64 = 0.0;
            for _ in 0..200 {
                let mut c = ClockEstimator::default();
                for i in 0..pace::BURST {
                    let up = base + (uniform() * 2.0 - 1.0) * jitter;
                    let down = base + (uniform() * 2.0 - 1.0) * jitter;
                    c.add(trip(i as f64 * 50.0, -7_000.0, up, down));
                }
                assert!(c.is_ready());
                worst = worst.max((c.offset().unwrap() + 7_000.0).abs());
            }
            assert!(worst < jitter * 0.25, "{base}±{jitter}: worst {worst}");
        }
    }

    /// A reply stamped with a stale server clock (its bound excludes the true offset) does not
    /// move the estimate, nor do two of them.
    #[test]
    fn a_few_wrong_bounds_are_ignored() {
        let mut c = ClockEstimator::default();
        for i in 0..40 {
            c.add(trip(i as f64 * 50.0, 300.0, 20.0, 20.0));
        }
        let good = c.offset().unwrap();
        for i in 0..2 {
            let mut s = trip(2000.0 + i as f64 * 50.0, 300.0, 20.0, 20.0);
            s.server_time -= 10.0; // stamped 10 ms before it was really read
            c.add(s);
        }
        assert_eq!(c.offset().unwrap(), good);
        assert!((good - 300.0).abs() < 1e-9);
    }

    #[test]
    fn asymmetric_paths_cost_half_the_difference() {
        let mut c = ClockEstimator::default();
        for i in 0..20 {
            c.add(trip(i as f64 * 50.0, 0.0, 10.0, 90.0));
        }
        assert!((c.offset().unwrap() - -40.0).abs() < 1e-9);
    }

    #[test]
    fn old_samples_leave_the_window() {
        let mut c = ClockEstimator::default();
        c.add(trip(0.0, 0.0, 1.0, 1.0));
        // The clock steps by 10 ms; once the old sample is out of the window, only the new
        // clock counts.
        c.add(trip(ClockEstimator::MAX_AGE_MS + 10.0, 10.0, 1.0, 1.0));
        assert_eq!(c.len(), 1);
        assert!((c.offset().unwrap() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn contradictory_samples_fall_back_to_the_fastest() {
        let mut c = ClockEstimator::default();
        c.add(trip(0.0, 0.0, 1.0, 1.0));
        c.add(trip(100.0, 20.0, 2.0, 2.0));
        let o = c.offset().unwrap();
        assert!((0.0..=20.0).contains(&o), "{o}");
    }

    #[test]
    fn readiness_needs_agreement_or_the_full_burst() {
        let mut c = ClockEstimator::default();
        for i in 0..ClockEstimator::READY_MIN_SAMPLES {
            assert!(!c.is_ready());
            c.add(trip(i as f64 * 50.0, 3.0, 0.5, 0.5));
        }
        assert!(c.is_ready(), "a steady local link is ready early");
        let mut slow = ClockEstimator::default();
        for i in 0..pace::BURST {
            assert!(!slow.is_ready() || i >= ClockEstimator::READY_MIN_SAMPLES);
            let wobble = if i % 2 == 0 { 20.0 } else { 0.0 };
            slow.add(trip(i as f64 * 50.0, 3.0, 50.0 + wobble, 70.0 - wobble));
        }
        assert!(slow.is_ready());
    }

    #[test]
    fn nonsense_samples_are_ignored() {
        let mut c = ClockEstimator::default();
        c.add(SyncSample {
            sent_at: f64::NAN,
            server_time: 1.0,
            received_at: 2.0,
        });
        c.add(SyncSample {
            sent_at: 5.0,
            server_time: 1.0,
            received_at: 2.0,
        });
        assert!(c.is_empty());
    }

    #[test]
    fn lead_covers_the_slowest_round_trip() {
        assert_eq!(transport_lead_ms(250.0, None), 250.0);
        assert_eq!(transport_lead_ms(250.0, Some(2.0)), 250.0);
        assert_eq!(transport_lead_ms(250.0, Some(250.0)), 400.0);
        assert_eq!(transport_lead_ms(250.0, Some(1e9)), 2_000.0);
        assert_eq!(transport_lead_ms(250.0, Some(f64::NAN)), 250.0);
    }

    #[test]
    fn steps_and_ms_are_inverse() {
        for t in [60u16, 97, 120, 180] {
            assert!((steps_per_ms(t) * step_ms(t) - 1.0).abs() < 1e-12);
        }
        assert_eq!(step_ms(120), 125.0);
    }
}
