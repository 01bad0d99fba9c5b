//! The decoder's input: a buffered reader that knows its byte offset and turns a short
//! read into a `Truncated` error naming the structure being read.

use std::io::{self, BufRead, BufReader, Read};

use crate::error::{DecodeError, DecodeErrorKind};

/// Read buffer size: a few small reads per page frame become one read per 64 KiB.
const BUFFER: usize = 1 << 16;

pub(crate) struct Source<R> {
    inner: BufReader<R>,
    offset: u64,
}

impl<R: Read> Source<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self {
            inner: BufReader::with_capacity(BUFFER, reader),
            offset: 0,
        }
    }

    /// Offset of the next byte to be read.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Fills `buf` entirely; `what` names the structure for a truncation error, which is
    /// reported at the offset where the file ended.
    pub(crate) fn read_exact(
        &mut self,
        buf: &mut [u8],
        what: &'static str,
    ) -> Result<(), DecodeError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => {
                    self.offset += filled as u64;
                    return Err(DecodeError::new(
                        self.offset,
                        DecodeErrorKind::Truncated(what),
                    ));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(DecodeError::new(self.offset + filled as u64, e)),
            }
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Reads a fixed-size array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        self.read_exact(&mut out, what)?;
        Ok(out)
    }

    /// True if no byte is left.
    pub(crate) fn at_end(&mut self) -> Result<bool, DecodeError> {
        loop {
            match self.inner.fill_buf() {
                Ok(rest) => return Ok(rest.is_empty()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(DecodeError::new(self.offset, e)),
            }
        }
    }
}
