//! Retry pacing for busy locks and a wal-index header caught mid-update: a few immediate
//! retries, then sleeps that grow quadratically to a cap, like SQLite's `walTryBeginRead`.

use std::time::Duration;

/// Longest single pause.
const CAP: Duration = Duration::from_millis(10);
/// Attempts retried without sleeping (a writer updates the header in microseconds).
const SPINS: u32 = 5;

/// Counts attempts and pauses between them.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// Attempts made so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Pauses before the next attempt.
    pub(crate) fn pause(&mut self) {
        self.attempt = self.attempt.saturating_add(1);
        match self.attempt.checked_sub(SPINS) {
            None | Some(0) => std::thread::yield_now(),
            Some(n) => {
                let micros = 10u64.saturating_mul(u64::from(n).saturating_mul(u64::from(n)));
                std::thread::sleep(Duration::from_micros(micros).min(CAP));
            }
        }
    }
}
