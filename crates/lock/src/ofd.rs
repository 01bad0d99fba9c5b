//! Open-file-description byte-range locks (Linux `F_OFD_SETLK` / `F_OFD_GETLK`).
//!
//! An OFD lock belongs to the open file description, not to the process: closing some
//! other descriptor of the same file cannot drop it (the POSIX-lock trap of reference §7),
//! and it conflicts with SQLite's process-associated POSIX locks exactly as another
//! process's lock would. Setting a lock over a range this description already holds
//! converts it in place (shared <-> exclusive), with no unlocked moment; a conversion that
//! fails leaves the old lock as it was. Both facts are tested against another process in
//! `tests/ofd_semantics.rs`.
//!
//! Every request is non-blocking: walcast never waits inside the kernel for a lock.

// fcntl(2) with a pointer argument is an FFI call.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Shared (`F_RDLCK`) or exclusive (`F_WRLCK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// A read lock; any number may coexist.
    Shared,
    /// A write lock; conflicts with every other lock.
    Exclusive,
}

/// A byte range of a file: `len` bytes from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Number of bytes (never 0: 0 would mean "to the end of the file" to fcntl).
    pub len: u64,
}

impl ByteRange {
    /// A range of `len` bytes from `start`.
    pub const fn new(start: u64, len: u64) -> Self {
        Self { start, len }
    }
}

fn request(l_type: libc::c_int, range: ByteRange) -> io::Result<libc::flock> {
    let start = libc::off_t::try_from(range.start).map_err(|_| io::ErrorKind::InvalidInput)?;
    let len = libc::off_t::try_from(range.len).map_err(|_| io::ErrorKind::InvalidInput)?;
    if len == 0 {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    Ok(libc::flock {
        // F_RDLCK/F_WRLCK/F_UNLCK are 0..=2: they fit any c_short.
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: len,
        // fcntl(2): l_pid must be 0 for the F_OFD_* commands.
        l_pid: 0,
    })
}

fn fcntl_lock(fd: BorrowedFd<'_>, cmd: libc::c_int, lock: &mut libc::flock) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor for the duration of the borrow, and `lock` is a
    // valid, exclusively borrowed `struct flock` that fcntl reads (SETLK) or fills (GETLK).
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, lock as *mut libc::flock) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn type_of(kind: LockKind) -> libc::c_int {
    match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
    }
}

/// Takes (or converts to) a `kind` lock on `range` without waiting. `Ok(false)` means
/// another holder's lock conflicts; the locks this description held are then unchanged.
pub fn try_lock(fd: BorrowedFd<'_>, kind: LockKind, range: ByteRange) -> io::Result<bool> {
    let mut lock = request(type_of(kind), range)?;
    match fcntl_lock(fd, libc::F_OFD_SETLK, &mut lock) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes a `kind` lock on `range`, sleeping in the kernel until no other holder conflicts
/// (`F_OFD_SETLKW`). The kernel wakes the caller the moment the conflicting lock goes, which
/// is what makes it useful: reacting within microseconds to another process's unlock.
/// OFD locks have no deadlock detection, so callers must know the holder does not wait for
/// them. Interrupted by a signal, it returns the `EINTR` error.
pub fn wait_lock(fd: BorrowedFd<'_>, kind: LockKind, range: ByteRange) -> io::Result<()> {
    let mut lock = request(type_of(kind), range)?;
    fcntl_lock(fd, libc::F_OFD_SETLKW, &mut lock)
}

/// Releases whatever this description holds on `range`.
pub fn unlock(fd: BorrowedFd<'_>, range: ByteRange) -> io::Result<()> {
    let mut lock = request(libc::F_UNLCK, range)?;
    fcntl_lock(fd, libc::F_OFD_SETLK, &mut lock)
}

/// The kind of a lock held by someone else that would conflict with a `kind` lock on
/// `range`, if any (`F_OFD_GETLK`). Locks of this description never conflict with it.
pub fn conflicting(
    fd: BorrowedFd<'_>,
    kind: LockKind,
    range: ByteRange,
) -> io::Result<Option<LockKind>> {
    let mut lock = request(type_of(kind), range)?;
    fcntl_lock(fd, libc::F_OFD_GETLK, &mut lock)?;
    Ok(match libc::c_int::from(lock.l_type) {
        libc::F_RDLCK => Some(LockKind::Shared),
        libc::F_WRLCK => Some(LockKind::Exclusive),
        _ => None,
    })
}
