//! The real components walcast's tests run against, never mocks.
//!
//! This crate owns starting and driving them: SQLite in separate processes (writers,
//! checkpoints, integrity checks, content dumps), the real Litestream 0.5.17 binary, and an
//! S3-protocol server on 127.0.0.1.
//!
//! It is a dev-dependency only: nothing here may reach a shipped binary.

pub mod fault_proxy;
pub mod litestream;
pub mod locks;
pub mod s3;
pub mod sqlite;
pub mod wait;
