//! One planned LTX file being decoded, either on the caller's thread or on a thread of
//! its own that reads and decompresses ahead into a few bounded batches.
//!
//! Decoding off-thread is how a restore keeps several objects in flight: the merge
//! consumes pages while the inputs' threads read and decompress the next ones.
//! Memory per threaded input: at most [`BATCHES`] batches of about [`BATCH_BYTES`].
//!
//! Pages handed out are provisional until [`InputDecoder::finish`] returns the file's
//! [`VerifiedFile`]; this module must never report success for a file whose decoder did
//! not finish, and never block forever once its consumer has gone (a thread whose
//! channel closed stops).

use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread;

use walcast_ltx::{DecodeError, Decoder, Header, VerifiedFile};
use walcast_replica::ObjectReader;

/// Page bytes per batch sent from a decoding thread.
const BATCH_BYTES: usize = 256 * 1024;
/// Batches in flight per threaded input (queued plus being filled).
const BATCHES: usize = 2;

/// Pages decoded by a thread, in file order.
struct Batch {
    pgnos: Vec<u32>,
    data: Vec<u8>,
}

enum Message {
    Pages(Batch),
    /// Every page was sent; the file's verification.
    End(Result<VerifiedFile, DecodeError>),
    Failed(DecodeError),
}

/// A decoder whose pages are produced on another thread.
struct Threaded {
    header: Header,
    page_size: usize,
    from_thread: Receiver<Message>,
    recycle: Sender<Batch>,
    batch: Option<Batch>,
    /// Index of the current page in `batch`, once one was handed out.
    position: Option<usize>,
    end: Option<Result<VerifiedFile, DecodeError>>,
}

/// One input of the merge.
pub enum InputDecoder {
    /// Decoded on the caller's thread.
    Inline(Box<Decoder<ObjectReader>>),
    /// Decoded ahead on a thread of its own.
    Threaded(Box<ThreadedInput>),
}

/// Opaque wrapper so the enum stays small.
pub struct ThreadedInput(Threaded);

impl InputDecoder {
    /// Wraps a decoder whose header was read; `threaded` moves its decoding to a thread.
    pub fn new(decoder: Decoder<ObjectReader>, threaded: bool) -> anyhow::Result<Self> {
        if !threaded {
            return Ok(Self::Inline(Box::new(decoder)));
        }
        let header = *decoder.header();
        let page_size = header.page_size.as_usize();
        let (to_merge, from_thread) = sync_channel(BATCHES - 1);
        let (recycle, recycled) = channel();
        thread::Builder::new()
            .name("ltx-decode".into())
            .spawn(move || decode_ahead(decoder, &to_merge, &recycled))
            .map_err(|e| {
                anyhow::anyhow!("cannot start a decoding thread: {e} (try a lower -parallelism)")
            })?;
        Ok(Self::Threaded(Box::new(ThreadedInput(Threaded {
            header,
            page_size,
            from_thread,
            recycle,
            batch: None,
            position: None,
            end: None,
        }))))
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        match self {
            Self::Inline(d) => d.header(),
            Self::Threaded(t) => &t.0.header,
        }
    }

    /// Moves to the next page; its number, or `None` after the last.
    pub fn advance(&mut self) -> anyhow::Result<Option<u32>> {
        match self {
            Self::Inline(d) => Ok(d.advance()?),
            Self::Threaded(t) => t.0.advance(),
        }
    }

    /// The page the last `advance` moved to (provisional).
    pub fn current(&self) -> &[u8] {
        match self {
            Self::Inline(d) => d.current_page().map(|p| p.data).unwrap_or_default(),
            Self::Threaded(t) => t.0.current(),
        }
    }

    /// Reads whatever is left and verifies the file.
    pub fn finish(self) -> anyhow::Result<VerifiedFile> {
        match self {
            Self::Inline(d) => Ok(d.finish()?),
            Self::Threaded(t) => t.0.finish(),
        }
    }
}

impl Threaded {
    fn advance(&mut self) -> anyhow::Result<Option<u32>> {
        loop {
            if self.end.is_some() {
                return Ok(None);
            }
            if let Some(batch) = &self.batch {
                let next = self.position.map_or(0, |p| p + 1);
                if let Some(&pgno) = batch.pgnos.get(next) {
                    self.position = Some(next);
                    return Ok(Some(pgno));
                }
            }
            if let Some(done) = self.batch.take() {
                // The thread may have finished already; then the batch is just dropped.
                let _ = self.recycle.send(done);
            }
            self.position = None;
            match self.from_thread.recv() {
                Ok(Message::Pages(batch)) => self.batch = Some(batch),
                Ok(Message::End(result)) => self.end = Some(result),
                Ok(Message::Failed(e)) => return Err(e.into()),
                Err(_) => anyhow::bail!("the decoding thread stopped unexpectedly"),
            }
        }
    }

    fn current(&self) -> &[u8] {
        match (&self.batch, self.position) {
            (Some(batch), Some(p)) => {
                let at = p * self.page_size;
                batch.data.get(at..at + self.page_size).unwrap_or_default()
            }
            _ => &[],
        }
    }

    fn finish(mut self) -> anyhow::Result<VerifiedFile> {
        while self.advance()?.is_some() {}
        match self.end.take() {
            Some(result) => Ok(result?),
            None => anyhow::bail!("the decoding thread ended without verifying the file"),
        }
    }
}

/// The thread's body: decode pages into batches until the end, then verify.
fn decode_ahead(
    mut decoder: Decoder<ObjectReader>,
    to_merge: &SyncSender<Message>,
    recycled: &Receiver<Batch>,
) {
    let page_size = decoder.header().page_size.as_usize();
    let per_batch = (BATCH_BYTES / page_size).max(1);
    loop {
        let mut batch = recycled.try_recv().unwrap_or_else(|_| Batch {
            pgnos: Vec::with_capacity(per_batch),
            data: Vec::with_capacity(per_batch * page_size),
        });
        batch.pgnos.clear();
        batch.data.clear();
        let mut ended = false;
        while batch.pgnos.len() < per_batch {
            match decoder.next_page() {
                Ok(Some(page)) => {
                    batch.pgnos.push(page.pgno);
                    batch.data.extend_from_slice(page.data);
                }
                Ok(None) => {
                    ended = true;
                    break;
                }
                Err(e) => {
                    let _ = to_merge.send(Message::Failed(e));
                    return;
                }
            }
        }
        if !batch.pgnos.is_empty() && to_merge.send(Message::Pages(batch)).is_err() {
            return; // the merge gave up; nobody wants the rest
        }
        if ended {
            let _ = to_merge.send(Message::End(decoder.finish()));
            return;
        }
    }
}
