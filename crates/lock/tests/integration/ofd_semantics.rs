//! The kernel facts the lock protocol stands on, checked against another process holding
//! traditional POSIX locks the way SQLite does (reference §4 "OFD locks", §6 claim step).

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;

use walcast_lock::ofd::{self, ByteRange, LockKind};
use walcast_testbed::locks::{LockKind as PosixKind, PosixLocker};

const BYTE: u64 = 124;

fn lock_file() -> (tempfile::TempDir, std::path::PathBuf, File) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks");
    std::fs::write(&path, [0u8; 200]).unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    (dir, path, file)
}

fn byte() -> ByteRange {
    ByteRange::new(BYTE, 1)
}

#[test]
fn ofd_and_posix_locks_of_different_processes_conflict_both_ways() {
    let (_dir, path, file) = lock_file();
    let mut sqlite_like = PosixLocker::open(&path).unwrap();
    assert!(ofd::try_lock(file.as_fd(), LockKind::Exclusive, byte()).unwrap());
    assert!(!sqlite_like.try_lock(PosixKind::Shared, BYTE, 1).unwrap());
    assert_eq!(
        sqlite_like.holder(PosixKind::Shared, BYTE, 1).unwrap(),
        Some(PosixKind::Exclusive),
        "F_GETLK in another process must see the OFD lock"
    );
    ofd::unlock(file.as_fd(), byte()).unwrap();
    assert!(sqlite_like.try_lock(PosixKind::Shared, BYTE, 1).unwrap());
    assert!(!ofd::try_lock(file.as_fd(), LockKind::Exclusive, byte()).unwrap());
    assert_eq!(
        ofd::conflicting(file.as_fd(), LockKind::Exclusive, byte()).unwrap(),
        Some(LockKind::Shared)
    );
    assert!(ofd::try_lock(file.as_fd(), LockKind::Shared, byte()).unwrap());
}

#[test]
fn closing_another_descriptor_of_the_file_keeps_ofd_locks() {
    // The POSIX trap (reference §7): a close of any descriptor drops all of a process's
    // traditional locks on the file. OFD locks must survive it.
    let (_dir, path, file) = lock_file();
    assert!(ofd::try_lock(file.as_fd(), LockKind::Shared, byte()).unwrap());
    drop(File::open(&path).unwrap());
    let mut other = PosixLocker::open(&path).unwrap();
    assert!(!other.try_lock(PosixKind::Exclusive, BYTE, 1).unwrap());
}

#[test]
fn converting_exclusive_to_shared_in_place_leaves_no_unlocked_moment() {
    let (_dir, path, file) = lock_file();
    assert!(ofd::try_lock(file.as_fd(), LockKind::Exclusive, byte()).unwrap());
    let mut writer = PosixLocker::open(&path).unwrap();
    let mut reader = PosixLocker::open(&path).unwrap();
    writer.spin(PosixKind::Exclusive, BYTE, 1).unwrap();
    reader.spin(PosixKind::Shared, BYTE, 1).unwrap();
    for _ in 0..20_000 {
        assert!(ofd::try_lock(file.as_fd(), LockKind::Shared, byte()).unwrap());
        // While shared, another reader may join; then the upgrade must wait for it.
        while !ofd::try_lock(file.as_fd(), LockKind::Exclusive, byte()).unwrap() {}
    }
    let exclusive = writer.stop_spin().unwrap();
    let shared = reader.stop_spin().unwrap();
    assert!(exclusive.attempts > 1000, "{exclusive:?}");
    assert_eq!(
        exclusive.acquired, 0,
        "an exclusive lock slipped between the conversions"
    );
    assert!(
        shared.acquired > 0,
        "the shared phases were never visible to another process: {shared:?}"
    );
    ofd::unlock(file.as_fd(), byte()).unwrap();
    assert!(writer.try_lock(PosixKind::Exclusive, BYTE, 1).unwrap());
}

#[test]
fn a_failed_upgrade_keeps_the_shared_lock() {
    let (_dir, path, file) = lock_file();
    let mut reader = PosixLocker::open(&path).unwrap();
    let mut writer = PosixLocker::open(&path).unwrap();
    assert!(ofd::try_lock(file.as_fd(), LockKind::Shared, byte()).unwrap());
    assert!(reader.try_lock(PosixKind::Shared, BYTE, 1).unwrap());
    assert!(!ofd::try_lock(file.as_fd(), LockKind::Exclusive, byte()).unwrap());
    reader.unlock(BYTE, 1).unwrap();
    assert!(
        !writer.try_lock(PosixKind::Exclusive, BYTE, 1).unwrap(),
        "the failed upgrade dropped walcast's shared lock"
    );
    ofd::unlock(file.as_fd(), byte()).unwrap();
    assert!(writer.try_lock(PosixKind::Exclusive, BYTE, 1).unwrap());
}
