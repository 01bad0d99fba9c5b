//! A WAL writer for tests, fuzz seeds and tools: either word order, and frames damaged on
//! purpose so readers can be tested against each way a log ends.
//!
//! It writes what SQLite's `walFrames` writes; real SQLite reads its output (tested with a
//! WAL in the non-native word order). It must never be pointed at a live database's WAL.

use std::io::{self, Write};

use crate::checksum::WalChecksum;
use crate::wal::chain::FrameHeader;
use crate::wal::header::{Salts, WalHeader};

/// How to damage one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameDamage {
    /// Store a checksum that does not continue the chain.
    Checksum,
    /// Store salts that differ from the header's.
    Salt,
    /// Store page number 0 (checksummed correctly, so only the page number is wrong).
    ZeroPageNumber,
    /// Write only the first `len` bytes of the frame: a torn write. Nothing may follow.
    Torn {
        /// Bytes of the frame written.
        len: usize,
    },
}

/// Appends frames to a WAL, keeping the checksum chain.
#[derive(Debug)]
pub struct WalWriter<W> {
    out: W,
    header: WalHeader,
    checksum: WalChecksum,
    frames: u32,
}

impl<W: Write> WalWriter<W> {
    /// Writes `header` (as given, checksum included) and starts the chain after it.
    pub fn new(mut out: W, header: WalHeader) -> io::Result<Self> {
        out.write_all(&header.encode())?;
        Ok(Self {
            out,
            header,
            checksum: header.checksum,
            frames: 0,
        })
    }

    /// The header written.
    pub fn header(&self) -> &WalHeader {
        &self.header
    }

    /// Frames written so far.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Appends a valid frame. `commit_size` is the database size in pages if this frame
    /// commits, else 0. `page` must be exactly one page.
    pub fn write_frame(&mut self, pgno: u32, commit_size: u32, page: &[u8]) -> io::Result<()> {
        self.write_frame_with(pgno, commit_size, page, None)
    }

    /// Appends a frame damaged as `damage` says. The chain continues as if the frame had
    /// been written correctly, so later frames differ from a valid log only here.
    pub fn write_damaged_frame(
        &mut self,
        pgno: u32,
        commit_size: u32,
        page: &[u8],
        damage: FrameDamage,
    ) -> io::Result<()> {
        self.write_frame_with(pgno, commit_size, page, Some(damage))
    }

    fn write_frame_with(
        &mut self,
        pgno: u32,
        commit_size: u32,
        page: &[u8],
        damage: Option<FrameDamage>,
    ) -> io::Result<()> {
        if page.len() != self.header.page_size.as_usize() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame page is {} bytes, the WAL page size is {}",
                    page.len(),
                    self.header.page_size.get()
                ),
            ));
        }
        let pgno = if damage == Some(FrameDamage::ZeroPageNumber) {
            0
        } else {
            pgno
        };
        let order = self.header.word_order;
        let mut head = FrameHeader {
            pgno,
            commit_size,
            salts: self.header.salts,
            checksum: WalChecksum::ZERO,
        }
        .encode();
        let checksum = self
            .checksum
            .extend(order, head.get(..8).unwrap_or_default())
            .and_then(|c| c.extend(order, page))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut stored = checksum;
        let mut salts = self.header.salts;
        match damage {
            Some(FrameDamage::Checksum) => stored.s2 ^= 0x8000_0001,
            Some(FrameDamage::Salt) => salts.salt2 ^= 1,
            _ => {}
        }
        head[8..16].copy_from_slice(&salts.to_be_bytes());
        head[16..24].copy_from_slice(&stored.to_be_bytes());
        if let Some(FrameDamage::Torn { len }) = damage {
            let mut frame = head.to_vec();
            frame.extend_from_slice(page);
            self.out.write_all(frame.get(..len).unwrap_or(&frame))?;
        } else {
            self.out.write_all(&head)?;
            self.out.write_all(page)?;
        }
        self.checksum = checksum;
        self.frames += 1;
        Ok(())
    }

    /// Flushes and returns the output.
    pub fn into_inner(mut self) -> W {
        let _ = self.out.flush();
        self.out
    }
}

/// Salts that differ from `salts`, for tests that need another generation.
pub fn other_generation(salts: Salts) -> Salts {
    Salts {
        salt1: salts.salt1.wrapping_add(1),
        salt2: !salts.salt2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::WordOrder;
    use crate::page_size::PageSize;
    use crate::wal::{StopReason, WalSlice};

    fn header(order: WordOrder) -> WalHeader {
        WalHeader::new(
            order,
            PageSize::new(512).unwrap(),
            0,
            Salts { salt1: 5, salt2: 6 },
        )
    }

    #[test]
    fn each_damage_ends_the_log_with_its_reason() {
        let cases = [
            (FrameDamage::Checksum, StopReason::ChecksumMismatch),
            (FrameDamage::Salt, StopReason::SaltMismatch),
            (FrameDamage::ZeroPageNumber, StopReason::ZeroPageNumber),
            (FrameDamage::Torn { len: 100 }, StopReason::PartialFrame),
        ];
        for order in [WordOrder::Little, WordOrder::Big] {
            for (damage, reason) in cases {
                let mut w = WalWriter::new(Vec::new(), header(order)).unwrap();
                w.write_frame(1, 1, &[1; 512]).unwrap();
                w.write_damaged_frame(1, 1, &[2; 512], damage).unwrap();
                if !matches!(damage, FrameDamage::Torn { .. }) {
                    w.write_frame(1, 1, &[3; 512]).unwrap();
                }
                let bytes = w.into_inner();
                let r = WalSlice::parse(&bytes).unwrap().recover();
                assert_eq!(r.stop.reason, reason, "{damage:?} {order:?}");
                assert_eq!((r.stop.frame, r.frames_valid, r.mx_frame()), (2, 1, 1));
            }
        }
    }

    #[test]
    fn wrong_page_length_is_refused() {
        let mut w = WalWriter::new(Vec::new(), header(WordOrder::Big)).unwrap();
        assert!(w.write_frame(1, 1, &[0; 511]).is_err());
    }
}
