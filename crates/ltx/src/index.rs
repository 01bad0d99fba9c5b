//! The page index between the end-of-pages marker and the trailer.
//!
//! Byte layout:
//!
//! ```text
//!   per page, in page-number order (the order of the frames):
//!     uvarint pgno
//!     uvarint offset of the page frame from the start of the file
//!     uvarint size of the page frame (header + size field + compressed data)
//!   uvarint 0                     end of entries
//!   u64 BE  length of the entries and the end byte (not counting these 8 bytes)
//! ```
//!
//! Uvarints are Go's `encoding/binary` ones: 7 bits per byte, least significant first, at
//! most 10 bytes, and a value over 64 bits is an error.
//!
//! The index restates what the frames already say, so the decoder checks it without
//! keeping it: while decoding frames it hashes the index bytes those frames imply
//! ([`IndexDigest`]); the index read from the file must have the same length and hash,
//! and each entry's offset must be where its frame started.

use crate::checksum::Crc64;

/// The most bytes a Go uvarint of a `u64` takes.
pub(crate) const MAX_UVARINT_LEN: usize = 10;

/// Appends the Go uvarint encoding of `value` to `out`.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Decodes a Go uvarint one byte at a time.
#[derive(Default)]
pub(crate) struct UvarintReader {
    value: u64,
    shift: u32,
    len: usize,
}

/// Result of feeding one byte to a [`UvarintReader`].
pub(crate) enum Uvarint {
    /// More bytes needed.
    More,
    /// The value is complete.
    Done(u64),
    /// The value does not fit 64 bits.
    Overflow,
}

impl UvarintReader {
    pub(crate) fn push(&mut self, byte: u8) -> Uvarint {
        // The 10th byte may only contribute the single top bit (bit 63).
        if self.len == MAX_UVARINT_LEN - 1 && byte > 1 {
            return Uvarint::Overflow;
        }
        self.value |= u64::from(byte & 0x7f) << self.shift;
        self.len += 1;
        if byte < 0x80 {
            return Uvarint::Done(self.value);
        }
        self.shift += 7;
        Uvarint::More
    }
}

/// Length and CRC of a run of index bytes, to compare two runs without storing either.
#[derive(Debug, Default)]
pub(crate) struct IndexDigest {
    crc: Crc64,
    len: u64,
    entry: Vec<u8>,
}

impl IndexDigest {
    /// Feeds the bytes of one entry as the encoder writes it.
    pub(crate) fn push_entry(&mut self, pgno: u32, offset: u64, size: u64) {
        let mut entry = std::mem::take(&mut self.entry);
        entry.clear();
        put_uvarint(&mut entry, u64::from(pgno));
        put_uvarint(&mut entry, offset);
        put_uvarint(&mut entry, size);
        self.push_bytes(&entry);
        self.entry = entry;
    }

    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn same_as(&self, other: &IndexDigest) -> bool {
        self.len == other.len && self.crc.value() == other.crc.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Option<u64> {
        let mut r = UvarintReader::default();
        for &b in bytes {
            match r.push(b) {
                Uvarint::More => {}
                Uvarint::Done(v) => return Some(v),
                Uvarint::Overflow => return None,
            }
        }
        None
    }

    #[test]
    fn uvarints_match_go_encoding() {
        // Encodings from Go's encoding/binary documentation and spec (LEB128).
        let cases: [(u64, &[u8]); 5] = [
            (0, &[0x00]),
            (1, &[0x01]),
            (300, &[0xac, 0x02]),
            (672, &[0xa0, 0x05]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            put_uvarint(&mut out, value);
            assert_eq!(out, bytes, "{value}");
            assert_eq!(read(bytes), Some(value));
        }
        assert_eq!(
            read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        assert_eq!(read(&[0x80; 11]), None);
    }
}
