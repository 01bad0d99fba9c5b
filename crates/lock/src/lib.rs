//! Coordination with the applications' SQLite through SQLite's own lock bytes.
//!
//! This crate owns the OFD byte-range locks on the database and `-shm` files, SQLite's
//! lock offsets, the DMS protocol, read marks, the PROTECTED -> HANDOFF -> PROTECTED cycle
//! and the position token that detects WAL discontinuities (reference
//! `sqlite-wal-and-locks.md` §4–§6).
//!
//! It must never take SQLite's WRITE, CKPT or RECOVER locks, never write the database or
//! the WAL, never release a protection before the next one is held, and never hand out
//! slices into the shared wal-index mapping. Its only writes are the mark of a read slot it
//! holds exclusively, and truncating an uninitialised `-shm` to 3 bytes as SQLite's first
//! opener does.
//!
//! # States
//!
//! One type per state; transitions consume the old state (rustls style):
//!
//! ```text
//! Attached::attach ─> Attached ── protect ──> Protected ── try_handoff ──> Handoff
//!                                                ^   └─ Stayed(Protected) ─┘   │
//!                                                └──── poll / protect ─────────┘
//! ```
//!
//! - [`Attached`]: SHARED on the database (no last-close checkpoint can delete the WAL),
//!   DMS on the wal-index (it cannot be truncated under the mapping). Nothing protected.
//! - [`Protected`]: a read slot READ1..4 with walcast's mark: no WAL restart is possible.
//!   Read frames here.
//! - [`Handoff`]: READ0 only: no backfill is possible, so a restart can only happen when
//!   everything was copied. SQLite's writers restart the WAL meanwhile, keeping it small.
//!
//! Dropping any state (or a process exit, even `kill -9`) releases every lock: they are
//! OFD locks and die with the descriptors.
//!
//! # Driving it from a sync loop
//!
//! ```no_run
//! use walcast_lock::{Attached, AttachOptions, HandoffAttempt, HandoffStep, PositionToken};
//! # fn store(_: &walcast_lock::FrameBatch<'_>) {}
//! # fn saved_token() -> Option<PositionToken> { None }
//! # fn snapshot(_: &walcast_lock::Protected) {}
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut state = Attached::attach("app.db".as_ref(), AttachOptions::default())?.protect()?;
//! let mut cursor = match saved_token().map(|t| state.resume(&t)) {
//!     Some(Ok(cursor)) => cursor,
//!     _ => { snapshot(&state); state.generation_start() } // no position, or a discontinuity
//! };
//! let mut buf = Vec::new();
//! loop {
//!     state.refresh()?;
//!     loop {
//!         let batch = state.read_frames(&cursor, 1024, &mut buf)?;
//!         if batch.is_empty() { break; }
//!         store(&batch);              // then persist batch.end().position()
//!         cursor = batch.end();
//!     }
//!     state.advance_mark()?;
//!     state = match state.try_handoff(&cursor)? {
//!         HandoffAttempt::Stayed(p, _) => p,
//!         HandoffAttempt::Handoff(mut h) => loop {
//!             // wait for a change of the WAL (inotify + a short timer) ...
//!             h = match h.poll()? {
//!                 HandoffStep::Protected(p) => break p,
//!                 HandoffStep::Unchanged(h) | HandoffStep::Busy(h) => h,
//!             };
//!         },
//!     };
//! }
//! # }
//! ```

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "walcast-lock needs Linux: it relies on open-file-description locks (F_OFD_SETLK, Linux >= 3.15)"
);

mod attach;
mod attachment;
mod backoff;
mod error;
mod frames;
#[doc(hidden)]
pub mod fuzzing;
mod handoff;
pub mod ofd;
pub mod offsets;
mod position;
mod protected;
mod read_slot;
mod registry;
mod shm_map;
mod wal_header;

pub use attach::{AttachOptions, Attached};
pub use attachment::DatabasePaths;
pub use error::{AttachError, LockError, ReadError};
pub use frames::{FrameBatch, FrameCursor, WalFrame};
pub use handoff::{Handoff, HandoffStep};
pub use offsets::ReadSlot;
pub use position::{Discontinuity, POSITION_TOKEN_SIZE, PositionToken, PositionTokenError};
pub use protected::{HandoffAttempt, Protected, StayReason};
pub use read_slot::{MarkAdvance, ReadMarkPolicy};
pub use wal_header::WalHeaderProblem;
