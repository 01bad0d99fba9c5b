//! The position token: how far the replica has copied the WAL, in a form that can be
//! persisted and checked against the live WAL later (reference §6 (d)).
//!
//! ```text
//! encoded token, 20 bytes, big-endian
//! offset  size  field
//!      0     4  salt-1 of the WAL generation
//!      4     4  salt-2
//!      8     4  frame N (>= 1): the last frame copied, always the end of a transaction
//!     12     8  cumulative WAL checksum after frame N (s1, s2)
//! ```
//!
//! A token still holds if the WAL header's salts equal the token's, `mxFrame >= N`, and
//! the checksum stored in frame N's header (offset `walFrameOffset(N) + 16`) equals the
//! token's. Salts alone cannot count restarts (reference §2 caveat): any mismatch is a
//! [`Discontinuity`] and the replica needs a new snapshot.
//!
//! ```
//! use walcast_format::WalChecksum;
//! use walcast_lock::PositionToken;
//! let t = PositionToken::new((1, 2), 10, WalChecksum { s1: 3, s2: 4 }).unwrap();
//! assert_eq!(PositionToken::decode(&t.encode()), Ok(t));
//! assert_eq!(t.to_string().parse::<PositionToken>(), Ok(t));
//! ```

use std::fmt;
use std::str::FromStr;

use walcast_format::WalChecksum;

use crate::wal_header::{be_checksum, be_u32};

/// Length of [`PositionToken::encode`]'s output.
pub const POSITION_TOKEN_SIZE: usize = 20;

/// Salts, frame number and running checksum after the last copied frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PositionToken {
    salts: (u32, u32),
    frame: u32,
    checksum: WalChecksum,
}

/// A token that cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PositionTokenError {
    /// The encoding is not exactly 20 bytes.
    #[error("position token is {0} bytes, expected {POSITION_TOKEN_SIZE}")]
    Length(usize),
    /// Frame 0 (offset 8) is not a position: a token names a copied frame.
    #[error("position token frame at offset 8 is 0; a token names a copied frame (>= 1)")]
    FrameZero,
    /// The text form is not `SALT1-SALT2@FRAME:S1S2` in hex/decimal.
    #[error("position token text {0:?} is not of the form 0123abcd-4567ef01@42:89abcdef01234567")]
    Text(String),
}

impl PositionToken {
    /// A token for frame `frame` (>= 1) of the generation `salts`, whose cumulative
    /// checksum after that frame is `checksum`.
    pub fn new(
        salts: (u32, u32),
        frame: u32,
        checksum: WalChecksum,
    ) -> Result<Self, PositionTokenError> {
        if frame == 0 {
            return Err(PositionTokenError::FrameZero);
        }
        Ok(Self {
            salts,
            frame,
            checksum,
        })
    }

    /// The generation's (salt-1, salt-2).
    pub fn salts(&self) -> (u32, u32) {
        self.salts
    }

    /// The last copied frame, N >= 1.
    pub fn frame(&self) -> u32 {
        self.frame
    }

    /// The cumulative checksum after frame N.
    pub fn checksum(&self) -> WalChecksum {
        self.checksum
    }

    /// The 20-byte encoding (layout in the module docs).
    pub fn encode(&self) -> [u8; POSITION_TOKEN_SIZE] {
        let mut out = [0u8; POSITION_TOKEN_SIZE];
        out[0..4].copy_from_slice(&self.salts.0.to_be_bytes());
        out[4..8].copy_from_slice(&self.salts.1.to_be_bytes());
        out[8..12].copy_from_slice(&self.frame.to_be_bytes());
        out[12..20].copy_from_slice(&self.checksum.to_be_bytes());
        out
    }

    /// Decodes [`PositionToken::encode`]'s output; anything else is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, PositionTokenError> {
        if bytes.len() != POSITION_TOKEN_SIZE {
            return Err(PositionTokenError::Length(bytes.len()));
        }
        Self::new(
            (be_u32(bytes, 0), be_u32(bytes, 4)),
            be_u32(bytes, 8),
            be_checksum(bytes, 12),
        )
    }
}

impl fmt::Display for PositionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:08x}-{:08x}@{}:{:08x}{:08x}",
            self.salts.0, self.salts.1, self.frame, self.checksum.s1, self.checksum.s2
        )
    }
}

impl FromStr for PositionToken {
    type Err = PositionTokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PositionTokenError::Text(s.chars().take(64).collect());
        let (salts, rest) = s.split_once('@').ok_or_else(bad)?;
        let (salt1, salt2) = salts.split_once('-').ok_or_else(bad)?;
        let (frame, sum) = rest.split_once(':').ok_or_else(bad)?;
        let hex8 = |t: &str| {
            if t.len() == 8 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                u32::from_str_radix(t, 16).map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        if sum.len() != 16 || !frame.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let (s1, s2) = sum.split_at_checked(8).ok_or_else(bad)?;
        Self::new(
            (hex8(salt1)?, hex8(salt2)?),
            frame.parse().map_err(|_| bad())?,
            WalChecksum {
                s1: hex8(s1)?,
                s2: hex8(s2)?,
            },
        )
    }
}

/// Why a position no longer continues into the live WAL. Each one means the replica must
/// start again from a new snapshot; none of them is an error of the attachment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Discontinuity {
    /// The live WAL belongs to another generation than the position: the WAL was restarted,
    /// truncated, deleted or replaced while walcast was not protecting it.
    #[error(
        "WAL generation changed: position has salts {:08x}-{:08x}, the WAL now has {:08x}-{:08x} (restarted, truncated or replaced while walcast was detached)",
        token.0, token.1, live.0, live.1
    )]
    GenerationChanged {
        /// Salts of the position.
        token: (u32, u32),
        /// Salts of the live WAL.
        live: (u32, u32),
    },
    /// The WAL holds fewer committed frames than the position: frames were rolled back
    /// (power loss under `synchronous=NORMAL`) or the WAL was replaced.
    #[error(
        "WAL holds {mx_frame} committed frames, fewer than the position's frame {frame} (rolled back or replaced)"
    )]
    Behind {
        /// The position's frame.
        frame: u32,
        /// The live `mxFrame`.
        mx_frame: u32,
    },
    /// Frame N's stored checksum differs from the position's: the frame was rewritten.
    #[error(
        "frame {frame} checksum is {:08x}{:08x}, the position recorded {:08x}{:08x} (frames were rolled back and rewritten)",
        live.s1, live.s2, token.s1, token.s2
    )]
    FrameRewritten {
        /// The position's frame.
        frame: u32,
        /// Checksum of the position.
        token: WalChecksum,
        /// Checksum stored in the live frame.
        live: WalChecksum,
    },
    /// The WAL file's header does not belong to the generation the wal-index describes.
    #[error(
        "WAL header salts {:08x}-{:08x} differ from the wal-index's {:08x}-{:08x} (WAL replaced?)",
        wal.0, wal.1, index.0, index.1
    )]
    WalHeaderMismatch {
        /// Salts in the WAL file header.
        wal: (u32, u32),
        /// Salts in the wal-index header.
        index: (u32, u32),
    },
    /// The WAL file header is unusable although the wal-index says frames are committed.
    #[error("WAL header unusable while the wal-index has {mx_frame} committed frames: {problem}")]
    WalHeaderInvalid {
        /// The live `mxFrame`.
        mx_frame: u32,
        /// What is wrong.
        problem: crate::WalHeaderProblem,
    },
    /// The WAL file ends before a committed frame.
    #[error("WAL is {wal_len} bytes, too short for committed frame {frame}")]
    FrameMissing {
        /// The frame.
        frame: u32,
        /// WAL length.
        wal_len: u64,
    },
    /// `mxFrame` went down within one generation while walcast was attached.
    #[error("mxFrame shrank from {from} to {to} within one WAL generation (frames rolled back)")]
    MxFrameShrank {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// The salts changed while walcast held a read slot over committed frames, which
    /// SQLite's lock protocol forbids: somebody rewrote the WAL without SQLite.
    #[error(
        "WAL salts changed from {:08x}-{:08x} to {:08x}-{:08x} while walcast protected {mx_frame} committed frames",
        from.0, from.1, to.0, to.1
    )]
    SaltsChangedWhileProtected {
        /// Salts before.
        from: (u32, u32),
        /// Salts after.
        to: (u32, u32),
        /// Committed frames at the time.
        mx_frame: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> PositionToken {
        PositionToken::new(
            (0xdead_beef, 7),
            4242,
            WalChecksum {
                s1: 1,
                s2: 0xffff_ffff,
            },
        )
        .unwrap()
    }

    #[test]
    fn encodings_round_trip() {
        let t = token();
        assert_eq!(PositionToken::decode(&t.encode()), Ok(t));
        assert_eq!(t.to_string(), "deadbeef-00000007@4242:00000001ffffffff");
        assert_eq!(t.to_string().parse::<PositionToken>(), Ok(t));
    }

    #[test]
    fn hostile_encodings_are_errors() {
        assert_eq!(
            PositionToken::decode(&[0; 19]),
            Err(PositionTokenError::Length(19))
        );
        assert_eq!(
            PositionToken::decode(&[0; 21]),
            Err(PositionTokenError::Length(21))
        );
        assert_eq!(
            PositionToken::decode(&[0; 20]),
            Err(PositionTokenError::FrameZero)
        );
        for text in [
            "",
            "deadbeef-00000007@4242",
            "deadbeef-00000007@-1:00000001ffffffff",
            "deadbeef-0000007@4242:00000001ffffffff",
            "deadbeef-00000007@4242:00000001fffffff",
            "deadbeef-00000007@99999999999:00000001ffffffff",
            "deadbeef-00000007@0:00000001ffffffff",
            "+eadbeef-00000007@1:00000001ffffffff",
            "deadbeef-00000007@1:0000000éffffffff",
        ] {
            assert!(text.parse::<PositionToken>().is_err(), "{text:?} accepted");
        }
    }
}
