//! A token bucket, for per-connection and per-address rate limits.

/// Allows `burst` events at once and `per_sec` events per second on average.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: f64,
    per_ms: f64,
    burst: f64,
}

impl TokenBucket {
    pub fn new(per_sec: f64, burst: f64, now: f64) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            last: now,
            per_ms: per_sec / 1000.0,
            burst,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: f64) -> bool {
        let dt = (now - self.last).max(0.0);
        self.last = now.max(self.last);
        self.tokens = (self.tokens + dt * self.per_ms).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let mut b = TokenBucket::new(10.0, 5.0, 0.0);
        assert_eq!((0..10).filter(|_| b.try_take(0.0)).count(), 5);
        assert!(!b.try_take(50.0));
        assert!(b.try_take(100.0));
        assert!(!b.try_take(100.0));
        // A long pause refills only up to the burst.
        assert_eq!((0..10).filter(|_| b.try_take(10_000.0)).count(), 5);
    }
}
