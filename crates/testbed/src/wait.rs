//! Waiting for a condition with a deadline: how tests synchronise with other processes
//! (never a bare sleep). The condition is polled every few milliseconds; the error names
//! what was awaited and for how long.

use std::time::{Duration, Instant};

use anyhow::bail;

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// Polls `condition` until it returns `Ok(true)`, fails on its first error, and fails
/// with `what` once `timeout` has passed.
pub fn until(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if condition()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_the_condition_holds_and_times_out_otherwise() {
        let mut calls = 0;
        until(Duration::from_secs(5), "third call", || {
            calls += 1;
            Ok(calls == 3)
        })
        .unwrap();
        assert_eq!(calls, 3);
        let err = until(Duration::from_millis(50), "never", || Ok(false)).unwrap_err();
        assert!(err.to_string().contains("waiting for never"), "{err}");
    }
}
