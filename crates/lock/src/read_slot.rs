//! Claiming, sharing and advancing a read mark (reference §6, PROTECTED).
//!
//! Claim: `F_WRLCK` on READ(c) -> store `aReadMark[c] = mxFrame` -> convert to `F_RDLCK`
//! in place (never unlocked in between, so no checkpointer can reset the mark) -> re-read
//! the header and the mark, as `walTryBeginRead` step 3 does. If every slot is busy, share
//! the slot with the largest mark <= `mxFrame`. Advance: convert the held lock up, store,
//! convert down; if SQLite readers share the slot, move to a free slot instead, taking the
//! new slot before releasing the old one.
//!
//! Invariant: a slot is held only once its mark has been set or verified, so a stale low
//! mark never caps checkpoints for long; a mark is written only under an exclusive lock.

use walcast_format::wal_index::{READMARK_NOT_USED, WalIndex};

use crate::attachment::Attachment;
use crate::backoff::Backoff;
use crate::error::LockError;
use crate::ofd::LockKind;
use crate::offsets::{LockTarget, ReadSlot};

/// Which mark walcast stores in the read slot it holds.
///
/// The mark only tells checkpointers how far they may backfill. walcast reads frames from
/// the WAL, never pages from the database file through the wal-index, and its protection
/// against WAL restarts comes from holding the slot's lock, whatever the mark. So a mark
/// that caps checkpoints buys walcast nothing and costs the application: see
/// [`ReadMarkPolicy::Uncapped`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadMarkPolicy {
    /// Store `READMARK_NOT_USED` (0xffffffff): checkpointers skip the slot (they only
    /// consider marks below their safe frame), so every checkpoint backfills as far as it
    /// would without walcast, `nBackfill` reaches `mxFrame` after the application's own
    /// checkpoint, HANDOFF is reachable under a steady write load, and RESTART/TRUNCATE
    /// checkpoints are not failed with SQLITE_BUSY by a lagging mark. SQLite readers never
    /// share the slot (its mark is above every `mxFrame`).
    #[default]
    Uncapped,
    /// Store `mxFrame`, as a SQLite reader does (reference §6 as written), and raise it with
    /// `advance_mark`. Checkpoints are capped at the mark until it is raised.
    MxFrame,
}

impl ReadMarkPolicy {
    /// The mark to store when `mxFrame` is `mx_frame`.
    pub(crate) fn mark_for(self, mx_frame: u32) -> u32 {
        match self {
            Self::Uncapped => READMARK_NOT_USED,
            Self::MxFrame => mx_frame,
        }
    }
}

/// The READ(c) slot a state holds shared, and the mark it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeldSlot {
    pub(crate) slot: ReadSlot,
    pub(crate) mark: u32,
}

/// What [`crate::Protected::advance_mark`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MarkAdvance {
    /// The mark is already what the policy wants.
    Current,
    /// The mark of the held slot was raised in place.
    Advanced {
        /// The new mark.
        to: u32,
    },
    /// SQLite readers shared the held slot, so walcast moved to a free slot with the new
    /// mark (holding both for a moment) and released the old one.
    Moved {
        /// Slot released.
        from: ReadSlot,
        /// Slot now held.
        to: ReadSlot,
        /// The new mark.
        mark: u32,
    },
    /// Readers share the held slot and no other slot is free: the mark stays, try later.
    Busy,
}

fn salts(index: &WalIndex) -> (u32, u32) {
    (index.header.salt1, index.header.salt2)
}

/// After locking `held` shared: the mark must still be the one claimed or shared, the WAL
/// generation the same as when the claim started, and `mxFrame` not below the mark.
/// On success returns the live header; on failure releases the slot.
fn validate(
    att: &Attachment,
    base: &WalIndex,
    held: HeldSlot,
) -> Result<Option<WalIndex>, LockError> {
    let live = match att.read_index() {
        Ok(live) => live,
        Err(e) => {
            att.unlock(LockTarget::Read(held.slot))?;
            return Err(e);
        }
    };
    let still_valid = att.read_mark(held.slot) == held.mark
        && salts(&live) == salts(base)
        && (held.mark == READMARK_NOT_USED || live.header.mx_frame >= held.mark);
    if still_valid {
        Ok(Some(live))
    } else {
        att.unlock(LockTarget::Read(held.slot))?;
        Ok(None)
    }
}

/// Takes `slot` exclusively if nobody holds it, stores `mark`, and converts to shared.
fn take_slot(att: &Attachment, slot: ReadSlot, mark: u32) -> Result<Option<HeldSlot>, LockError> {
    let target = LockTarget::Read(slot);
    if !att.try_lock(target, LockKind::Exclusive)? {
        return Ok(None);
    }
    att.store_read_mark(slot, mark);
    att.downgrade(target)?;
    Ok(Some(HeldSlot { slot, mark }))
}

/// One claim attempt against the header `base`.
fn claim_once(
    att: &Attachment,
    base: &WalIndex,
    policy: ReadMarkPolicy,
) -> Result<Option<(HeldSlot, WalIndex)>, LockError> {
    let mx = base.header.mx_frame;
    for slot in ReadSlot::CLAIM_ORDER {
        if let Some(held) = take_slot(att, slot, policy.mark_for(mx))? {
            return Ok(validate(att, base, held)?.map(|live| (held, live)));
        }
    }
    // Every slot is locked: share the one with the largest mark not above mxFrame.
    let shared = ReadSlot::CLAIM_ORDER
        .into_iter()
        .map(|slot| HeldSlot {
            slot,
            mark: att.read_mark(slot),
        })
        .filter(|h| h.mark <= mx)
        .max_by_key(|h| h.mark);
    match shared {
        Some(held) if att.try_lock(LockTarget::Read(held.slot), LockKind::Shared)? => {
            Ok(validate(att, base, held)?.map(|live| (held, live)))
        }
        _ => Ok(None),
    }
}

/// Claims a read slot, retrying up to `attempts` times with backoff. Returns the slot
/// held shared and the header validated after locking it.
pub(crate) fn claim(
    att: &Attachment,
    policy: ReadMarkPolicy,
    attempts: u32,
) -> Result<Option<(HeldSlot, WalIndex)>, LockError> {
    let mut backoff = Backoff::default();
    loop {
        let base = att.read_index()?;
        if let Some(claimed) = claim_once(att, &base, policy)? {
            return Ok(Some(claimed));
        }
        if backoff.attempts() + 1 >= attempts {
            return Ok(None);
        }
        backoff.pause();
    }
}

/// Raises the held mark to what `policy` wants for `index` (see [`MarkAdvance`]): a
/// shared slot's mark, or a lagging `mxFrame` mark.
pub(crate) fn advance(
    att: &Attachment,
    held: &mut HeldSlot,
    index: &WalIndex,
    policy: ReadMarkPolicy,
) -> Result<MarkAdvance, LockError> {
    let target = policy.mark_for(index.header.mx_frame);
    if held.mark >= target {
        return Ok(MarkAdvance::Current);
    }
    let lock = LockTarget::Read(held.slot);
    // A failed conversion leaves the shared lock as it was (tests/ofd_semantics.rs).
    if att.try_lock(lock, LockKind::Exclusive)? {
        att.store_read_mark(held.slot, target);
        att.downgrade(lock)?;
        held.mark = target;
        return Ok(MarkAdvance::Advanced { to: target });
    }
    for slot in ReadSlot::CLAIM_ORDER
        .into_iter()
        .filter(|s| *s != held.slot)
    {
        if let Some(new) = take_slot(att, slot, target)? {
            if validate(att, index, new)?.is_none() {
                return Ok(MarkAdvance::Busy);
            }
            att.unlock(lock)?;
            let from = held.slot;
            *held = new;
            return Ok(MarkAdvance::Moved {
                from,
                to: new.slot,
                mark: target,
            });
        }
    }
    Ok(MarkAdvance::Busy)
}
