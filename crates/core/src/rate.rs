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

/// A token bucket per client address (or any key), for the HTTP API's per-address limit on
/// creating things. Memory is bounded: past `max_keys` addresses every bucket is forgotten,
/// which only ever lets requests through.
#[derive(Clone, Debug)]
pub struct AddressLimiter<K> {
    buckets: std::collections::HashMap<K, TokenBucket>,
    per_sec: f64,
    burst: f64,
    max_keys: usize,
}

impl<K: std::hash::Hash + Eq> AddressLimiter<K> {
    pub fn new(per_sec: f64, burst: f64, max_keys: usize) -> AddressLimiter<K> {
        AddressLimiter {
            buckets: std::collections::HashMap::new(),
            per_sec,
            burst,
            max_keys,
        }
    }

    /// Whether `key` may make one more request at `now` (ms).
    pub fn allow(&mut self, key: K, now: f64) -> bool {
        if self.buckets.len() >= self.max_keys && !self.buckets.contains_key(&key) {
            self.buckets.clear();
        }
        let (per_sec, burst) = (self.per_sec, self.burst);
        self.buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(per_sec, burst, now))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_bucket_and_memory_is_bounded() {
        let mut l = AddressLimiter::new(1.0, 2.0, 3);
        assert!(l.allow("a", 0.0) && l.allow("a", 0.0) && !l.allow("a", 0.0));
        assert!(l.allow("b", 0.0));
        l.allow("c", 0.0);
        // A fourth address: the table is full, everything is forgotten (never a false refusal).
        assert!(l.allow("d", 0.0));
        assert!(l.allow("a", 0.0));
    }

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
