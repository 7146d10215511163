//! A per-caller rate limit for `serve --http`: a token bucket per token name or OAuth subject.
//!
//! Each caller may send `rate` requests a second on average, in bursts of up to `burst`
//! (`PAYMENT_HTTP_RATE_LIMIT`, default 50 a second with bursts of 100: far above what an agent
//! needs, low enough that a runaway loop or a leaked token cannot flood the gateway). A request over
//! the limit is answered 429 with `Retry-After` and reaches no tool. Time is passed in, so the
//! bucket is a pure function tested without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this many callers, idle buckets (full again) are dropped, so made-up subjects cannot grow
/// the map without bound.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Requests a second, and the burst allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    /// Parses `PAYMENT_HTTP_RATE_LIMIT`: requests a second (burst twice that), or `off`.
    ///
    /// # Errors
    /// Not a positive number or `off`.
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        match t.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(Some(Rate { per_second: r, burst: (2.0 * r).max(1.0) })),
            _ => Err(format!(
                "PAYMENT_HTTP_RATE_LIMIT is `{t}`; set it to requests a second per caller (e.g. 50) or `off`"
            )),
        }
    }
}

/// The buckets of every caller.
pub struct RateLimiter {
    rate: Option<Rate>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(rate: Option<Rate>) -> RateLimiter {
        RateLimiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request from `caller`'s bucket at `now`; `Err` holds how long until one is free.
    pub fn check(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.rate else { return Ok(()) };
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > MAX_BUCKETS {
            buckets.retain(|_, b| refill(*b, rate, now).tokens < rate.burst);
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket { tokens: rate.burst, at: now });
        *bucket = refill(*bucket, rate, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate.per_second))
        }
    }
}

fn refill(b: Bucket, rate: Rate, now: Instant) -> Bucket {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    Bucket { tokens: (b.tokens + elapsed * rate.per_second).min(rate.burst), at: now }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_caller() {
        let limiter = RateLimiter::new(Some(Rate { per_second: 2.0, burst: 3.0 }));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", t0).is_ok());
        }
        let wait = limiter.check("a", t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500), "{wait:?}");
        assert!(limiter.check("b", t0).is_ok(), "another caller has its own bucket");
        assert!(limiter.check("a", t0 + Duration::from_millis(500)).is_ok());
        assert!(limiter.check("a", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn parsing() {
        assert_eq!(Rate::parse("off").unwrap(), None);
        assert_eq!(Rate::parse("10").unwrap(), Some(Rate { per_second: 10.0, burst: 20.0 }));
        assert!(Rate::parse("-1").is_err() && Rate::parse("x").is_err());
        assert!(RateLimiter::new(None).check("a", Instant::now()).is_ok());
    }
}
