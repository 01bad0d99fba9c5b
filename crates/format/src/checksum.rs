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

/// Independent checksum chains run side by side over one block.
const LANES: usize = 4;
/// Word pairs per lane in a block. 4 x 32 measured fastest on x86-64 (benches/README.md):
/// the compiler unrolls the whole block and keeps the four chains in registers.
const LANE_PAIRS: usize = 32;
/// Bytes per block: four lanes of 256 bytes.
const BLOCK_BYTES: usize = LANES * LANE_PAIRS * 8;
/// `M^LANE_PAIRS` for `M = [[1, 1], [1, 2]]`, the pair step's linear part.
const JUMP: [[u32; 2]; 2] = step_matrix_power(LANE_PAIRS);

const fn step_matrix_power(n: usize) -> [[u32; 2]; 2] {
    let mut acc: [[u32; 2]; 2] = [[1, 0], [0, 1]];
    let mut i = 0;
    while i < n {
        // acc = M * acc, with M = [[1, 1], [1, 2]].
        let [[a, b], [c, d]] = acc;
        acc = [
            [a.wrapping_add(c), b.wrapping_add(d)],
            [
                a.wrapping_add(c.wrapping_mul(2)),
                b.wrapping_add(d.wrapping_mul(2)),
            ],
        ];
        i += 1;
    }
    acc
}

/// The two words of one 8-byte pair, in the checksum's word order.
#[inline(always)]
fn words<const BIG: bool>(pair: [u8; 8]) -> (u32, u32) {
    let [a, b, c, d, e, f, g, h] = pair;
    if BIG {
        (
            u32::from_be_bytes([a, b, c, d]),
            u32::from_be_bytes([e, f, g, h]),
        )
    } else {
        (
            u32::from_le_bytes([a, b, c, d]),
            u32::from_le_bytes([e, f, g, h]),
        )
    }
}

impl WalChecksum {
    /// The seed of a chain: (0, 0).
    pub const ZERO: Self = Self { s1: 0, s2: 0 };

    /// Continues the chain over `data`, which must be a multiple of 8 bytes long.
    pub fn extend(self, order: WordOrder, data: &[u8]) -> Result<Self, UnalignedChecksumInput> {
        if !data.len().is_multiple_of(8) {
            return Err(UnalignedChecksumInput(data.len()));
        }
        Ok(match order {
            WordOrder::Little => self.extend_aligned::<false>(data),
            WordOrder::Big => self.extend_aligned::<true>(data),
        })
    }

    /// The sum over `data` (a multiple of 8 bytes) in blocks of [`LANES`] independent
    /// chains, then the rest pair by pair.
    ///
    /// Why this equals the one-pair-at-a-time definition: a pair step is linear,
    /// `(s1, s2) -> M (s1, s2) + (x0, x0 + x1)` with `M = [[1, 1], [1, 2]]` over wrapping
    /// u32, so `n` steps from state `v` give `M^n v + C`, where `C` is the sum of the same
    /// `n` pairs started from zero. Each lane computes its `C` from zero, independently of
    /// the others (the CPU overlaps the four dependency chains), and the lanes are folded
    /// in order with the precomputed [`JUMP`] = `M^LANE_PAIRS`.
    fn extend_aligned<const BIG: bool>(self, data: &[u8]) -> Self {
        let (blocks, rest) = data.as_chunks::<BLOCK_BYTES>();
        let mut state = self;
        for block in blocks {
            let (pairs, _) = block.as_chunks::<8>();
            let mut lanes = [Self::ZERO; LANES];
            for pair in 0..LANE_PAIRS {
                for (lane, sum) in lanes.iter_mut().enumerate() {
                    // In range: a block is exactly LANES * LANE_PAIRS pairs; lane `l` owns
                    // pairs l*LANE_PAIRS .. (l+1)*LANE_PAIRS.
                    let (x0, x1) = words::<BIG>(pairs[lane * LANE_PAIRS + pair]);
                    *sum = sum.step(x0, x1);
                }
            }
            for lane in lanes {
                state = state.jump().add(lane);
            }
        }
        let (pairs, _) = rest.as_chunks::<8>();
        for &pair in pairs {
            let (x0, x1) = words::<BIG>(pair);
            state = state.step(x0, x1);
        }
        state
    }

    /// One pair step of `walChecksumBytes`.
    #[inline(always)]
    fn step(self, x0: u32, x1: u32) -> Self {
        let s1 = self.s1.wrapping_add(x0).wrapping_add(self.s2);
        let s2 = self.s2.wrapping_add(x1).wrapping_add(s1);
        Self { s1, s2 }
    }

    /// `M^LANE_PAIRS` applied to the state: the effect of a lane's steps on its seed.
    #[inline(always)]
    fn jump(self) -> Self {
        let [[a, b], [c, d]] = JUMP;
        Self {
            s1: a
                .wrapping_mul(self.s1)
                .wrapping_add(b.wrapping_mul(self.s2)),
            s2: c
                .wrapping_mul(self.s1)
                .wrapping_add(d.wrapping_mul(self.s2)),
        }
    }

    #[inline(always)]
    fn add(self, other: Self) -> Self {
        Self {
            s1: self.s1.wrapping_add(other.s1),
            s2: self.s2.wrapping_add(other.s2),
        }
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

    /// The definition, one pair at a time (wal.c `walChecksumBytes`).
    fn reference(order: WordOrder, seed: WalChecksum, data: &[u8]) -> WalChecksum {
        let (mut s1, mut s2) = (seed.s1, seed.s2);
        for pair in data.chunks_exact(8) {
            let w = |b: &[u8]| {
                let b = [b[0], b[1], b[2], b[3]];
                match order {
                    WordOrder::Little => u32::from_le_bytes(b),
                    WordOrder::Big => u32::from_be_bytes(b),
                }
            };
            s1 = s1.wrapping_add(w(&pair[..4])).wrapping_add(s2);
            s2 = s2.wrapping_add(w(&pair[4..])).wrapping_add(s1);
        }
        WalChecksum { s1, s2 }
    }

    #[test]
    fn lanes_equal_the_definition_at_every_length_and_seed() {
        let data: Vec<u8> = (0..3 * BLOCK_BYTES as u32 + 800)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let seed = WalChecksum {
            s1: 0xffff_fff0,
            s2: 0x1234_5678,
        };
        for order in [WordOrder::Little, WordOrder::Big] {
            for len in (0..=data.len())
                .step_by(8)
                .filter(|l| l % 504 < 16 || l % BLOCK_BYTES < 16)
            {
                let got = seed.extend(order, &data[..len]).unwrap();
                assert_eq!(got, reference(order, seed, &data[..len]), "{order:?} {len}");
            }
        }
    }

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
