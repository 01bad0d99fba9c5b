//! The retry and timeout policy of every request a replica client makes.
//!
//! Policy (defaults in [`RetryPolicy::default`]):
//! - Every attempt of an operation must finish within [`RetryPolicy::request_timeout`]
//!   (default 60 s; connecting within [`RetryPolicy::connect_timeout`], default 5 s),
//!   plus, for a PUT, one second per MiB of its body ([`RetryPolicy::put_timeout`]: a slow
//!   link still gets a large snapshot up). A streamed download may take as long as it needs
//!   but must not go [`RetryPolicy::request_timeout`] without receiving bytes; a stalled or
//!   cut body is resumed where it stopped ([`crate::store::LtxReader`]). A slower attempt is
//!   abandoned and counts as a failed attempt.
//! - Failed attempts that may succeed later are retried: timeouts, connection errors,
//!   HTTP 5xx, 429 and 408 (object_store reports all of these as `Error::Generic`).
//!   Answers that will not change (not found, already exists, permission denied,
//!   unauthenticated, invalid path, not supported) are returned at once.
//! - Up to [`RetryPolicy::max_attempts`] attempts (default 8), sleeping between them with
//!   exponential backoff: [`RetryPolicy::initial_backoff`] (200 ms) doubled each time up to
//!   [`RetryPolicy::max_backoff`] (10 s). With the defaults a dead store is reported after
//!   about 40 s of backoff plus the attempts' own time; the sync loop then keeps its staged
//!   files and tries again on its next pass, so nothing is lost by giving up.
//! - This is the only retry layer: object_store's own retries are switched off, so one
//!   policy decides, and a conditional PUT whose answer was lost is retried here, where
//!   "already exists" can be checked against the bytes being written.
//!
//! This module never decides what an error means for the replica (that is
//! [`crate::store::ObjectReplica`]); it only repeats attempts.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::store::stats::{Operation, ReplicaStats};

/// How requests are timed out and retried (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per operation, at least 1.
    pub max_attempts: u32,
    /// Sleep before the second attempt.
    pub initial_backoff: Duration,
    /// Longest sleep between attempts.
    pub max_backoff: Duration,
    /// Longest time one attempt (request and body) may take.
    pub request_timeout: Duration,
    /// Longest time connecting may take.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The slowest upload a PUT timeout allows for, in bytes per second.
const SLOWEST_UPLOAD: u64 = 1 << 20;

impl RetryPolicy {
    /// The timeout of one PUT attempt of `len` bytes: the request timeout plus one second
    /// per MiB.
    pub fn put_timeout(&self, len: u64) -> Duration {
        self.request_timeout
            .saturating_add(Duration::from_secs(len / SLOWEST_UPLOAD))
    }

    /// The sleep after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// The last failure of an operation that was given up on.
#[derive(Debug)]
pub(crate) enum GaveUp {
    /// The last attempt failed with this error.
    Failed {
        attempts: u32,
        error: object_store::Error,
    },
    /// Every attempt timed out.
    TimedOut { attempts: u32, timeout: Duration },
}

/// True for errors that may go away on a later attempt (see the module docs): transport
/// errors and timeouts, and HTTP 5xx, 408 and 429; not other 4xx answers (bad
/// credentials, no such bucket), which would fail the same way every time.
pub(crate) fn is_transient(error: &object_store::Error) -> bool {
    match error {
        object_store::Error::Generic { .. } => match http_status(error) {
            None => true,
            Some(status) => status >= 500 || status == 408 || status == 429,
        },
        object_store::Error::JoinError { .. } => true,
        _ => false,
    }
}

/// The HTTP status the server answered with, if the error came from an answer.
///
/// object_store keeps the status inside errors whose type it does not export (listings
/// report every failed answer as `Error::Generic`), so this reads the status from the
/// error chain's text, where object_store writes it as `status code: NNN`.
pub(crate) fn http_status(error: &object_store::Error) -> Option<u16> {
    let mut current: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if let Some((_, after)) = text.split_once("status code: ") {
            let digits = after.get(..3)?;
            return digits.parse().ok();
        }
        current = e.source();
    }
    None
}

/// What an operation is counted as.
pub(crate) type Counted<'a> = (&'a ReplicaStats, Operation);

/// Runs `attempt` until it succeeds, fails for good, or the policy is exhausted, each
/// attempt within the policy's request timeout and counted in `counted`.
pub(crate) async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    counted: Counted<'_>,
    attempt: F,
) -> Result<T, GaveUp>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, object_store::Error>>,
{
    retry_within(policy, policy.request_timeout, counted, attempt).await
}

/// [`retry`] with each attempt limited to `timeout`.
pub(crate) async fn retry_within<T, F, Fut>(
    policy: &RetryPolicy,
    timeout: Duration,
    (stats, operation): Counted<'_>,
    mut attempt: F,
) -> Result<T, GaveUp>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, object_store::Error>>,
{
    let max_attempts = policy.max_attempts.max(1);
    for n in 1..=max_attempts {
        let last = n == max_attempts;
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, attempt()).await;
        stats.request(operation, started.elapsed(), matches!(result, Ok(Ok(_))));
        match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) if last || !is_transient(&error) => {
                return Err(GaveUp::Failed { attempts: n, error });
            }
            Ok(Err(_)) => {}
            Err(_elapsed) if last => {
                return Err(GaveUp::TimedOut {
                    attempts: n,
                    timeout,
                });
            }
            Err(_elapsed) => {}
        }
        tokio::time::sleep(policy.backoff(n)).await;
    }
    Err(GaveUp::TimedOut {
        attempts: max_attempts,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let sleeps: Vec<_> = (1..=8).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(sleeps, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        assert_eq!(policy.backoff(100), policy.max_backoff);
        assert_eq!(policy.put_timeout(0), Duration::from_secs(60));
        assert_eq!(policy.put_timeout(300 << 20), Duration::from_secs(360));
    }
}
