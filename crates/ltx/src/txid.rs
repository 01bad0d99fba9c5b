//! Transaction IDs and LTX file names, spelled exactly as Litestream spells them.
//!
//! A TXID counts replication batches (one L0 file per sync), not SQLite transactions.
//! Litestream prints it as 16 lowercase hex digits and parses it with `ParseTXID`: exactly
//! 16 characters, hex digits of either case, nothing else (no sign, no `0x`, no `_`).
//!
//! Invariant: a [`TxId`] is never 0. Litestream uses 0 only to mean "none" (no position
//! yet, no `-txid` given) and an LTX header with a zero TXID is invalid; here "none" is
//! `Option<TxId>`.
//!
//! ```
//! use walcast_ltx::{LtxFileName, TxId};
//! let t: TxId = "00000000000000ff".parse().unwrap();
//! assert_eq!(t.get(), 255);
//! assert_eq!(t.to_string(), "00000000000000ff");
//! let name: LtxFileName = "0000000000000001-00000000000000ff.ltx".parse().unwrap();
//! assert_eq!((name.min.get(), name.max), (1, t));
//! ```

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

/// A transaction ID: a non-zero `u64`, displayed as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(NonZeroU64);

impl TxId {
    /// The first TXID of every database: files with `min_txid == TxId::FIRST` are snapshots.
    pub const FIRST: TxId = TxId(NonZeroU64::MIN);

    /// `Some` unless `value` is 0, which no LTX file may carry.
    pub const fn new(value: u64) -> Option<Self> {
        match NonZeroU64::new(value) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// The TXID as a number.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// The TXID after this one, or `None` at `u64::MAX`.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }

    /// The TXID before this one, or `None` for [`TxId::FIRST`].
    pub fn prev(self) -> Option<Self> {
        Self::new(self.get() - 1)
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.get())
    }
}

/// Why a string is not a TXID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseTxIdError {
    /// Not exactly 16 characters.
    #[error("invalid transaction id {0:?}: expected exactly 16 hex digits")]
    Length(String),
    /// A character that is not a hex digit.
    #[error("invalid transaction id {0:?}: only hex digits 0-9, a-f are allowed")]
    NotHex(String),
    /// All zeros: Litestream reads this as "no transaction", never as a file's TXID.
    #[error("invalid transaction id {0:?}: transaction ids start at 0000000000000001")]
    Zero(String),
}

impl FromStr for TxId {
    type Err = ParseTxIdError;

    /// Parses like Litestream's `ParseTXID`, except that zero is refused (see the module docs).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 {
            return Err(ParseTxIdError::Length(s.to_owned()));
        }
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseTxIdError::NotHex(s.to_owned()));
        }
        let value = u64::from_str_radix(s, 16).map_err(|_| ParseTxIdError::NotHex(s.to_owned()))?;
        Self::new(value).ok_or_else(|| ParseTxIdError::Zero(s.to_owned()))
    }
}

/// The name of an LTX object: `<min 16 hex>-<max 16 hex>.ltx`, lowercase only (Litestream's
/// listing ignores any other spelling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LtxFileName {
    /// First TXID the file covers.
    pub min: TxId,
    /// Last TXID the file covers.
    pub max: TxId,
}

/// A name that is not `<min16hex>-<max16hex>.ltx`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid LTX file name {0:?}: expected <min>-<max>.ltx with 16 lowercase hex digits each, min <= max, neither zero"
)]
pub struct ParseLtxFileNameError(pub String);

impl FromStr for LtxFileName {
    type Err = ParseLtxFileNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let err = || ParseLtxFileNameError(name.to_owned());
        let stem = name.strip_suffix(".ltx").ok_or_else(err)?;
        let (min, max) = stem.split_once('-').ok_or_else(err)?;
        let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !lower_hex(min) || !lower_hex(max) {
            return Err(err());
        }
        let min: TxId = min.parse().map_err(|_| err())?;
        let max: TxId = max.parse().map_err(|_| err())?;
        if min > max {
            return Err(err());
        }
        Ok(Self { min, max })
    }
}

impl fmt::Display for LtxFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}.ltx", self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_litestream_parse_txid() {
        assert_eq!("0000000000000001".parse::<TxId>().unwrap(), TxId::FIRST);
        // strconv.ParseUint(s, 16, 64) accepts upper case.
        assert_eq!("00000000000000FF".parse::<TxId>().unwrap().get(), 255);
        assert_eq!("ffffffffffffffff".parse::<TxId>().unwrap().get(), u64::MAX);
        for bad in [
            "",
            "1",
            "000000000000001",
            "00000000000000001",
            "0x00000000000001",
        ] {
            assert!(bad.parse::<TxId>().is_err(), "{bad:?}");
        }
        for bad in [
            "+000000000000001",
            "000000000000000g",
            "0000_00000000001",
            " 000000000000001",
        ] {
            assert!(
                matches!(bad.parse::<TxId>(), Err(ParseTxIdError::NotHex(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            "0000000000000000".parse::<TxId>(),
            Err(ParseTxIdError::Zero(_))
        ));
    }

    #[test]
    fn displays_sixteen_lowercase_digits() {
        assert_eq!(TxId::new(0xabc).unwrap().to_string(), "0000000000000abc");
        assert_eq!(TxId::new(u64::MAX).unwrap().to_string(), "ffffffffffffffff");
        assert_eq!(TxId::new(0), None);
        assert_eq!(TxId::FIRST.prev(), None);
        assert_eq!(TxId::new(u64::MAX).unwrap().next(), None);
    }

    #[test]
    fn file_names_round_trip_and_reject_other_spellings() {
        let name = LtxFileName {
            min: TxId::new(3).unwrap(),
            max: TxId::new(0x1f).unwrap(),
        };
        assert_eq!(name.to_string(), "0000000000000003-000000000000001f.ltx");
        assert_eq!(name.to_string().parse::<LtxFileName>().unwrap(), name);
        for bad in [
            "0000000000000003-000000000000001F.ltx",
            "0000000000000003-000000000000001f.LTX",
            "0000000000000003_000000000000001f.ltx",
            "0000000000000003-000000000000001f.ltx.tmp",
            "000000000000001f-0000000000000003.ltx",
            "0000000000000000-0000000000000003.ltx",
            "3-1f.ltx",
        ] {
            assert!(bad.parse::<LtxFileName>().is_err(), "{bad}");
        }
    }
}
