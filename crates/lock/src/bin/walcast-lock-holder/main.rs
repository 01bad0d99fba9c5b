//! `walcast-lock-holder DB [--image OUT] [--poll-ms N] [--mark uncapped|mxframe]`: a test tool that attaches to a
//! live database in its own process and cycles PROTECTED -> HANDOFF -> PROTECTED as a sync
//! loop would, copying every committed frame into an in-memory image of the database.
//!
//! It exists so tests can run walcast's locks in a process apart from both the test and
//! SQLite, and kill it with SIGKILL. It is not shipped.
//!
//! stdout, one JSON object per line: `{"event":"ready",...}` once attached and caught up;
//! a `{"event":"status",...}` line for each `status` line read on stdin; on `stop` (or end of
//! stdin) it re-protects, copies the last frames, writes the image to OUT and prints
//! `{"event":"done",...}`. Exit status: 0 done, 1 error, 2 attach refused.

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod image;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use walcast_lock::{
    AttachError, AttachOptions, Attached, FrameCursor, Handoff, HandoffAttempt, HandoffStep,
    Protected, ReadMarkPolicy,
};

use image::Image;

/// How long the holder keeps retrying an attach that may succeed later.
const ATTACH_PATIENCE: Duration = Duration::from_secs(20);
/// Frames read per batch.
const BATCH_FRAMES: u32 = 256;

struct Args {
    db: PathBuf,
    image: Option<PathBuf>,
    poll: Duration,
    mark: ReadMarkPolicy,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args_os().skip(1);
    let db = args
        .next()
        .map(PathBuf::from)
        .ok_or("usage: walcast-lock-holder DB [--image OUT] [--poll-ms N]")?;
    let mut parsed = Args {
        db,
        image: None,
        poll: Duration::from_millis(1),
        mark: ReadMarkPolicy::Uncapped,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag:?} needs a value"))?;
        match flag.to_str() {
            Some("--image") => parsed.image = Some(PathBuf::from(value)),
            Some("--poll-ms") => {
                let ms: u64 = value
                    .to_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--poll-ms takes milliseconds")?;
                parsed.poll = Duration::from_millis(ms);
            }
            Some("--mark") => {
                parsed.mark = match value.to_str() {
                    Some("uncapped") => ReadMarkPolicy::Uncapped,
                    Some("mxframe") => ReadMarkPolicy::MxFrame,
                    _ => return Err("--mark takes uncapped or mxframe".into()),
                }
            }
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(parsed)
}

/// A JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Counters reported in status and done lines.
#[derive(Default)]
struct Counters {
    handoffs: u64,
    protections: u64,
    generations: u64,
    frames: u64,
}

enum State {
    Protected(Protected),
    Handoff(Handoff),
}

struct Holder {
    image: Image,
    cursor: FrameCursor,
    counters: Counters,
    buf: Vec<u8>,
}

impl Holder {
    /// Refreshes and copies every committed frame after the cursor.
    fn copy_new_frames(&mut self, state: &mut Protected) -> Result<(), String> {
        state.refresh().map_err(|e| e.to_string())?;
        loop {
            let batch = state
                .read_frames(&self.cursor, BATCH_FRAMES, &mut self.buf)
                .map_err(|e| e.to_string())?;
            if batch.is_empty() {
                return Ok(());
            }
            let new_generation = batch.frames().next().is_some_and(|f| f.number == 1)
                && !self.cursor.at_generation_start();
            self.image.apply(&batch)?;
            self.counters.frames += batch.len() as u64;
            self.counters.generations += u64::from(new_generation);
            self.cursor = batch.end();
        }
    }

    /// One step of the cycle.
    fn step(&mut self, state: State) -> Result<State, String> {
        match state {
            State::Protected(mut p) => {
                self.copy_new_frames(&mut p)?;
                p.advance_mark().map_err(|e| e.to_string())?;
                match p.try_handoff(&self.cursor).map_err(|e| e.to_string())? {
                    HandoffAttempt::Handoff(h) => {
                        self.counters.handoffs += 1;
                        Ok(State::Handoff(h))
                    }
                    HandoffAttempt::Stayed(p, _) => Ok(State::Protected(p)),
                }
            }
            State::Handoff(h) => match h.poll().map_err(|e| e.to_string())? {
                HandoffStep::Protected(p) => {
                    self.counters.protections += 1;
                    Ok(State::Protected(p))
                }
                HandoffStep::Unchanged(h) | HandoffStep::Busy(h) => Ok(State::Handoff(h)),
            },
        }
    }

    fn status(&self, event: &str, state: &State) -> String {
        let (name, mx) = match state {
            State::Protected(p) => ("protected", p.wal_index().header.mx_frame),
            State::Handoff(h) => ("handoff", h.wal_index().header.mx_frame),
        };
        let c = &self.counters;
        format!(
            "{{\"event\":\"{event}\",\"state\":\"{name}\",\"mx_frame\":{mx},\"commits\":{},\"frames\":{},\"handoffs\":{},\"protections\":{},\"generations\":{}}}",
            self.image.commits, c.frames, c.handoffs, c.protections, c.generations
        )
    }
}

fn attach(args: &Args) -> Result<Protected, AttachError> {
    let deadline = Instant::now() + ATTACH_PATIENCE;
    loop {
        let options = AttachOptions {
            read_mark: args.mark,
            ..AttachOptions::default()
        };
        match Attached::attach(&args.db, options) {
            Ok(attached) => {
                return attached.protect().map_err(|e| AttachError::Io {
                    path: args.db.clone(),
                    operation: "claim a read slot",
                    source: std::io::Error::other(e.to_string()),
                });
            }
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                std::thread::sleep(args.poll)
            }
            Err(e) => return Err(e),
        }
    }
}

fn stdin_lines() -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Back to PROTECTED (for the final copy).
fn protect(mut state: State) -> Result<Protected, String> {
    loop {
        state = match state {
            State::Protected(p) => return Ok(p),
            State::Handoff(h) => match h.protect().map_err(|e| e.to_string())? {
                HandoffStep::Protected(p) => State::Protected(p),
                HandoffStep::Unchanged(h) | HandoffStep::Busy(h) => State::Handoff(h),
            },
        };
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut first = attach(args).map_err(|e| format!("refused: {e}"))?;
    let mut holder = Holder {
        image: Image::from_database(&first)?,
        cursor: first.generation_start(),
        counters: Counters::default(),
        buf: Vec::new(),
    };
    holder.copy_new_frames(&mut first)?;
    let mut state = State::Protected(first);
    emit(&holder.status("ready", &state));
    let commands = stdin_lines();
    loop {
        match commands.try_recv() {
            Ok(line) if line.trim() == "status" => emit(&holder.status("status", &state)),
            Ok(line) if line.trim() == "stop" => break,
            Ok(other) => return Err(format!("unknown command {other:?}")),
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {}
        }
        state = holder.step(state)?;
        std::thread::sleep(args.poll);
    }
    let mut last = protect(state)?;
    holder.copy_new_frames(&mut last)?;
    if let Some(path) = &args.image {
        holder
            .image
            .write(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    emit(&holder.status("done", &State::Protected(last)));
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("walcast-lock-holder: {message}");
            std::process::exit(2);
        }
    };
    if let Err(message) = run(&args) {
        emit(&format!(
            "{{\"event\":\"error\",\"message\":{}}}",
            json_string(&message)
        ));
        std::process::exit(if message.starts_with("refused") { 2 } else { 1 });
    }
}
