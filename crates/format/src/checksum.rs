//! SQLite's WAL checksum (wal.c `walChecksumBytes`).
//!
//! State is two wrapping u32 words (s1, s2). Input is a multiple of 8 bytes, read as pairs
//! of u32 words (x0, x1) in the [`WordOrder`] the WAL magic selects; for each pair:
//! `s1 += x0 + s2; s2 += x1 + s1`. The chain runs from the WAL header (bytes 0..24,
//! seed 0) through every frame (frame header bytes 0..8, then the page), each seeded with
//! the previous result. The wal-index header uses the same sum in host order.
//!
//! ```
//! use walcast_format::{WalChecksum, WordOrder};
//! let data = [0u8, 0, 0, 1, 0, 0, 0, 2];
//! let sum = WalChecksum::ZERO.extend(WordOrder::Big, &data).unwrap();
//! assert_eq!(sum, WalChecksum { s1: 1, s2: 3 });
//! ```

/// The byte order of the u32 words fed to the checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WordOrder {
    /// Little-endian words (WAL magic 0x377f0682).
    Little,
    /// Big-endian words (WAL magic 0x377f0683).
    Big,
}

impl WordOrder {
    /// The host's order: what SQLite uses for the wal-index header checksum and for the
    /// WAL header it writes itself.
    pub fn native() -> Self {
        if cfg!(target_endian = "big") {
            Self::Big
        } else {
            Self::Little
        }
    }

    /// The name `walcast inspect` prints: `"little"` or `"big"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Little => "little",
            Self::Big => "big",
        }
    }
}

/// A running checksum value (s1, s2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WalChecksum {
    /// First word.
    pub s1: u32,
    /// Second word.
    pub s2: u32,
}

/// Checksummed input whose length is not a multiple of 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("checksum input of {0} bytes is not a multiple of 8")]
pub struct UnalignedChecksumInput(pub usize);

impl WalChecksum {
    /// The seed of a chain: (0, 0).
    pub const ZERO: Self = Self { s1: 0, s2: 0 };

    /// Continues the chain over `data`, which must be a multiple of 8 bytes long.
    pub fn extend(self, order: WordOrder, data: &[u8]) -> Result<Self, UnalignedChecksumInput> {
        if !data.len().is_multiple_of(8) {
            return Err(UnalignedChecksumInput(data.len()));
        }
        let (mut s1, mut s2) = (self.s1, self.s2);
        let word = match order {
            WordOrder::Little => u32::from_le_bytes,
            WordOrder::Big => u32::from_be_bytes,
        };
        for pair in data.chunks_exact(8) {
            let (a, b) = pair.split_at(4);
            // chunks_exact(8) guarantees both halves are exactly 4 bytes.
            let x0 = word([a[0], a[1], a[2], a[3]]);
            let x1 = word([b[0], b[1], b[2], b[3]]);
            s1 = s1.wrapping_add(x0).wrapping_add(s2);
            s2 = s2.wrapping_add(x1).wrapping_add(s1);
        }
        Ok(Self { s1, s2 })
    }

    /// Decodes a checksum stored as two big-endian u32 words (WAL header and frames).
    pub fn from_be_bytes(bytes: [u8; 8]) -> Self {
        let [a, b, c, d, e, f, g, h] = bytes;
        Self {
            s1: u32::from_be_bytes([a, b, c, d]),
            s2: u32::from_be_bytes([e, f, g, h]),
        }
    }

    /// Encodes as two big-endian u32 words, as the WAL stores it.
    pub fn to_be_bytes(self) -> [u8; 8] {
        let [a, b, c, d] = self.s1.to_be_bytes();
        let [e, f, g, h] = self.s2.to_be_bytes();
        [a, b, c, d, e, f, g, h]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_order_changes_the_sum() {
        let data: Vec<u8> = (0u8..64).collect();
        let le = WalChecksum::ZERO.extend(WordOrder::Little, &data).unwrap();
        let be = WalChecksum::ZERO.extend(WordOrder::Big, &data).unwrap();
        assert_ne!(le, be);
    }

    #[test]
    fn chaining_equals_one_pass() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
        for order in [WordOrder::Little, WordOrder::Big] {
            let whole = WalChecksum::ZERO.extend(order, &data).unwrap();
            let (a, b) = data.split_at(1024);
            let chained = WalChecksum::ZERO
                .extend(order, a)
                .unwrap()
                .extend(order, b)
                .unwrap();
            assert_eq!(whole, chained);
        }
    }

    #[test]
    fn unaligned_input_is_an_error() {
        assert_eq!(
            WalChecksum::ZERO.extend(WordOrder::Big, &[0; 12]),
            Err(UnalignedChecksumInput(12))
        );
    }

    #[test]
    fn be_bytes_round_trip() {
        let c = WalChecksum {
            s1: 0xdead_beef,
            s2: 0x0102_0304,
        };
        assert_eq!(WalChecksum::from_be_bytes(c.to_be_bytes()), c);
    }
}
