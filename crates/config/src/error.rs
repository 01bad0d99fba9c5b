//! Why a config file cannot be used. Every message names the file, the line where it can
//! tell, the key, and what to write instead.
//!
//! This module only describes failures; the checks live in [`crate::raw`] (syntax, keys,
//! types) and [`crate::build`] (what the values must add up to).

use std::path::PathBuf;

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The YAML is malformed, or a key is unknown, unsupported or has a value of the wrong
    /// type. `column` is 0 when only the line is known.
    #[error("{file}:{line}{}: {message}", if *column > 0 { format!(":{column}") } else { String::new() })]
    Syntax {
        /// The file, as given.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column, or 0.
        column: u64,
        /// What is wrong, naming the key.
        message: String,
    },
    /// The values do not add up (a database without `path`, a replica without `url`/`type`,
    /// an s3 replica without `bucket`, …). `line` is that of the block, 0 if unknown.
    #[error("{file}{}: {message}", if *line > 0 { format!(":{line}") } else { String::new() })]
    Invalid {
        /// The file, as given.
        file: String,
        /// 1-based line of the offending block or key.
        line: u64,
        /// What is wrong and what to write.
        message: String,
    },
}
