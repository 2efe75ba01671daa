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

/// Where the audio output is, from the browser's `getOutputTimestamp()` readings: the output's
/// lag (performance ms minus context ms, output latency included) that maps the engine's frames
/// to the moment they are heard.
///
/// One reading is not trustworthy on a busy machine: the browser stamps a reading when its audio
/// callback runs, and a callback that runs late makes that one reading's lag late by as much,
/// though nothing was heard later. Acting on it moves the schedule twice (there and back), which
/// players hear as two steps out of time. So the lag is the median of recent readings, and a
/// change of the lag (the output stalled or dropped audio, so everything after is heard earlier
/// or later) counts only once [`Self::CONFIRM`] readings in a row agree on it.
#[derive(Clone, Debug, Default)]
pub struct OutputClock {
    /// The current segment's lags (ms), newest last, at most [`Self::KEEP`].
    lags: VecDeque<f64>,
    /// Readings off the current lag, newest last: a jump if [`Self::CONFIRM`] of them agree.
    candidates: Vec<f64>,
    /// The last reading taken, to skip a repeat (no audio callback since).
    last: Option<(f64, f64)>,
    /// The lag moved since [`Self::take_jump`] was last asked.
    jumped: bool,
}

impl OutputClock {
    /// Readings whose median is the lag (about a third of a second when read every 25 ms): few
    /// enough to follow the audio clock's slow drift, many enough that a burst of late readings
    /// cannot move it.
    pub const KEEP: usize = 15;
    /// A reading further than this (ms) from the lag is not the same output position: a late
    /// reading, or the start of a jump.
    pub const JUMP_MS: f64 = 2.0;
    /// Readings in a row, within [`Self::JUMP_MS`] of each other and off the lag, that make a jump.
    pub const CONFIRM: usize = 3;

    /// Takes one `getOutputTimestamp()` reading (context seconds, performance ms); true if it
    /// confirmed a jump of the lag.
    pub fn read(&mut self, context_s: f64, performance_ms: f64) -> bool {
        if !(context_s.is_finite() && performance_ms.is_finite())
            || self.last == Some((context_s, performance_ms))
        {
            return false;
        }
        self.last = Some((context_s, performance_ms));
        let lag = performance_ms - context_s * 1000.0;
        let Some(current) = self.lag() else {
            self.lags.push_back(lag);
            return false;
        };
        if (lag - current).abs() <= Self::JUMP_MS {
            self.candidates.clear();
            self.lags.push_back(lag);
            if self.lags.len() > Self::KEEP {
                self.lags.pop_front();
            }
            return false;
        }
        // Off the lag: late, or a new lag. Candidates that disagree with this one are dropped.
        self.candidates.retain(|c| (c - lag).abs() <= Self::JUMP_MS);
        self.candidates.push(lag);
        if self.candidates.len() < Self::CONFIRM {
            return false;
        }
        self.lags = self.candidates.drain(..).collect();
        self.jumped = true;
        true
    }

    /// Readings taken in the current segment (since the first, or since the last jump).
    pub fn readings(&self) -> usize {
        self.lags.len()
    }

    /// The output's lag (ms): performance time at which context time 0 would be heard. None
    /// before the first reading.
    pub fn lag(&self) -> Option<f64> {
        if self.lags.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.lags.iter().copied().collect();
        sorted::sort_by(&mut v, f64::total_cmp);
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        })
    }

    /// Whether the lag jumped since the last call (and forgets it).
    pub fn take_jump(&mut self) -> bool {
        std::mem::take(&mut self.jumped)
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

    /// Readings every 25 ms of an output heard `lag` ms after its context time.
    fn feed(c: &mut OutputClock, from_ms: f64, n: usize, lag: impl Fn(usize) -> f64) {
        for i in 0..n {
            let ctx_s = (from_ms + i as f64 * 25.0) / 1000.0;
            c.read(ctx_s, ctx_s * 1000.0 + lag(i));
        }
    }

    #[test]
    fn output_clock_ignores_late_readings() {
        let mut c = OutputClock::default();
        assert_eq!(c.lag(), None);
        feed(&mut c, 0.0, 20, |_| 40.0);
        assert_eq!(c.lag(), Some(40.0));
        // Late callbacks: single readings, and two in a row, up to 30 ms late.
        feed(&mut c, 500.0, 12, |i| match i {
            3 => 70.0,
            6 | 7 => 45.0,
            9 => 43.0,
            _ => 40.0,
        });
        assert_eq!(c.lag(), Some(40.0));
        assert!(!c.take_jump(), "no jump from late readings");
        // A repeated reading (no callback since) counts once.
        let mut c = OutputClock::default();
        c.read(2.0, 2040.0);
        c.read(2.0, 2040.0);
        assert_eq!(c.readings(), 1);
    }

    #[test]
    fn output_clock_follows_a_jump_once_confirmed() {
        let mut c = OutputClock::default();
        feed(&mut c, 0.0, 20, |_| 40.0);
        // The output stalled: everything from now on is heard 90 ms later.
        feed(&mut c, 500.0, 2, |_| 130.0);
        assert_eq!(c.lag(), Some(40.0), "two readings do not make a jump");
        assert!(c.read(0.575, 575.0 + 130.1), "the third confirms it");
        assert_eq!(c.lag(), Some(130.0));
        assert!(c.take_jump());
        assert!(!c.take_jump(), "told once");
        // Dropped audio: heard earlier by 10 ms, with a late reading in between.
        feed(&mut c, 600.0, 5, |i| if i == 1 { 150.0 } else { 120.0 });
        assert_eq!(c.lag(), Some(120.0));
        assert!(c.take_jump());
    }

    #[test]
    fn output_clock_follows_drift() {
        let mut c = OutputClock::default();
        // 50 ppm of drift over a minute: 3 ms, in steps far below the jump threshold.
        feed(&mut c, 0.0, 2400, |i| 40.0 + i as f64 * 25.0 * 50e-6);
        let lag = c.lag().unwrap();
        assert!((lag - 43.0).abs() < 0.05, "{lag}");
        assert!(!c.take_jump());
    }
}
