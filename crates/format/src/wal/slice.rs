//! A WAL held in memory (or mapped, for an offline file that cannot shrink): frames are
//! borrowed from the slice, nothing is copied.
//!
//! ```
//! use walcast_format::{PageSize, WordOrder};
//! use walcast_format::wal::{Salts, StopReason, WalHeader, WalSlice, WalWriter};
//! let header = WalHeader::new(WordOrder::Big, PageSize::new(512).unwrap(), 0, Salts::default());
//! let mut writer = WalWriter::new(Vec::new(), header).unwrap();
//! writer.write_frame(1, 0, &[0; 512]).unwrap();
//! writer.write_frame(2, 2, &[0; 512]).unwrap();
//! writer.write_frame(1, 0, &[0; 512]).unwrap(); // valid, but no commit follows
//! let bytes = writer.into_inner();
//! let wal = WalSlice::parse(&bytes).unwrap();
//! let recovery = wal.recover();
//! assert_eq!((recovery.frames_valid, recovery.mx_frame()), (3, 2));
//! assert_eq!(recovery.stop.reason, StopReason::EndOfFile);
//! assert_eq!(wal.transactions()[0].db_size_pages(), 2);
//! ```

use crate::wal::chain::{FrameChain, Stop, StopReason, WalFrame};
use crate::wal::header::{WAL_HEADER_SIZE, WalHeader, WalHeaderError, frames_in_len};
use crate::wal::recovery::{RecoveryTally, Transaction, WalRecovery};

/// A WAL whose header is valid, over borrowed bytes.
#[derive(Clone, Copy, Debug)]
pub struct WalSlice<'a> {
    header: WalHeader,
    bytes: &'a [u8],
}

impl<'a> WalSlice<'a> {
    /// Validates the header of the WAL in `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WalHeaderError> {
        Ok(Self {
            header: WalHeader::parse(bytes)?,
            bytes,
        })
    }

    /// The header.
    pub fn header(&self) -> &WalHeader {
        &self.header
    }

    /// Whole frames in the slice, valid or not.
    pub fn frames_total(&self) -> u32 {
        frames_in_len(self.header.page_size, self.bytes.len() as u64)
    }

    /// The valid frames from frame 1, in order; [`WalFrames::stop`] says why they ended.
    pub fn frames(&self) -> WalFrames<'a> {
        WalFrames {
            chain: FrameChain::new(&self.header),
            rest: self.bytes.get(WAL_HEADER_SIZE..).unwrap_or_default(),
            stop: None,
        }
    }

    /// The valid end of the log, as recovery decides it.
    pub fn recover(&self) -> WalRecovery {
        let mut tally = RecoveryTally::new(self.header);
        let mut frames = self.frames();
        for frame in frames.by_ref() {
            tally.observe(&frame);
        }
        tally.finish(frames.stop_or_end())
    }

    /// The committed transactions, in order. Valid frames after the last commit are left out.
    pub fn transactions(&self) -> Vec<Transaction<'a>> {
        let mut done = Vec::new();
        let mut open = Vec::new();
        for frame in self.frames() {
            let commits = frame.is_commit();
            open.push(frame);
            if commits {
                done.extend(Transaction::new(std::mem::take(&mut open)));
            }
        }
        done
    }
}

/// Iterator over the valid frames of a [`WalSlice`].
#[derive(Clone, Debug)]
pub struct WalFrames<'a> {
    chain: FrameChain,
    rest: &'a [u8],
    stop: Option<Stop>,
}

impl WalFrames<'_> {
    /// Why iteration ended; `None` while frames remain.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    fn stop_or_end(&self) -> Stop {
        self.stop
            .unwrap_or_else(|| self.chain.stop(StopReason::EndOfFile))
    }
}

impl<'a> Iterator for WalFrames<'a> {
    type Item = WalFrame<'a>;

    fn next(&mut self) -> Option<WalFrame<'a>> {
        if self.stop.is_some() {
            return None;
        }
        if self.rest.is_empty() {
            self.stop = Some(self.chain.stop(StopReason::EndOfFile));
            return None;
        }
        let size = self.chain.frame_size().min(self.rest.len());
        let (frame, rest) = self.rest.split_at(size);
        match self.chain.verify(frame) {
            Ok(valid) => {
                self.rest = rest;
                Some(valid)
            }
            Err(stop) => {
                self.stop = Some(stop);
                None
            }
        }
    }
}
