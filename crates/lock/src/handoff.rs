//! HANDOFF (reference §6): READ0 is held shared and no read slot. READ0 freezes
//! `nBackfill` (a backfill needs READ0 exclusively), so at most one WAL restart can happen,
//! and only when everything was copied; frames committed afterwards cannot be backfilled,
//! hence cannot be overwritten. SQLite's writers restart the WAL freely meanwhile, which is
//! what keeps it small.
//!
//! On any header change [`Handoff::poll`] claims a read slot and only then releases READ0
//! (back to PROTECTED): the two protections always overlap.

use walcast_format::wal_index::WalIndex;

use crate::attachment::{Attachment, DatabasePaths};
use crate::error::LockError;
use crate::offsets::LockTarget;
use crate::position::PositionToken;
use crate::protected::Protected;
use crate::read_slot;

/// Claim attempts per poll: a busy claim just leaves HANDOFF (still safe) for the next poll.
const CLAIM_ATTEMPTS: u32 = 8;

/// HANDOFF: see the module docs.
pub struct Handoff {
    att: Attachment,
    index: WalIndex,
    handed_off_at: Option<PositionToken>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("db", &self.att.paths.db)
            .field("index", &self.index)
            .field("handed_off_at", &self.handed_off_at)
            .finish()
    }
}

/// What [`Handoff::poll`] found.
#[derive(Debug)]
pub enum HandoffStep {
    /// The header did not change: nothing to copy.
    Unchanged(Handoff),
    /// The header changed (or re-protection was asked for): a read slot is held again and
    /// READ0 released.
    Protected(Protected),
    /// The header changed but no read slot could be claimed right now, or the header was
    /// mid-update: still in HANDOFF (still safe); poll again.
    Busy(Handoff),
}

impl Handoff {
    pub(crate) fn new(
        att: Attachment,
        index: WalIndex,
        handed_off_at: Option<PositionToken>,
    ) -> Self {
        Self {
            att,
            index,
            handed_off_at,
        }
    }

    /// The database's paths.
    pub fn paths(&self) -> &DatabasePaths {
        &self.att.paths
    }

    /// The wal-index as of the handoff.
    pub fn wal_index(&self) -> &WalIndex {
        &self.index
    }

    /// The wal-index as it is now (a read of the shared header; the state is unchanged).
    pub fn live_index(&self) -> Result<WalIndex, LockError> {
        self.att.read_index()
    }

    /// Checks the header; on any change (`iChange`, `mxFrame`, salts, `nBackfill`) goes
    /// back to PROTECTED.
    pub fn poll(self) -> Result<HandoffStep, LockError> {
        let live = match self.att.read_index() {
            Ok(live) => live,
            Err(LockError::WalIndexUnreadable { .. }) => return Ok(HandoffStep::Busy(self)),
            Err(other) => return Err(other),
        };
        if live.header == self.index.header
            && live.checkpoint.n_backfill == self.index.checkpoint.n_backfill
        {
            return Ok(HandoffStep::Unchanged(self));
        }
        self.protect()
    }

    /// Goes back to PROTECTED whether or not the header changed (e.g. to finish a last
    /// sync before shutting down): claim a read slot, then release READ0.
    pub fn protect(self) -> Result<HandoffStep, LockError> {
        match read_slot::claim(&self.att, self.att.policy, CLAIM_ATTEMPTS) {
            Ok(None) | Err(LockError::WalIndexUnreadable { .. }) => Ok(HandoffStep::Busy(self)),
            Err(other) => Err(other),
            Ok(Some((held, index))) => {
                self.att.unlock(LockTarget::Read0)?;
                Ok(HandoffStep::Protected(Protected::new(
                    self.att,
                    held,
                    index,
                    self.handed_off_at,
                )))
            }
        }
    }

    /// Releases every lock and closes the files.
    pub fn release(self) {}
}
