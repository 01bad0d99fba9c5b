//! Streaming WAL reader: verifies frame by frame from any [`Read`], holding one frame of
//! memory whatever the size of the log.
//!
//! Use it on live files through [`PositionedRead`] (pread: never mmap a WAL that SQLite may
//! truncate), bounded by the wal-index `mxFrame` with [`WalReader::with_frame_limit`] — frames
//! past `mxFrame` may be half-written or belong to a rolled-back transaction.
//!
//! ```
//! use walcast_format::{PageSize, WordOrder};
//! use walcast_format::wal::{Salts, StopReason, WalHeader, WalReader, WalWriter};
//! let header = WalHeader::new(WordOrder::Little, PageSize::new(512).unwrap(), 0, Salts::default());
//! let mut writer = WalWriter::new(Vec::new(), header).unwrap();
//! for pgno in 1..=4 {
//!     writer.write_frame(pgno, if pgno % 2 == 0 { 4 } else { 0 }, &[7; 512]).unwrap();
//! }
//! let bytes = writer.into_inner();
//!
//! // Read the first two frames, keep the position, resume later from frame 3.
//! let mut reader = WalReader::open(&bytes[..]).unwrap().with_frame_limit(2);
//! while let Some(frame) = reader.next_frame().unwrap() { let _ = frame.page(); }
//! assert_eq!(reader.stop().unwrap().reason, StopReason::FrameLimit);
//! let position = reader.position();
//!
//! let rest = &bytes[header.frame_offset(3) as usize..];
//! let mut resumed = WalReader::resume(rest, header, position);
//! assert_eq!(resumed.next_frame().unwrap().unwrap().number(), 3);
//! ```

use std::io::{self, Read};

use crate::wal::chain::{FrameChain, Stop, StopReason, WalFrame, WalPosition};
use crate::wal::header::{WAL_HEADER_SIZE, WalHeader, WalHeaderError};
use crate::wal::recovery::{RecoveryTally, WalRecovery};

/// A WAL that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalReadError {
    /// The header is not one SQLite would use.
    #[error(transparent)]
    Header(#[from] WalHeaderError),
    /// Reading failed.
    #[error("reading the WAL at offset {offset}: {source}")]
    Io {
        /// Byte offset of the read that failed.
        offset: u64,
        /// The I/O error.
        source: io::Error,
    },
}

/// Verifies the frames of one WAL generation as they stream in.
#[derive(Debug)]
pub struct WalReader<R> {
    source: R,
    header: WalHeader,
    chain: FrameChain,
    buf: Vec<u8>,
    limit: Option<u32>,
    stop: Option<Stop>,
}

impl<R: Read> WalReader<R> {
    /// Reads and validates the header; the next frame read is frame 1.
    pub fn open(mut source: R) -> Result<Self, WalReadError> {
        let mut head = [0u8; WAL_HEADER_SIZE];
        let got = read_full(&mut source, &mut head)
            .map_err(|source| WalReadError::Io { offset: 0, source })?;
        let header = WalHeader::parse(head.get(..got).unwrap_or_default())?;
        Ok(Self::resume(
            source,
            header,
            FrameChain::new(&header).position(),
        ))
    }

    /// Continues after `position.frame`; `source` must be positioned at that next frame
    /// (e.g. a [`PositionedRead`] at `header.frame_offset(position.frame + 1)`).
    pub fn resume(source: R, header: WalHeader, position: WalPosition) -> Self {
        let chain = FrameChain::resume(&header, position);
        Self {
            source,
            header,
            buf: vec![0; chain.frame_size()],
            chain,
            limit: None,
            stop: None,
        }
    }

    /// Stops after frame `last` (inclusive), with [`StopReason::FrameLimit`].
    pub fn with_frame_limit(mut self, last: u32) -> Self {
        self.limit = Some(last);
        self
    }

    /// The header.
    pub fn header(&self) -> &WalHeader {
        &self.header
    }

    /// The resume token after the last verified frame.
    pub fn position(&self) -> WalPosition {
        self.chain.position()
    }

    /// Why reading ended; `None` while frames may remain.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// The next valid frame, or `None` once the scan has stopped (see [`WalReader::stop`]).
    /// An invalid frame is not an error: it is where the valid log ends.
    pub fn next_frame(&mut self) -> Result<Option<WalFrame<'_>>, WalReadError> {
        if self.stop.is_some() {
            return Ok(None);
        }
        if self
            .limit
            .is_some_and(|last| self.chain.next_frame() > last)
        {
            self.stop = Some(self.chain.stop(StopReason::FrameLimit));
            return Ok(None);
        }
        let got =
            read_full(&mut self.source, &mut self.buf).map_err(|source| WalReadError::Io {
                offset: self.chain.next_offset(),
                source,
            })?;
        let verified = match got {
            0 => Err(self.chain.stop(StopReason::EndOfFile)),
            n if n < self.buf.len() => Err(self.chain.stop(StopReason::PartialFrame)),
            _ => self.chain.verify(&self.buf),
        };
        match verified {
            Ok(frame) => Ok(Some(frame)),
            Err(stop) => {
                self.stop = Some(stop);
                Ok(None)
            }
        }
    }

    /// Reads to the end of the valid log and concludes as recovery does, in one frame of
    /// memory.
    pub fn recover(mut self) -> Result<WalRecovery, WalReadError> {
        let mut tally = RecoveryTally::new(self.header);
        while let Some(frame) = self.next_frame()? {
            tally.observe(&frame);
        }
        let stop = self
            .stop
            .unwrap_or_else(|| self.chain.stop(StopReason::EndOfFile));
        Ok(tally.finish(stop))
    }
}

/// Fills `buf` as far as the source allows; returns the bytes read (short only at EOF).
fn read_full(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A [`Read`] over a file by positioned reads (pread): it never moves the file's shared
/// cursor, so one long-lived descriptor can serve many readers.
#[cfg(unix)]
#[derive(Debug)]
pub struct PositionedRead<'f> {
    file: &'f std::fs::File,
    offset: u64,
}

#[cfg(unix)]
impl<'f> PositionedRead<'f> {
    /// Reads `file` from byte `offset` on.
    pub fn new(file: &'f std::fs::File, offset: u64) -> Self {
        Self { file, offset }
    }

    /// The offset of the next read.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

#[cfg(unix)]
impl Read for PositionedRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}
