//! SQLite's lock bytes on the database file and on the wal-index (`-shm`) file.
//!
//! ```text
//! database file (os.h)               -shm file (wal.c WAL_*_LOCK + os_unix.c UNIX_SHM_BASE)
//! 0x40000000  PENDING                120  WRITE      never taken by walcast
//! 0x40000001  RESERVED               121  CKPT       never taken by walcast
//! 0x40000002  SHARED range, 510 B    122  RECOVER    never taken by walcast
//!   ..0x400001ff                     123  READ0      "WAL ignored": freezes nBackfill
//!                                    124..127 READ1..READ4, each with aReadMark[i]
//!                                    128  DMS        dead-man switch, shared while mapped
//! ```
//!
//! Only [`LockTarget`] values can be locked by this crate, and that type has no way to
//! name WRITE, CKPT or RECOVER: walcast must never take them (reference §6 (b)).

use crate::ofd::ByteRange;

/// Byte offset of SQLite's PENDING lock byte on the database file.
pub const PENDING_BYTE: u64 = walcast_format::PENDING_BYTE;
/// Byte offset of the RESERVED lock byte.
pub const RESERVED_BYTE: u64 = PENDING_BYTE + 1;
/// First byte of the SHARED range.
pub const SHARED_FIRST: u64 = PENDING_BYTE + 2;
/// Length of the SHARED range (`SHARED_SIZE`).
pub const SHARED_SIZE: u64 = 510;

/// `-shm` lock byte of the WRITE lock (writers).
pub const SHM_WRITE: u64 = 120;
/// `-shm` lock byte of the CKPT lock (checkpointers).
pub const SHM_CKPT: u64 = 121;
/// `-shm` lock byte of the RECOVER lock (recovery).
pub const SHM_RECOVER: u64 = 122;
/// `-shm` lock byte of READ0; READ(i) is at `SHM_READ0 + i`.
pub const SHM_READ0: u64 = 123;
/// `-shm` lock byte of the dead-man switch.
pub const SHM_DMS: u64 = 128;

/// The PENDING byte of the database file.
pub(crate) const DB_PENDING: ByteRange = ByteRange::new(PENDING_BYTE, 1);
/// The SHARED range of the database file.
pub(crate) const DB_SHARED: ByteRange = ByteRange::new(SHARED_FIRST, SHARED_SIZE);

/// A read-mark slot READ1..READ4: a slot whose `aReadMark` caps checkpoints and whose lock
/// blocks every WAL restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReadSlot(u8);

impl ReadSlot {
    /// All four slots, in the order walcast tries to claim them: from READ4 down, so that
    /// SQLite's own readers, which try READ1 first, rarely meet walcast.
    pub const CLAIM_ORDER: [ReadSlot; 4] = [ReadSlot(4), ReadSlot(3), ReadSlot(2), ReadSlot(1)];

    /// The slot with number `n`, if `n` is 1..=4.
    pub fn new(n: u8) -> Option<Self> {
        (1..=4).contains(&n).then_some(Self(n))
    }

    /// The slot number, 1..=4.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The slot's `-shm` lock byte (124..=127).
    pub fn lock_byte(self) -> u64 {
        SHM_READ0 + u64::from(self.0)
    }
}

impl std::fmt::Display for ReadSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "READ{}", self.0)
    }
}

/// The `-shm` locks walcast may take: READ0..READ4 and DMS, never WRITE, CKPT or RECOVER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockTarget {
    /// READ0, held shared in HANDOFF.
    Read0,
    /// READ1..4, held shared in PROTECTED (exclusive only to store its mark).
    Read(ReadSlot),
    /// The dead-man switch.
    Dms,
}

impl LockTarget {
    pub(crate) fn range(self) -> ByteRange {
        let byte = match self {
            Self::Read0 => SHM_READ0,
            Self::Read(slot) => slot.lock_byte(),
            Self::Dms => SHM_DMS,
        };
        ByteRange::new(byte, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_sqlite() {
        // os.h: PENDING_BYTE 0x40000000, SHARED_FIRST PENDING+2, SHARED_SIZE 510.
        assert_eq!(DB_SHARED.start, 0x4000_0002);
        assert_eq!(DB_SHARED.start + DB_SHARED.len - 1, 0x4000_01ff);
        // wal.c: WAL_READ_LOCK(i) = 3 + i above UNIX_SHM_BASE 120; DMS = 128.
        let bytes: Vec<u64> = ReadSlot::CLAIM_ORDER
            .iter()
            .map(|s| s.lock_byte())
            .collect();
        assert_eq!(bytes, vec![127, 126, 125, 124]);
        assert_eq!(LockTarget::Read0.range().start, 123);
        assert_eq!(LockTarget::Dms.range().start, 128);
    }
}
