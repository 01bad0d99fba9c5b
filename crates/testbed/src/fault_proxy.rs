//! A loopback HTTP proxy that injects storage faults in front of a real server (the
//! [`crate::s3::S3Server`]): the first requests it receives get the queued [`Fault`]s, one
//! each, in order; every later connection is relayed byte for byte. An outage
//! ([`FaultProxy::begin_outage`] .. [`FaultProxy::end_outage`]) cuts every relayed
//! connection and gives every request in between the same fault, as a store that is down
//! for a while.
//!
//! ```no_run
//! use walcast_testbed::{fault_proxy::{Fault, FaultProxy}, s3::S3Server};
//! let server = S3Server::start()?;
//! let proxy = FaultProxy::start(server.addr(), [Fault::Status(503), Fault::Stall])?;
//! // point the client at proxy.endpoint() instead of server.endpoint()
//! # anyhow::Ok(())
//! ```
//!
//! A hold ([`FaultProxy::hold_next`]) freezes the next request that matches a method and
//! a target, on whatever connection it comes (every request of a relayed connection is
//! looked at): an upload caught in flight, which a test can then kill the client during,
//! knowing ([`FaultProxy::held`]) that the request has started.
//!
//! It owns only its listener and connection threads (stopped when dropped); it never
//! changes the bytes of a request or response it relays, and listens on 127.0.0.1 only.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::Context;

/// What the proxy does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status (an S3 `InternalError` body) and close the connection;
    /// the request never reaches the server.
    Status(u16),
    /// Read the request and never answer (until the proxy is dropped); the request never
    /// reaches the server.
    Stall,
    /// Relay the request to the server, then relay only the response head and half of its
    /// body, and close the connection.
    CutResponse,
    /// Relay the request to the server, then relay the response head and half of its body,
    /// and send nothing more (until the proxy is dropped): a download that stalls.
    StallResponse,
    /// Relay the request to the server, then close the connection without relaying any
    /// answer (the request took effect; the client cannot know).
    DropResponse,
    /// Relay the request head and half of its body to the server, then close both
    /// connections (an upload cut mid-body).
    CutRequest,
}

/// How [`FaultProxy::hold_next`] holds a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Relay the request head and half of its body to the server, then nothing more: an
    /// upload in flight, which the server must not store once the client is gone.
    MidBody,
    /// Relay the whole request, then withhold the server's answer: the request took
    /// effect, and the client does not know yet.
    Answer,
}

/// A request a hold caught.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldRequest {
    /// `PUT`, `GET`, ...
    pub method: String,
    /// The request target (path and query), e.g. `/walcast/app/0001/…-….ltx`.
    pub target: String,
    /// How it was held.
    pub hold: Hold,
}

#[derive(Debug)]
struct HoldRule {
    method: String,
    target_contains: String,
    hold: Hold,
}

/// A running fault proxy (see the module docs).
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    faults: Mutex<VecDeque<Fault>>,
    requests_faulted: AtomicUsize,
    /// The fault every request gets while the store is "down".
    outage: Mutex<Option<Fault>>,
    /// The client side of every relayed connection, to cut them when an outage begins.
    relayed: Mutex<Vec<TcpStream>>,
    /// Armed holds, each for one request.
    holds: Mutex<Vec<HoldRule>>,
    /// Every request a hold caught, in order.
    held: Mutex<Vec<HeldRequest>>,
}

impl Shared {
    fn in_outage(&self) -> bool {
        self.outage.lock().is_ok_and(|o| o.is_some())
    }

    /// Takes the armed hold that `request` (a whole message) matches, if any.
    fn take_hold(&self, request: &[u8]) -> Option<HeldRequest> {
        let head = head_end(request).map_or(request, |end| &request[..end]);
        let line = String::from_utf8_lossy(head);
        let mut parts = line.lines().next()?.split(' ');
        let (method, target) = (parts.next()?, parts.next()?);
        let mut holds = self.holds.lock().ok()?;
        let at = holds
            .iter()
            .position(|h| h.method == method && target.contains(&h.target_contains))?;
        let rule = holds.remove(at);
        Some(HeldRequest {
            method: method.to_owned(),
            target: target.to_owned(),
            hold: rule.hold,
        })
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` that applies `faults` to the first requests.
    pub fn start(
        upstream: SocketAddr,
        faults: impl IntoIterator<Item = Fault>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind the fault proxy")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(faults.into_iter().collect()),
            requests_faulted: AtomicUsize::new(0),
            outage: Mutex::new(None),
            relayed: Mutex::new(Vec::new()),
            holds: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
        });
        let (accept_stop, accept_shared) = (Arc::clone(&stop), Arc::clone(&shared));
        thread::Builder::new()
            .name("walcast-fault-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if accept_stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (stop, shared) = (Arc::clone(&accept_stop), Arc::clone(&accept_shared));
                    let _ = thread::Builder::new()
                        .name("walcast-fault-conn".into())
                        .spawn(move || {
                            let _ = serve(conn, &shared, &stop);
                        });
                }
            })
            .context("cannot start the fault proxy thread")?;
        Ok(Self { addr, stop, shared })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests got a fault so far.
    pub fn faulted(&self) -> usize {
        self.shared.requests_faulted.load(Ordering::SeqCst)
    }

    /// From now until [`FaultProxy::end_outage`], cuts every relayed connection and gives
    /// every request `fault` (e.g. `Status(503)`, or `Stall` for a store that does not
    /// answer at all).
    pub fn begin_outage(&self, fault: Fault) {
        if let Ok(mut outage) = self.shared.outage.lock() {
            *outage = Some(fault);
        }
        if let Ok(mut relayed) = self.shared.relayed.lock() {
            for conn in relayed.drain(..) {
                let _ = conn.shutdown(Shutdown::Both);
            }
        }
    }

    /// Ends an outage: requests are relayed again (stalled ones are released, closed).
    pub fn end_outage(&self) {
        if let Ok(mut outage) = self.shared.outage.lock() {
            *outage = None;
        }
    }

    /// Holds the next request whose method is `method` and whose target (path and query)
    /// contains `target_contains`, as `hold` says, until its client closes the connection
    /// (or the proxy is dropped); later requests are relayed. Each call arms one hold.
    pub fn hold_next(&self, method: &str, target_contains: &str, hold: Hold) {
        if let Ok(mut holds) = self.shared.holds.lock() {
            holds.push(HoldRule {
                method: method.to_owned(),
                target_contains: target_contains.to_owned(),
                hold,
            });
        }
    }

    /// Every request a hold caught so far, in order (a request is listed once its hold
    /// has begun: for [`Hold::Answer`], once the whole request went to the server).
    pub fn held(&self) -> Vec<HeldRequest> {
        self.shared
            .held
            .lock()
            .map_or_else(|_| Vec::new(), |h| h.clone())
    }

    /// How many queued faults are still waiting for a request.
    pub fn faults_left(&self) -> usize {
        self.shared.faults.lock().map_or(0, |f| f.len())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut client: TcpStream, shared: &Shared, stop: &AtomicBool) -> io::Result<()> {
    let request = read_message(&mut client)?;
    let queued = shared.faults.lock().ok().and_then(|mut f| f.pop_front());
    let outage = shared.outage.lock().ok().and_then(|o| *o);
    let fault = queued.or(outage);
    if fault.is_some() {
        shared.requests_faulted.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Some(Fault::Status(code)) => {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected fault</Message></Error>";
            write!(
                client,
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            client.shutdown(Shutdown::Both)
        }
        Some(Fault::Stall) => {
            // A queued stall lasts until the proxy stops; an outage's until it ends.
            while !stop.load(Ordering::SeqCst) && (queued.is_some() || shared.in_outage()) {
                thread::sleep(Duration::from_millis(50));
            }
            Ok(())
        }
        Some(fault @ (Fault::CutResponse | Fault::StallResponse)) => {
            let mut upstream = TcpStream::connect(shared.upstream)?;
            upstream.write_all(&request)?;
            let response = read_message(&mut upstream)?;
            let head_len = head_end(&response).unwrap_or(response.len());
            let body_len = response.len() - head_len;
            client.write_all(&response[..head_len + body_len / 2])?;
            if fault == Fault::StallResponse {
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(50));
                }
            }
            client.shutdown(Shutdown::Both)
        }
        Some(Fault::DropResponse) => {
            let mut upstream = TcpStream::connect(shared.upstream)?;
            upstream.write_all(&request)?;
            read_message(&mut upstream)?;
            client.shutdown(Shutdown::Both)
        }
        Some(Fault::CutRequest) => {
            let mut upstream = TcpStream::connect(shared.upstream)?;
            let head_len = head_end(&request).unwrap_or(request.len());
            let body_len = request.len() - head_len;
            upstream.write_all(&request[..head_len + body_len / 2])?;
            upstream.shutdown(Shutdown::Both)?;
            client.shutdown(Shutdown::Both)
        }
        None => {
            if let Ok(mut relayed) = shared.relayed.lock() {
                relayed.retain(|c| c.peer_addr().is_ok());
                relayed.push(client.try_clone()?);
            }
            relay(client, request, shared, stop)
        }
    }
}

/// Relays the connection both ways until either side closes, looking at each request
/// the client sends (starting with `first`) for an armed hold.
fn relay(
    mut client: TcpStream,
    first: Vec<u8>,
    shared: &Shared,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut server = TcpStream::connect(shared.upstream)?;
    // Set while a hold withholds the server's answers from the client; `answered` once
    // the server began answering a withheld request.
    let withhold = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicBool::new(false));
    let (mut server_rd, mut client_wr) = (server.try_clone()?, client.try_clone()?);
    let (down_withhold, down_answered) = (Arc::clone(&withhold), Arc::clone(&answered));
    let down = thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = server_rd.read(&mut buf) {
            if n > 0 && down_withhold.load(Ordering::SeqCst) {
                down_answered.store(true, Ordering::SeqCst);
                return;
            }
            if n == 0 || client_wr.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = client_wr.shutdown(Shutdown::Both);
    });
    let mut request = first;
    let mut rest = Vec::new();
    loop {
        if let Some(held) = shared.take_hold(&request) {
            let head_len = head_end(&request).unwrap_or(request.len());
            let sent = match held.hold {
                Hold::MidBody => head_len + (request.len() - head_len) / 2,
                Hold::Answer => request.len(),
            };
            withhold.store(true, Ordering::SeqCst);
            if server.write_all(&request[..sent]).is_ok() {
                // An answer withheld only once the server has given it (the request took
                // effect); then the hold is visible to the test.
                while held.hold == Hold::Answer
                    && !answered.load(Ordering::SeqCst)
                    && !stop.load(Ordering::SeqCst)
                {
                    thread::sleep(Duration::from_millis(5));
                }
                if let Ok(mut list) = shared.held.lock() {
                    list.push(held);
                }
                wait_for_close(&mut client, stop);
            }
            break;
        }
        if server.write_all(&request).is_err() {
            break;
        }
        if is_chunked(&request) {
            // A body whose end this proxy does not parse: relay the rest as it comes.
            let _ = io::copy(&mut client, &mut server);
            break;
        }
        match read_request(&mut client, &mut rest) {
            Ok(Some(next)) => request = next,
            Ok(None) | Err(_) => break,
        }
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
    let _ = down.join();
    Ok(())
}

/// Waits until the client closes its connection (or the proxy stops).
fn wait_for_close(client: &mut TcpStream, stop: &AtomicBool) {
    if client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .is_err()
    {
        return;
    }
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match client.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// The next whole request on `stream` (bytes read past it are kept in `rest`); `None`
/// when the client closed the connection between requests.
fn read_request(stream: &mut TcpStream, rest: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some(end) = head_end(rest) {
            let want = end + content_length(&rest[..end]);
            if is_chunked(&rest[..end]) {
                return Ok(Some(std::mem::take(rest)));
            }
            if rest.len() >= want {
                let tail = rest.split_off(want);
                return Ok(Some(std::mem::replace(rest, tail)));
            }
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return if rest.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed mid-request",
                ))
            };
        }
        rest.extend_from_slice(&buf[..n]);
    }
}

/// Whether a message's head says its body is chunked.
fn is_chunked(message: &[u8]) -> bool {
    let head = head_end(message).map_or(message, |end| &message[..end]);
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .any(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
}

/// One HTTP/1.1 message (head and a `Content-Length` body).
fn read_message(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut message = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some(end) = head_end(&message) {
            let want = end + content_length(&message[..end]);
            if message.len() >= want {
                return Ok(message);
            }
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-message",
            ));
        }
        message.extend_from_slice(&buf[..n]);
    }
}

fn head_end(message: &[u8]) -> Option<usize> {
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}
