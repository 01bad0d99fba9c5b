//! The first 32 KiB region of the wal-index, mapped `MAP_SHARED`, read and written only
//! with 32-bit atomic operations.
//!
//! Invariants:
//! - A [`ShmRegion`] is created only while the caller holds the DMS lock shared and the file
//!   is at least [`REGION_SIZE`] bytes long. While anybody holds DMS, SQLite never truncates
//!   the file (only a first opener with no DMS holder truncates it to 3 bytes), so every byte
//!   of the mapping stays backed and no access can raise SIGBUS. The owner must drop the
//!   region before it releases DMS.
//! - Only the 136-byte header region is ever touched, word by word, through `AtomicU32`
//!   (SQLite's `AtomicLoad`/`AtomicStore`; the header copies are plain memcpy in SQLite,
//!   which aligned 32-bit loads read without tearing any single word).
//! - No reference into the mapping ever leaves this module: callers get copies.
//!
//! Only region 0 is mapped: the hash blocks are not needed to read frames sequentially up to
//! `mxFrame`, so the mapping never has to grow when SQLite extends the file.

// mmap/munmap and atomics over foreign shared memory.
#![allow(unsafe_code)]
// The wal-index is host-local shared memory in host byte order by definition.
#![allow(clippy::host_endian_bytes)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering, fence};

use walcast_format::wal_index::{HEADER_COPY_SIZE, WAL_INDEX_HEADER_SIZE};

/// Size of one wal-index region (`WALINDEX_PGSZ`); region 0 holds the header.
pub const REGION_SIZE: usize = 32 * 1024;

const WORD: usize = 4;
/// Absolute offset of `aReadMark[0]`.
const READ_MARKS: usize = 2 * HEADER_COPY_SIZE + 4;

/// Region 0 of a live wal-index, mapped shared.
pub(crate) struct ShmRegion {
    base: NonNull<u8>,
}

// SAFETY: the mapping is process-shared memory that every thread (and every other process)
// accesses only through atomic 32-bit operations; no thread-local state is involved.
unsafe impl Send for ShmRegion {}
// SAFETY: as above: `&ShmRegion` only allows atomic loads and stores.
unsafe impl Sync for ShmRegion {}

impl ShmRegion {
    /// Maps region 0 of the `-shm` file open read-write on `fd`.
    ///
    /// The caller must hold the DMS lock shared and must have checked that the file is at
    /// least [`REGION_SIZE`] bytes long (see the module invariants).
    pub(crate) fn map(fd: BorrowedFd<'_>) -> io::Result<Self> {
        // SAFETY: a fresh shared mapping chosen by the kernel (addr = null), of a file
        // descriptor that is open for the duration of the call; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                REGION_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or(io::ErrorKind::AddrNotAvailable)?;
        Ok(Self { base })
    }

    /// The atomic word at byte `offset` of the header region.
    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset.is_multiple_of(WORD) && offset + WORD <= WAL_INDEX_HEADER_SIZE,
            "wal-index word offset {offset} outside the header region"
        );
        // SAFETY: the mapping is page-aligned and REGION_SIZE long, `offset` is 4-aligned
        // and inside it (checked above), the memory stays mapped as long as `self`
        // (module invariants), and it is only ever accessed atomically from Rust.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast::<u32>()) }
    }

    /// Copies the 136-byte header region out as `walIndexTryHdr` reads it: copy A, a full
    /// barrier, copy B, then the checkpoint info (each word a single atomic load).
    pub(crate) fn copy_header(&self) -> [u8; WAL_INDEX_HEADER_SIZE] {
        let mut out = [0u8; WAL_INDEX_HEADER_SIZE];
        for (i, chunk) in out.chunks_exact_mut(WORD).enumerate() {
            if i * WORD == HEADER_COPY_SIZE {
                fence(Ordering::SeqCst);
            }
            let value = self.word(i * WORD).load(Ordering::Relaxed);
            chunk.copy_from_slice(&value.to_ne_bytes());
        }
        fence(Ordering::SeqCst);
        out
    }

    /// `aReadMark[slot]`.
    pub(crate) fn read_mark(&self, slot: usize) -> u32 {
        self.word(READ_MARKS + WORD * slot).load(Ordering::SeqCst)
    }

    /// Stores `aReadMark[slot]`. The caller must hold that slot's lock exclusively: that
    /// is the only time SQLite lets anybody write a mark.
    pub(crate) fn store_read_mark(&self, slot: usize, value: u32) {
        self.word(READ_MARKS + WORD * slot)
            .store(value, Ordering::SeqCst);
    }
}

impl Drop for ShmRegion {
    fn drop(&mut self) {
        // SAFETY: `base` is the start of a REGION_SIZE mapping made by `map` and never
        // unmapped before; no reference into it outlives `self`.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), REGION_SIZE);
        }
    }
}
