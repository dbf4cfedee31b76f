//! Retries of OSS requests: how many attempts, how long to back off, whether the shared
//! retry budget still allows one, and the caller's deadline.
//!
//! **Backoff.** Retry `n` (1-based) waits a random time between half of and all of
//! `min(max_delay, base_delay × 4^(n-1))` ("equal jitter"), so replicas that failed together
//! do not come back together.
//!
//! **Budget.** Retries multiply load on a service that is already failing. One
//! [`RetryBudget`] per [`Client`](super::Client) caps them, in the manner of gRPC's retry
//! throttling and the AWS SDKs' retry quota: a token bucket that every request adds
//! `ratio` tokens to, that refills by `min_per_sec` tokens a second on its own, that holds at
//! most `burst` tokens (it starts full), and that every retry takes one token from. Over
//! time retries are therefore at most `ratio` × requests + `min_per_sec` × seconds, and a
//! burst of failures can spend at most `burst` retries at once. When the bucket is empty the
//! request fails with its last error at once (still marked retryable, so the caller's own
//! backoff applies), a warning is logged, [`RetryBudget::denied`] counts it and so does
//! the metric `ossgate_oss_retries_refused_total{operation}` (through [`Retrier::allow`],
//! which every retry asks; a retry ruled out by the attempt limit or the deadline never asks,
//! so it is not counted there).
//!
//! **Deadline.** [`with_deadline`] runs a future with a deadline (the gRPC layer sets it
//! from `grpc-timeout`); [`deadline`] reads it. The client bounds each attempt by it and does
//! not start a retry whose backoff would end after it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How requests are retried. `Default` is the documented configuration default.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryConfig {
    /// Attempts per request, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry; ×4 for each further retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Tokens each request adds to the budget (0.1 = retries may be 10% of requests).
    pub budget_ratio: f64,
    /// Tokens the budget regains per second by itself (a floor for quiet periods).
    pub budget_min_per_sec: f64,
    /// Most tokens the budget holds (and starts with): the largest burst of retries.
    pub budget_burst: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            budget_ratio: 0.1,
            budget_min_per_sec: 10.0,
            budget_burst: 100,
        }
    }
}

impl RetryConfig {
    /// The backoff before retry `retry` (1 = the first retry), for a `jitter` in `0.0..=1.0`
    /// (0 = half the ceiling, 1 = all of it).
    pub fn backoff_with(&self, retry: u32, jitter: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(16);
        let ceiling = self
            .base_delay
            .saturating_mul(4u32.saturating_pow(exponent))
            .min(self.max_delay);
        ceiling.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The backoff before retry `retry` (1 = the first retry), randomly jittered.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff_with(retry, rand::random_range(0.0..=1.0))
    }
}

/// A token bucket that limits retries to a share of requests plus a floor per second.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_per_sec: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
    denied: AtomicU64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl RetryBudget {
    /// A full budget with `config`'s ratio, floor and burst.
    pub fn new(config: &RetryConfig) -> Self {
        Self::new_at(config, Instant::now())
    }

    /// [`RetryBudget::new`] at a given time (for tests).
    pub fn new_at(config: &RetryConfig, now: Instant) -> Self {
        let burst = f64::from(config.budget_burst);
        Self {
            ratio: config.budget_ratio.max(0.0),
            min_per_sec: config.budget_min_per_sec.max(0.0),
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                refilled_at: now,
            }),
            denied: AtomicU64::new(0),
        }
    }

    fn with_bucket<T>(&self, now: Instant, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(bucket.refilled_at);
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * self.min_per_sec).min(self.burst);
        bucket.refilled_at = bucket.refilled_at.max(now);
        f(&mut bucket)
    }

    /// A request was made (its first attempt): adds `ratio` tokens.
    pub fn on_request(&self) {
        self.on_request_at(Instant::now());
    }

    /// [`RetryBudget::on_request`] at a given time.
    pub fn on_request_at(&self, now: Instant) {
        self.with_bucket(now, |b| b.tokens = (b.tokens + self.ratio).min(self.burst));
    }

    /// Takes one token for a retry; `false` (and counted as denied) when there is none.
    pub fn try_retry(&self) -> bool {
        self.try_retry_at(Instant::now())
    }

    /// [`RetryBudget::try_retry`] at a given time.
    pub fn try_retry_at(&self, now: Instant) -> bool {
        let granted = self.with_bucket(now, |b| {
            // (The epsilon forgives float rounding: ten deposits of 0.1 make one token.)
            if b.tokens >= 1.0 - 1e-9 {
                b.tokens = (b.tokens - 1.0).max(0.0);
                true
            } else {
                false
            }
        });
        if !granted {
            self.denied.fetch_add(1, Ordering::Relaxed);
        }
        granted
    }

    /// Tokens available now (whole retries allowed right away = its floor).
    pub fn available(&self) -> f64 {
        self.with_bucket(Instant::now(), |b| b.tokens)
    }

    /// Retries refused so far because the budget was empty.
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }
}

/// A [`RetryConfig`] and the budget it governs, shared by every request of one client.
#[derive(Debug)]
pub struct Retrier {
    /// The configuration.
    pub config: RetryConfig,
    /// The shared budget.
    pub budget: RetryBudget,
    /// When the last "budget exhausted" warning was logged (at most one a second).
    created: Instant,
    last_warning_ms: AtomicU64,
}

impl Retrier {
    /// A retrier with a full budget.
    pub fn new(config: RetryConfig) -> Self {
        let budget = RetryBudget::new(&config);
        Self {
            config,
            budget,
            created: Instant::now(),
            last_warning_ms: AtomicU64::new(u64::MAX),
        }
    }

    /// Asks the budget for one retry of `operation`; when it is refused, counts it in
    /// `ossgate_oss_retries_refused_total{operation}` and logs a warning (at most one a
    /// second, with the running count of refusals).
    pub fn allow(&self, operation: &str, error: &dyn std::fmt::Display) -> bool {
        if self.budget.try_retry() {
            return true;
        }
        crate::telemetry::metrics().record_retry_refused(operation);
        let now_ms = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now_ms.saturating_sub(last) >= 1000;
        if due
            && self
                .last_warning_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                target: "ossgate::oss::retry",
                operation,
                denied_total = self.budget.denied(),
                error = %error,
                "OSS retry budget exhausted: failing without retrying"
            );
        }
        false
    }
}

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `future` with `deadline` (the earlier one wins if a deadline is already set).
pub async fn with_deadline<F: Future>(deadline: Instant, future: F) -> F::Output {
    let deadline = self::deadline().map_or(deadline, |outer| outer.min(deadline));
    DEADLINE.scope(deadline, future).await
}

/// The deadline of the call this task is running, if it has one.
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Whether waiting `delay` from now would end after `deadline`.
pub fn passes_deadline(deadline: Option<Instant>, delay: Duration) -> bool {
    deadline.is_some_and(|d| Instant::now().checked_add(delay).is_none_or(|end| end >= d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ratio: f64, min_per_sec: f64, burst: u32) -> RetryConfig {
        RetryConfig {
            budget_ratio: ratio,
            budget_min_per_sec: min_per_sec,
            budget_burst: burst,
            ..RetryConfig::default()
        }
    }

    #[test]
    fn backoff_grows_fourfold_is_capped_and_jittered_within_half_to_all() {
        let c = RetryConfig {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryConfig::default()
        };
        assert_eq!(c.backoff_with(1, 1.0), Duration::from_millis(100));
        assert_eq!(c.backoff_with(1, 0.0), Duration::from_millis(50));
        assert_eq!(c.backoff_with(2, 1.0), Duration::from_millis(400));
        assert_eq!(
            c.backoff_with(3, 1.0),
            Duration::from_millis(1000),
            "capped"
        );
        assert_eq!(c.backoff_with(3, 0.0), Duration::from_millis(500));
        assert_eq!(c.backoff_with(u32::MAX, 1.0), Duration::from_millis(1000));
        for retry in 1..6 {
            let d = c.backoff(retry);
            let ceiling = c.backoff_with(retry, 1.0);
            assert!(d >= ceiling / 2 && d <= ceiling, "{retry}: {d:?}");
        }
    }

    #[test]
    fn an_empty_budget_refuses_until_requests_or_time_refill_it() {
        let t0 = Instant::now();
        let budget = RetryBudget::new_at(&config(0.1, 0.0, 3), t0);
        // Starts full: a burst of `burst` retries.
        assert!(budget.try_retry_at(t0));
        assert!(budget.try_retry_at(t0));
        assert!(budget.try_retry_at(t0));
        assert!(!budget.try_retry_at(t0));
        assert_eq!(budget.denied(), 1);
        // Ten requests earn one retry at a ratio of 0.1.
        for _ in 0..9 {
            budget.on_request_at(t0);
        }
        assert!(!budget.try_retry_at(t0), "0.9 tokens are not a retry");
        budget.on_request_at(t0);
        assert!(budget.try_retry_at(t0));
        assert!(!budget.try_retry_at(t0));
        assert_eq!(budget.denied(), 3);
        // Without a floor, time alone gives nothing back.
        assert!(!budget.try_retry_at(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn the_floor_refills_over_time_up_to_the_burst() {
        let t0 = Instant::now();
        let budget = RetryBudget::new_at(&config(0.0, 2.0, 4), t0);
        for _ in 0..4 {
            assert!(budget.try_retry_at(t0));
        }
        assert!(!budget.try_retry_at(t0));
        // Two tokens a second: after half a second, one retry.
        let t1 = t0 + Duration::from_millis(500);
        assert!(budget.try_retry_at(t1));
        assert!(!budget.try_retry_at(t1));
        // A long quiet period refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..4 {
            assert!(budget.try_retry_at(t2));
        }
        assert!(!budget.try_retry_at(t2));
        // Requests never overfill it either.
        for _ in 0..1000 {
            budget.on_request_at(t2);
        }
        assert!(!budget.try_retry_at(t2), "a ratio of 0 earns nothing");
    }

    #[test]
    fn long_run_retries_are_bounded_by_ratio_and_floor() {
        // 10,000 requests over 10 s, every one failing and wanting a retry.
        let t0 = Instant::now();
        let budget = RetryBudget::new_at(&config(0.1, 5.0, 20), t0);
        let mut granted = 0u32;
        for i in 0..10_000u32 {
            let now = t0 + Duration::from_millis(u64::from(i));
            budget.on_request_at(now);
            if budget.try_retry_at(now) {
                granted += 1;
            }
        }
        // At most burst + ratio × requests + floor × seconds = 20 + 1000 + 50.
        assert!(granted <= 1070, "{granted}");
        assert!(granted >= 1000, "{granted}");
    }

    #[test]
    fn a_time_before_the_last_refill_does_not_go_back() {
        let t0 = Instant::now();
        let budget = RetryBudget::new_at(&config(0.0, 1.0, 1), t0 + Duration::from_secs(5));
        assert!(budget.try_retry_at(t0), "an earlier instant is harmless");
        assert!(!budget.try_retry_at(t0 + Duration::from_secs(5)));
        assert!(budget.try_retry_at(t0 + Duration::from_secs(6)));
    }

    #[test]
    fn the_retrier_grants_while_the_budget_lasts_and_counts_refusals() {
        let retrier = Retrier::new(config(0.0, 0.0, 1));
        assert!(retrier.allow("PUT ?tagging", &"503"));
        for _ in 0..5 {
            assert!(!retrier.allow("PUT ?tagging", &"503"));
        }
        assert_eq!(retrier.budget.denied(), 5);
        assert!(retrier.budget.available() < 1.0);
    }

    #[test]
    fn each_refusal_and_only_a_refusal_counts_in_the_refused_metric() {
        // An operation label no other test uses: the metrics are process-wide.
        const OP: &str = "TEST ?refused-metric";
        let refused = || {
            crate::telemetry::metrics()
                .oss_retries_refused
                .with_label_values(&[OP])
                .get()
        };
        let retrier = Retrier::new(config(0.0, 0.0, 2));
        assert!(retrier.allow(OP, &"503"));
        assert!(retrier.allow(OP, &"503"));
        assert_eq!(refused(), 0, "granted retries are not refusals");
        for _ in 0..3 {
            assert!(!retrier.allow(OP, &"503"));
        }
        assert_eq!(refused(), 3);
        assert_eq!(retrier.budget.denied(), 3);
    }

    #[tokio::test]
    async fn the_deadline_is_scoped_and_the_earlier_one_wins() {
        assert_eq!(deadline(), None);
        let now = Instant::now();
        let soon = now + Duration::from_secs(1);
        let later = now + Duration::from_secs(10);
        let seen = with_deadline(later, async {
            let inner = with_deadline(soon, async { deadline() }).await;
            (deadline(), inner)
        })
        .await;
        assert_eq!(seen, (Some(later), Some(soon)));
        let seen = with_deadline(soon, with_deadline(later, async { deadline() })).await;
        assert_eq!(
            seen,
            Some(soon),
            "an inner, later deadline does not extend the call"
        );
        assert_eq!(deadline(), None);
        assert!(passes_deadline(Some(now), Duration::ZERO));
        assert!(!passes_deadline(Some(later), Duration::from_millis(1)));
        assert!(!passes_deadline(None, Duration::MAX / 2));
    }
}
