//! The one background task per process that fetches new credentials ahead of expiry, and its
//! timing: when to refresh, how to back off after a failure.

use std::fmt;
use std::time::{Duration, SystemTime};

use rand::Rng as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Credentials, CredentialsError, CredentialsProvider, TemporaryCredentials};

/// Never refresh more often than this, whatever the lifetime.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(500);
/// Refresh no later than this long before expiry (unless the lifetime is too short for it).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// First wait after a failed refresh; doubled per further failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between failed refreshes.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long before expiry to refresh credentials that are valid for `remaining`: the earlier
/// of "a quarter of the lifetime left" and "[`REFRESH_MARGIN`] left", but never more than
/// half the lifetime (short-lived credentials are still used for half their life).
pub fn refresh_margin(remaining: Duration) -> Duration {
    (remaining / 4).max(REFRESH_MARGIN).min(remaining / 2)
}

/// When to refresh credentials valid for `remaining`, as a delay from now, with up to a
/// fifth of the margin of random jitter (only ever earlier), so replicas started together
/// spread their STS calls. `unit` is a random number in `0.0..=1.0`.
pub fn refresh_delay(remaining: Duration, unit: f64) -> Duration {
    let margin = refresh_margin(remaining);
    let jitter = (margin / 5).mul_f64(unit.clamp(0.0, 1.0));
    remaining
        .saturating_sub(margin)
        .saturating_sub(jitter)
        .max(MIN_REFRESH_INTERVAL)
}

/// The wait after `failures` consecutive failed refreshes (1 = the first): exponential from
/// [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`], with "equal jitter" (between half and all of it)
/// from `unit` in `0.0..=1.0`; while the current credentials still work it also waits at most
/// half of their `remaining` time, so several attempts fit before they expire.
pub fn failure_backoff(failures: u32, remaining: Duration, unit: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = FIRST_BACKOFF.saturating_mul(1u32 << exp).min(MAX_BACKOFF);
    let base = if remaining.is_zero() {
        base
    } else {
        base.min(remaining / 2)
    };
    let jittered = base / 2 + (base / 2).mul_f64(unit.clamp(0.0, 1.0));
    jittered.max(MIN_REFRESH_INTERVAL)
}

/// Time left until `expiration` (zero when past).
pub fn remaining(expiration: SystemTime, now: SystemTime) -> Duration {
    expiration.duration_since(now).unwrap_or(Duration::ZERO)
}

/// The background task that keeps credentials fresh. Stop it with [`Refresher::stop`];
/// dropping it stops it too.
pub struct Refresher {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Refresher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresher")
            .field(
                "running",
                &self.task.as_ref().is_some_and(|t| !t.is_finished()),
            )
            .finish()
    }
}

impl Refresher {
    /// Spawns the refresh task for credentials that expire at `expiration` (already applied).
    /// Each new set goes to `apply`; `what` names the source in logs, unless the provider
    /// names itself ([`CredentialsProvider::name`]).
    pub fn spawn<P, F>(provider: P, expiration: SystemTime, what: &'static str, apply: F) -> Self
    where
        P: CredentialsProvider,
        F: Fn(Credentials) + Send + Sync + 'static,
    {
        let what = provider.name().unwrap_or(what);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut expiration = expiration;
            let mut failures: u32 = 0;
            loop {
                let left = remaining(expiration, SystemTime::now());
                let unit = rand::rng().random_range(0.0..=1.0);
                let delay = if failures == 0 {
                    refresh_delay(left, unit)
                } else {
                    failure_backoff(failures, left, unit)
                };
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(delay) => {}
                }
                match provider.fetch().await {
                    Ok(fresh) => {
                        let left = remaining(fresh.expiration, SystemTime::now());
                        tracing::info!(
                            source = what,
                            access_key_id = %fresh.credentials.access_key_id,
                            expires_in_secs = left.as_secs(),
                            "OSS credentials refreshed"
                        );
                        apply(fresh.credentials);
                        expiration = fresh.expiration;
                        if left.is_zero() {
                            // Expired on arrival: the local clock is ahead of the issuer's.
                            // Back off instead of asking again at once.
                            tracing::warn!(
                                source = what,
                                "the new OSS credentials have already expired by the local clock; check the clock"
                            );
                            failures = failures.saturating_add(1);
                        } else {
                            failures = 0;
                        }
                    }
                    Err(err) => {
                        failures = failures.saturating_add(1);
                        let left = remaining(expiration, SystemTime::now());
                        if left.is_zero() {
                            tracing::error!(
                                source = what,
                                failures,
                                "refreshing OSS credentials failed and the current ones have expired: {err}"
                            );
                        } else {
                            tracing::warn!(
                                source = what,
                                failures,
                                current_expire_in_secs = left.as_secs(),
                                "refreshing OSS credentials failed, will retry: {err}"
                            );
                        }
                    }
                }
            }
        });
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the task and waits for it (a fetch in progress is abandoned).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Fetches the first credentials at start, trying a transient failure (network, 5xx,
/// throttling) up to `attempts` times with a short backoff; a refusal fails at once.
pub async fn fetch_initial<P: CredentialsProvider>(
    provider: &P,
    attempts: u32,
) -> Result<TemporaryCredentials, CredentialsError> {
    let mut attempt = 1;
    loop {
        match provider.fetch().await {
            Ok(fresh) => return Ok(fresh),
            Err(err) if err.is_retryable() && attempt < attempts => {
                let unit = rand::rng().random_range(0.0..=1.0);
                let delay = failure_backoff(attempt, Duration::ZERO, unit);
                tracing::warn!(attempt, "fetching OSS credentials failed, retrying: {err}");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn margin_is_the_earlier_of_a_quarter_and_five_minutes_capped_at_half() {
        // One hour: a quarter (15 min) is earlier than 5 minutes before expiry.
        assert_eq!(refresh_margin(S(3600)), S(900));
        // 15 minutes (STS minimum): 5 minutes before expiry is earlier than a quarter.
        assert_eq!(refresh_margin(S(900)), S(300));
        // 12 hours (STS maximum).
        assert_eq!(refresh_margin(S(43200)), S(10800));
        // Short test lifetimes: half the lifetime.
        assert_eq!(refresh_margin(S(4)), S(2));
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn delay_is_jittered_only_earlier_and_bounded() {
        assert_eq!(refresh_delay(S(3600), 0.0), S(2700));
        assert_eq!(refresh_delay(S(3600), 1.0), S(2700 - 180));
        for unit in [0.0, 0.3, 0.77, 1.0, -5.0, 9.0] {
            let d = refresh_delay(S(900), unit);
            assert!(d <= S(600) && d >= S(540), "{d:?}");
        }
        // Expired or nearly expired: the floor, never a busy loop.
        assert_eq!(refresh_delay(Duration::ZERO, 0.5), MIN_REFRESH_INTERVAL);
        assert_eq!(
            refresh_delay(Duration::from_millis(100), 0.5),
            MIN_REFRESH_INTERVAL
        );
    }

    #[test]
    fn backoff_grows_caps_and_respects_the_remaining_lifetime() {
        assert_eq!(failure_backoff(1, Duration::ZERO, 1.0), S(1));
        assert_eq!(failure_backoff(2, Duration::ZERO, 1.0), S(2));
        assert_eq!(failure_backoff(3, Duration::ZERO, 0.0), S(2));
        assert_eq!(failure_backoff(10, Duration::ZERO, 1.0), MAX_BACKOFF);
        assert_eq!(failure_backoff(u32::MAX, Duration::ZERO, 1.0), MAX_BACKOFF);
        // Current credentials still valid for 20 s: wait at most 10 s.
        assert_eq!(failure_backoff(10, S(20), 1.0), S(10));
        // Never below the floor.
        assert_eq!(
            failure_backoff(1, Duration::from_millis(10), 0.0),
            MIN_REFRESH_INTERVAL
        );
        for failures in 1..40 {
            for unit in [0.0, 0.5, 1.0] {
                let d = failure_backoff(failures, Duration::ZERO, unit);
                assert!(d >= MIN_REFRESH_INTERVAL && d <= MAX_BACKOFF, "{d:?}");
            }
        }
    }

    /// Issues credentials numbered 1, 2, ... valid for `lifetime`; fails while `failing`.
    struct Fake {
        calls: Arc<AtomicU32>,
        lifetime: Duration,
        failing: Arc<Mutex<bool>>,
    }

    impl CredentialsProvider for Fake {
        async fn fetch(&self) -> Result<TemporaryCredentials, CredentialsError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if *self.failing.lock().unwrap() {
                return Err(CredentialsError::Transport {
                    service: "fake",
                    endpoint: "nowhere".into(),
                    message: "down".into(),
                    retryable: true,
                });
            }
            Ok(TemporaryCredentials {
                credentials: Credentials {
                    access_key_id: format!("STS.{n}"),
                    access_key_secret: "s".into(),
                    security_token: Some("t".into()),
                },
                expiration: SystemTime::now() + self.lifetime,
            })
        }
    }

    fn fake(lifetime: Duration) -> (Fake, Arc<AtomicU32>, Arc<Mutex<bool>>) {
        let calls = Arc::new(AtomicU32::new(0));
        let failing = Arc::new(Mutex::new(false));
        (
            Fake {
                calls: calls.clone(),
                lifetime,
                failing: failing.clone(),
            },
            calls,
            failing,
        )
    }

    #[tokio::test]
    async fn refresher_refreshes_about_once_per_half_lifetime_and_stops() {
        let (provider, calls, _) = fake(Duration::from_millis(1200));
        let applied = Arc::new(Mutex::new(Vec::new()));
        let sink = applied.clone();
        let refresher = Refresher::spawn(
            provider,
            SystemTime::now() + Duration::from_millis(1200),
            "fake",
            move |c| sink.lock().unwrap().push(c.access_key_id),
        );
        tokio::time::sleep(Duration::from_millis(2600)).await;
        refresher.stop().await;
        let n = calls.load(Ordering::SeqCst);
        // Every ~0.6 s (half of 1.2 s, minus up to 0.12 s jitter) over 2.6 s: 4 or 5 calls.
        assert!((3..=6).contains(&n), "{n} refreshes");
        let applied = applied.lock().unwrap().clone();
        assert_eq!(applied.len() as u32, n);
        assert_eq!(applied.first().map(String::as_str), Some("STS.1"));
        // Stopped: no more calls.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(calls.load(Ordering::SeqCst), n);
    }

    #[tokio::test]
    async fn refresher_backs_off_on_failure_and_recovers() {
        let (provider, calls, failing) = fake(S(3600));
        *failing.lock().unwrap() = true;
        let applied = Arc::new(AtomicU32::new(0));
        let sink = applied.clone();
        // Current credentials expire in 1 s: the first refresh is due at the floor (0.5 s).
        let refresher = Refresher::spawn(provider, SystemTime::now() + S(1), "fake", move |_| {
            sink.fetch_add(1, Ordering::SeqCst);
        });
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let failed = calls.load(Ordering::SeqCst);
        // Backoff 0.5..1 s, then 1..2 s: a few attempts, not a storm.
        assert!((1..=4).contains(&failed), "{failed} attempts while failing");
        assert_eq!(applied.load(Ordering::SeqCst), 0);
        *failing.lock().unwrap() = false;
        let deadline = tokio::time::Instant::now() + S(15);
        while applied.load(Ordering::SeqCst) == 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(applied.load(Ordering::SeqCst), 1, "recovered");
        let after = calls.load(Ordering::SeqCst);
        // New credentials last an hour: no further calls.
        tokio::time::sleep(S(1)).await;
        assert_eq!(calls.load(Ordering::SeqCst), after);
        drop(refresher);
    }

    #[tokio::test]
    async fn initial_fetch_retries_transient_failures_only() {
        let (provider, calls, failing) = fake(S(3600));
        *failing.lock().unwrap() = true;
        let err = fetch_initial(&provider, 2).await.unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        *failing.lock().unwrap() = false;
        let got = fetch_initial(&provider, 2).await.unwrap();
        assert_eq!(got.credentials.access_key_id, "STS.3");
    }
}
