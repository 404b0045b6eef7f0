//! A TCP relay between clients and a broker that plays the network: it
//! delays, stalls or cuts the traffic on command, counts what passes, and
//! can play a leader change.
//!
//! # How a connection is relayed
//!
//! Each direction of a connection has a reader thread and a writer thread.
//! The reader stamps every chunk with the time it arrived and queues it; the
//! writer sends each chunk when it is due, in order. Under
//! [`Fault::Latency`] a chunk is due its delay after its own arrival, so it
//! never waits for the delays of the chunks ahead of it, as on a real link.
//! Blocking sockets and `std::thread::sleep` keep the wait close to the
//! target: on this kind of machine a 1 ms sleep took 1.1 ms that way and
//! 2.1 ms with tokio's timer, which rounds every deadline up to a whole
//! millisecond (500 sleeps each).
//!
//! Both of the proxy's sockets have `TCP_NODELAY`: it forwards each chunk
//! as it comes, as a wire would, and adds no Nagle of its own. It leaves
//! the kernel's delayed ACKs alone (no `TCP_QUICKACK`), so a client whose
//! writes wait for ACKs (rskafka writes a request as its length and then
//! its body, without `TCP_NODELAY`) meets what it meets at a real broker.
//!
//! # What it reads of the Kafka protocol
//!
//! Both streams are cut into frames as they pass ([`framer`]): requests are
//! counted by API key, and each request's key and version are kept by
//! correlation id until its response comes back, which is what
//! [`Fault::NotLeaderOnce`] and [`Fault::NotLeaderAfterAppendOnce`] need.
//! This assumes plaintext Kafka: through TLS the counts mean nothing, while
//! the bytes still pass unchanged.

mod framer;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use framer::{Framer, Inspector, Verdict};

use super::kafka_wire::{
    api_key, set_produce_errors, with_length, ProduceRequest, NOT_LEADER_OR_FOLLOWER,
};

/// What a [`FaultProxy`] does with the bytes it relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Relay everything.
    None,
    /// Hold every byte from now on: connections stay open, nothing moves.
    BlackHole,
    /// Relay, but wait this long before each write, counted from the end of
    /// the one before: a congested link, where every chunk queues behind
    /// those ahead of it (what queued meanwhile goes in the same write).
    Delay(Duration),
    /// Relay each chunk this long after it arrived, in order: a link with
    /// this one-way latency and bandwidth to spare. A request and its
    /// response take twice this on top of the broker's own time.
    Latency(Duration),
    /// Relay this many more client-to-broker bytes, then close every
    /// connection and refuse new ones: the broker is gone.
    CutAfter(usize),
    /// Relay about this many more client-to-broker bytes (whole reads),
    /// then hold everything, as [`Fault::BlackHole`] does.
    StallAfter(usize),
    /// Keep the next produce request from the broker and answer it
    /// `NOT_LEADER_OR_FOLLOWER` for every partition in it, as a broker that
    /// has just lost the leadership does: nothing is appended, and a client
    /// that refreshes its metadata and sends again loses and duplicates
    /// nothing. Then back to [`Fault::None`].
    NotLeaderOnce,
    /// Relay the next produce request, but rewrite its response to say
    /// `NOT_LEADER_OR_FOLLOWER` for every partition: the broker appended the
    /// records and the client is told it did not, so a retry duplicates
    /// them (as when a leader appends and then loses the leadership before
    /// answering). Then back to [`Fault::None`].
    NotLeaderAfterAppendOnce,
}

/// What has passed through a [`FaultProxy`]: totals since it started, or,
/// through [`Traffic::since`], what one step of a test made.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    /// Bytes written to the broker.
    pub bytes_to_broker: u64,
    /// Bytes written to the clients.
    pub bytes_to_client: u64,
    /// Requests the clients sent, by API key ([`api_key`]), including any
    /// the proxy answered itself.
    pub requests: BTreeMap<i16, usize>,
    /// Client connections relayed.
    pub connections: usize,
}

impl Traffic {
    /// How many requests with `api_key` were sent.
    pub fn requests_of(&self, api_key: i16) -> usize {
        self.requests.get(&api_key).copied().unwrap_or(0)
    }

    /// What passed after `earlier`, a snapshot of the same proxy.
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            bytes_to_broker: self.bytes_to_broker.saturating_sub(earlier.bytes_to_broker),
            bytes_to_client: self.bytes_to_client.saturating_sub(earlier.bytes_to_client),
            requests: self
                .requests
                .iter()
                .map(|(&key, &n)| (key, n.saturating_sub(earlier.requests_of(key))))
                .filter(|&(_, n)| n > 0)
                .collect(),
            connections: self.connections.saturating_sub(earlier.connections),
        }
    }
}

/// A TCP relay between clients and a broker that can slow down, swallow or
/// cut the traffic on command, and counts it.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    /// The port the proxy listens on.
    pub port: u16,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled on every change of fault, so that held writers look again.
    changed: Condvar,
    bytes_to_broker: AtomicU64,
    bytes_to_client: AtomicU64,
    connections: AtomicUsize,
    requests: Mutex<BTreeMap<i16, usize>>,
}

#[derive(Debug)]
struct State {
    fault: Fault,
    budget: usize,
}

impl FaultProxy {
    /// The `host:port` clients connect to.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Listens on `port` (loopback) and relays to `upstream`. Panics when
    /// the port cannot be bound.
    #[allow(clippy::panic)]
    pub async fn start(port: u16, upstream: String) -> Self {
        Self::bind(("127.0.0.1", port), upstream)
            .await
            .unwrap_or_else(|e| panic!("cannot bind proxy port {port}: {e}"))
    }

    /// Listens on `listen` and relays every connection to `upstream`.
    pub async fn bind(
        listen: impl tokio::net::ToSocketAddrs,
        upstream: String,
    ) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                fault: Fault::None,
                budget: 0,
            }),
            changed: Condvar::new(),
            bytes_to_broker: AtomicU64::new(0),
            bytes_to_client: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(BTreeMap::new()),
        });
        tokio::spawn(accept(listener, upstream, Arc::clone(&shared)));
        Ok(Self { shared, port })
    }

    /// Changes what the proxy does from now on.
    pub fn set(&self, fault: Fault) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.fault = fault;
            if let Fault::CutAfter(n) | Fault::StallAfter(n) = fault {
                s.budget = n;
            }
        }
        self.shared.changed.notify_all();
    }

    /// What the proxy does now. A one-shot fault reads [`Fault::None`] once
    /// it has fired.
    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }

    /// Bytes written to the broker so far.
    pub fn bytes_to_broker(&self) -> u64 {
        self.shared.bytes_to_broker.load(Ordering::SeqCst)
    }

    /// Bytes written to the clients so far.
    pub fn bytes_to_client(&self) -> u64 {
        self.shared.bytes_to_client.load(Ordering::SeqCst)
    }

    /// Requests the clients sent so far, by API key ([`api_key`]).
    pub fn requests(&self) -> BTreeMap<i16, usize> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Client connections relayed so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Everything counted so far, to compare with a later snapshot.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            bytes_to_broker: self.bytes_to_broker(),
            bytes_to_client: self.bytes_to_client(),
            requests: self.requests(),
            connections: self.connections(),
        }
    }
}

impl Shared {
    fn fault(&self) -> Fault {
        self.state.lock().map(|s| s.fault).unwrap_or(Fault::None)
    }

    /// Turns a one-shot `fault` off if it is on; says whether it was.
    fn fire(&self, fault: Fault) -> bool {
        let fired = self
            .state
            .lock()
            .map(|mut s| {
                let on = s.fault == fault;
                if on {
                    s.fault = Fault::None;
                }
                on
            })
            .unwrap_or(false);
        if fired {
            self.changed.notify_all();
        }
        fired
    }

    fn refuses_connections(&self) -> bool {
        self.state
            .lock()
            .map(|s| matches!(s.fault, Fault::CutAfter(_)) && s.budget == 0)
            .unwrap_or(true)
    }

    fn count_request(&self, api_key: i16) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry(api_key).or_default() += 1;
        }
    }

    /// Waits until `len` bytes due on `connection` may be written; returns
    /// how many of them may, or `None` when the connection is to close.
    fn admit(&self, to_broker: bool, len: usize, connection: &Connection) -> Option<usize> {
        let mut s = self.state.lock().ok()?;
        loop {
            if connection.closed.load(Ordering::SeqCst) {
                return None;
            }
            match s.fault {
                Fault::BlackHole => {}
                Fault::StallAfter(_) if s.budget > 0 => {
                    if to_broker {
                        // The chunk goes through whole; the stall starts after it.
                        s.budget = s.budget.saturating_sub(len);
                    }
                    return Some(len);
                }
                Fault::StallAfter(_) => {}
                Fault::CutAfter(_) if s.budget == 0 => return None,
                Fault::CutAfter(_) if to_broker => {
                    let allowed = len.min(s.budget);
                    s.budget -= allowed;
                    return Some(allowed);
                }
                _ => return Some(len),
            }
            // The timeout only bounds how long a closed connection goes
            // unnoticed; a change of fault wakes the wait at once.
            s = self
                .changed
                .wait_timeout(s, Duration::from_millis(100))
                .ok()?
                .0;
        }
    }
}

async fn accept(listener: tokio::net::TcpListener, upstream: String, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        if shared.refuses_connections() {
            drop(client);
            continue;
        }
        let upstream = upstream.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                return;
            };
            if let Err(e) = relay(client, server, &shared) {
                tracing::debug!(error = %e, "fault proxy: connection not relayed");
            }
        });
    }
}

/// A chunk read from one side, stamped with its arrival.
#[derive(Debug)]
struct Chunk {
    arrival: Instant,
    bytes: Vec<u8>,
}

/// One relayed connection, as its four threads share it.
#[derive(Debug)]
struct Connection {
    client: TcpStream,
    server: TcpStream,
    closed: AtomicBool,
    exchange: Mutex<Exchange>,
    responses: Mutex<ResponseSide>,
}

/// The requests of a connection that await their responses.
#[derive(Debug, Default)]
struct Exchange {
    in_flight: HashMap<i32, InFlight>,
    /// How many of them have a response to rewrite.
    rewrites: usize,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    api_key: i16,
    api_version: i16,
    rewrite: bool,
}

/// The broker-to-client stream, kept together with its framer so that a
/// response the proxy makes up lands between two of the broker's.
#[derive(Debug)]
struct ResponseSide {
    framer: Framer,
    /// Made-up responses waiting for the end of the frame under way.
    pending: Vec<u8>,
    /// `None` once the broker side has closed.
    queue: Option<Sender<Chunk>>,
}

impl Connection {
    /// Shuts both sockets, which ends all four threads.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }

    /// Sends `frame` to the client as a response from the broker.
    fn answer(&self, frame: Vec<u8>) {
        let Ok(mut side) = self.responses.lock() else {
            return;
        };
        if !side.framer.at_boundary() {
            side.pending.extend(frame);
        } else if let Some(queue) = &side.queue {
            let _ = queue.send(Chunk {
                arrival: Instant::now(),
                bytes: frame,
            });
        }
    }
}

fn relay(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let client = blocking(client)?;
    let server = blocking(server)?;
    let (to_broker, from_client) = mpsc::channel();
    let (to_client, from_broker) = mpsc::channel();
    let connection = Arc::new(Connection {
        client: client.try_clone()?,
        server: server.try_clone()?,
        closed: AtomicBool::new(false),
        exchange: Mutex::new(Exchange::default()),
        responses: Mutex::new(ResponseSide {
            framer: Framer::new(4),
            pending: Vec::new(),
            queue: Some(to_client),
        }),
    });
    shared.connections.fetch_add(1, Ordering::SeqCst);

    let threads: [(&str, Job); 4] = [
        ("read-client", {
            let (from, shared, connection) = (
                client.try_clone()?,
                Arc::clone(shared),
                Arc::clone(&connection),
            );
            Box::new(move || read_requests(from, to_broker, &shared, &connection))
        }),
        ("write-broker", {
            let (to, shared, connection) = (
                server.try_clone()?,
                Arc::clone(shared),
                Arc::clone(&connection),
            );
            Box::new(move || write(from_client, to, true, &shared, &connection))
        }),
        ("read-broker", {
            let connection = Arc::clone(&connection);
            Box::new(move || read_responses(server, &connection))
        }),
        ("write-client", {
            let (shared, connection) = (Arc::clone(shared), Arc::clone(&connection));
            Box::new(move || write(from_broker, client, false, &shared, &connection))
        }),
    ];
    for (name, run) in threads {
        if let Err(e) = std::thread::Builder::new()
            .name(format!("fault-proxy-{name}"))
            .spawn(run)
        {
            connection.close();
            return Err(e);
        }
    }
    Ok(())
}

/// What one of a connection's threads runs.
type Job = Box<dyn FnOnce() + Send>;

/// The std stream of a tokio one, blocking, with `TCP_NODELAY`.
fn blocking(stream: tokio::net::TcpStream) -> io::Result<TcpStream> {
    stream.set_nodelay(true)?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Reads from `from` until it ends, passing each chunk to `pass` with its
/// arrival time; stops early when `pass` says the other side is gone.
fn read_chunks(mut from: TcpStream, mut pass: impl FnMut(&[u8], Instant) -> bool) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !pass(&buffer[..n], Instant::now()) {
            return;
        }
    }
}

fn read_requests(from: TcpStream, queue: Sender<Chunk>, shared: &Shared, connection: &Connection) {
    let mut framer = Framer::new(8);
    let mut inspector = Requests { shared, connection };
    read_chunks(from, |chunk, arrival| {
        let mut bytes = Vec::with_capacity(chunk.len());
        framer.feed(chunk, &mut inspector, &mut bytes);
        bytes.is_empty() || queue.send(Chunk { arrival, bytes }).is_ok()
    });
    // Dropping the queue lets the writer finish and half-close the broker side.
}

fn read_responses(from: TcpStream, connection: &Connection) {
    read_chunks(from, |chunk, arrival| {
        let Ok(mut side) = connection.responses.lock() else {
            return false;
        };
        let ResponseSide {
            framer,
            pending,
            queue,
        } = &mut *side;
        let mut inspector = Responses {
            connection,
            pending,
            rewrite: None,
        };
        let mut bytes = Vec::with_capacity(chunk.len());
        framer.feed(chunk, &mut inspector, &mut bytes);
        match queue {
            Some(queue) => bytes.is_empty() || queue.send(Chunk { arrival, bytes }).is_ok(),
            None => false,
        }
    });
    if let Ok(mut side) = connection.responses.lock() {
        side.queue = None;
    }
}

/// Writes each chunk from `queue` to `to` when it is due and the fault lets
/// it through, counting the bytes.
fn write(
    queue: Receiver<Chunk>,
    mut to: TcpStream,
    to_broker: bool,
    shared: &Shared,
    connection: &Connection,
) {
    while let Ok(Chunk { arrival, mut bytes }) = queue.recv() {
        match shared.fault() {
            Fault::Latency(delay) => sleep_until(arrival + delay),
            Fault::Delay(delay) => {
                std::thread::sleep(delay);
                while let Ok(next) = queue.try_recv() {
                    bytes.extend(next.bytes);
                }
            }
            _ => {}
        }
        let Some(allowed) = shared.admit(to_broker, bytes.len(), connection) else {
            connection.close();
            return;
        };
        // Counted before the write, so a peer that has read the bytes
        // never finds them uncounted.
        let counter = if to_broker {
            &shared.bytes_to_broker
        } else {
            &shared.bytes_to_client
        };
        counter.fetch_add(allowed as u64, Ordering::SeqCst);
        if to.write_all(&bytes[..allowed]).is_err() {
            connection.close();
            return;
        }
        if allowed < bytes.len() {
            connection.close();
            return;
        }
    }
    // The other side ended its stream: pass the end on.
    let _ = to.shutdown(Shutdown::Write);
}

fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// What the proxy reads of the client's requests.
struct Requests<'a> {
    shared: &'a Shared,
    connection: &'a Connection,
}

impl Inspector for Requests<'_> {
    fn withhold_head(&mut self) -> bool {
        self.shared.fault() == Fault::NotLeaderOnce
    }

    fn header(&mut self, header: &[u8], can_hold: bool) -> Verdict {
        let api_key = i16::from_be_bytes([header[0], header[1]]);
        let api_version = i16::from_be_bytes([header[2], header[3]]);
        let correlation_id = i32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        self.shared.count_request(api_key);
        let produce = api_key == api_key::PRODUCE;
        if produce && can_hold && self.shared.fire(Fault::NotLeaderOnce) {
            return Verdict::Hold;
        }
        let rewrite = produce && self.shared.fire(Fault::NotLeaderAfterAppendOnce);
        if let Ok(mut exchange) = self.connection.exchange.lock() {
            exchange.in_flight.insert(
                correlation_id,
                InFlight {
                    api_key,
                    api_version,
                    rewrite,
                },
            );
            exchange.rewrites += usize::from(rewrite);
        }
        Verdict::Pass
    }

    fn whole(&mut self, frame: Vec<u8>) -> Vec<u8> {
        match ProduceRequest::parse(&frame[4..]) {
            Ok(Some(request)) => {
                let refusal = request.refusal(NOT_LEADER_OR_FOLLOWER);
                self.connection.answer(with_length(&refusal));
                Vec::new()
            }
            other => {
                tracing::warn!(
                    parsed = ?other.map(|r| r.is_some()),
                    "fault proxy: a produce request it cannot read goes to the broker unanswered by the fault"
                );
                frame
            }
        }
    }
}

/// What the proxy reads of the broker's responses.
struct Responses<'a> {
    connection: &'a Connection,
    pending: &'a mut Vec<u8>,
    /// The version of the produce response being held for rewriting.
    rewrite: Option<i16>,
}

impl Inspector for Responses<'_> {
    fn withhold_head(&mut self) -> bool {
        self.connection
            .exchange
            .lock()
            .map(|e| e.rewrites > 0)
            .unwrap_or(false)
    }

    fn header(&mut self, header: &[u8], can_hold: bool) -> Verdict {
        let correlation_id = i32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let Ok(mut exchange) = self.connection.exchange.lock() else {
            return Verdict::Pass;
        };
        let Some(request) = exchange.in_flight.remove(&correlation_id) else {
            return Verdict::Pass;
        };
        if !request.rewrite {
            return Verdict::Pass;
        }
        exchange.rewrites -= 1;
        if request.api_key != api_key::PRODUCE || !can_hold {
            return Verdict::Pass;
        }
        self.rewrite = Some(request.api_version);
        Verdict::Hold
    }

    fn whole(&mut self, mut frame: Vec<u8>) -> Vec<u8> {
        if let Some(version) = self.rewrite.take() {
            if let Err(e) = set_produce_errors(&mut frame[4..], version, NOT_LEADER_OR_FOLLOWER) {
                tracing::warn!(error = %e, version, "fault proxy: a produce response it cannot read goes on unchanged");
            }
        }
        frame
    }

    fn between(&mut self, out: &mut Vec<u8>) {
        out.append(self.pending);
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::kafka_wire::tests::{produce_request, produce_response, read_produce_response};

    /// A loopback server that sends every read straight back.
    fn echo_server() -> String {
        serve(|mut stream| {
            let mut buffer = [0u8; 64 * 1024];
            while let Ok(n @ 1..) = stream.read(&mut buffer) {
                if stream.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
        })
    }

    /// A loopback server running `handle` on a thread per connection.
    fn serve(handle: impl Fn(TcpStream) + Send + Sync + Clone + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                stream.set_nodelay(true).unwrap();
                let handle = handle.clone();
                std::thread::spawn(move || handle(stream));
            }
        });
        address
    }

    async fn proxy_to(upstream: String, fault: Fault) -> (FaultProxy, TcpStream) {
        let proxy = FaultProxy::bind("127.0.0.1:0", upstream).await.unwrap();
        proxy.set(fault);
        let client = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        client.set_nodelay(true).unwrap();
        (proxy, client)
    }

    fn millis(d: Duration) -> f64 {
        d.as_secs_f64() * 1e3
    }

    // The delays below are long against a loaded machine's scheduling
    // noise, so each bound separates the behaviour from its failure by tens
    // of milliseconds: the tests check what the line does, not how fast.
    const ONE_WAY: Duration = Duration::from_millis(50);

    #[tokio::test(flavor = "multi_thread")]
    async fn a_ping_pong_is_delayed_once_each_way() {
        let (_proxy, mut client) = proxy_to(echo_server(), Fault::Latency(ONE_WAY)).await;
        let mut times: Vec<f64> = tokio::task::spawn_blocking(move || {
            let mut reply = [0u8; 64];
            (0..9)
                .map(|_| {
                    let sent = Instant::now();
                    client.write_all(&[7; 64]).unwrap();
                    client.read_exact(&mut reply).unwrap();
                    millis(sent.elapsed())
                })
                .collect()
        })
        .await
        .unwrap();
        times.sort_by(f64::total_cmp);
        eprintln!("ping-pong over 50 ms each way: {times:.3?} ms");
        // Under 100 ms, a direction went undelayed; over 150 ms, one was
        // delayed twice.
        assert!(times[0] >= 100.0, "a round trip took {:.3} ms", times[0]);
        assert!(times[4] < 150.0, "median round trip {:.3} ms", times[4]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn each_chunk_of_a_burst_arrives_its_own_delay_later() {
        // The upstream notes when each byte came.
        let (arrivals_tx, arrivals) = mpsc::channel::<(Instant, usize)>();
        let upstream = serve(move |mut stream| {
            let mut buffer = [0u8; 64 * 1024];
            while let Ok(n @ 1..) = stream.read(&mut buffer) {
                let _ = arrivals_tx.send((Instant::now(), n));
            }
        });
        let (_proxy, mut client) = proxy_to(upstream, Fault::Latency(ONE_WAY)).await;
        const CHUNKS: usize = 20;
        const SIZE: usize = 100;
        let sent: Vec<Instant> = tokio::task::spawn_blocking(move || {
            let sent = (0..CHUNKS)
                .map(|_| {
                    let at = Instant::now();
                    client.write_all(&[1; SIZE]).unwrap();
                    std::thread::sleep(Duration::from_millis(5));
                    at
                })
                .collect();
            std::thread::sleep(Duration::from_millis(200));
            sent
        })
        .await
        .unwrap();
        // When the last byte of each chunk came.
        let mut received = Vec::new();
        let mut bytes = 0;
        for (at, n) in arrivals.try_iter() {
            bytes += n;
            while received.len() < bytes / SIZE {
                received.push(at);
            }
        }
        assert_eq!(received.len(), CHUNKS);
        let delays: Vec<f64> = sent
            .iter()
            .zip(&received)
            .map(|(s, r)| millis(r.duration_since(*s)))
            .collect();
        eprintln!("burst of {CHUNKS} chunks 5 ms apart over 50 ms one way: delays {delays:.1?} ms");
        // A chunk queued behind the delays of those before it would come
        // 50 + 45 k ms after it was sent: the last one after 905 ms.
        for (i, delay) in delays.iter().enumerate() {
            assert!(*delay >= 50.0, "chunk {i} came early: {delay:.3} ms");
        }
        let last = delays[CHUNKS - 1];
        assert!(last < 300.0, "the last chunk took {last:.3} ms");
    }

    /// A stand-in broker: answers each produce request (v3 to v8) with
    /// success for every partition and any other request with an empty
    /// body, and reports each request it received.
    fn fake_broker(seen: Sender<Vec<u8>>) -> String {
        serve(move |mut stream| loop {
            let Ok(frame) = receive(&mut stream) else {
                return;
            };
            let answer = match ProduceRequest::parse(&frame[4..]).unwrap() {
                Some(request) => {
                    let topics: Vec<(&str, Vec<i32>)> = request
                        .topics
                        .iter()
                        .map(|(name, p)| (name.as_str(), p.iter().map(|(i, _)| *i).collect()))
                        .collect();
                    let topics: Vec<(&str, &[i32])> =
                        topics.iter().map(|(n, p)| (*n, p.as_slice())).collect();
                    produce_response(request.version, request.correlation_id, &topics)
                }
                None => frame[8..12].to_vec(),
            };
            let _ = seen.send(frame);
            if send(&mut stream, &answer).is_err() {
                return;
            }
        })
    }

    /// Sends a frame as rskafka does: its length, then the rest.
    fn send(stream: &mut TcpStream, frame: &[u8]) -> io::Result<()> {
        stream.write_all(&u32::try_from(frame.len()).unwrap().to_be_bytes())?;
        stream.write_all(frame)
    }

    /// Reads one frame, its length included.
    fn receive(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
        let mut frame = vec![0; 4];
        stream.read_exact(&mut frame)?;
        let length = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        frame.resize(4 + length, 0);
        stream.read_exact(&mut frame[4..])?;
        Ok(frame)
    }

    fn request(api_key: i16, correlation_id: i32) -> Vec<u8> {
        let mut frame = api_key.to_be_bytes().to_vec();
        frame.extend(1i16.to_be_bytes());
        frame.extend(correlation_id.to_be_bytes());
        frame.extend((-1i16).to_be_bytes()); // client id
        frame
    }

    fn produce(correlation_id: i32) -> Vec<u8> {
        produce_request(
            7,
            correlation_id,
            &[("t", &[(0, b"batch zero"), (4, b"batch four")])],
        )
    }

    /// (partition, error code) of each partition in a produce response.
    fn errors(response: &[u8]) -> Vec<(i32, i16)> {
        read_produce_response(&response[4..], 7)
            .into_iter()
            .map(|(_, p, e, _)| (p, e))
            .collect()
    }

    fn correlation_id(response: &[u8]) -> i32 {
        i32::from_be_bytes(response[4..8].try_into().unwrap())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn requests_are_counted_by_api_key_and_bytes_each_way() {
        let (seen, _broker_saw) = mpsc::channel();
        let (proxy, mut client) = proxy_to(fake_broker(seen), Fault::None).await;
        let (sent, received, mut client) = tokio::task::spawn_blocking(move || {
            let frames = [
                request(api_key::API_VERSIONS, 1),
                request(api_key::METADATA, 2),
                produce(3),
                produce(4),
            ];
            // Two requests in one write and one split mid-header, as well
            // as rskafka's length-then-body.
            let mut bytes = Vec::new();
            for frame in &frames {
                bytes.extend(with_length(frame));
            }
            client.write_all(&bytes[..bytes.len() / 2 + 3]).unwrap();
            client.write_all(&bytes[bytes.len() / 2 + 3..]).unwrap();
            let received: usize = (0..frames.len())
                .map(|_| receive(&mut client).unwrap().len())
                .sum();
            (bytes.len(), received, client)
        })
        .await
        .unwrap();
        let totals = proxy.traffic();
        assert_eq!(
            totals.requests,
            BTreeMap::from([
                (api_key::PRODUCE, 2),
                (api_key::METADATA, 1),
                (api_key::API_VERSIONS, 1)
            ])
        );
        assert_eq!(totals.requests_of(api_key::SASL_HANDSHAKE), 0);
        assert_eq!(totals.bytes_to_broker, sent as u64);
        assert_eq!(totals.bytes_to_client, received as u64);
        assert_eq!(totals.connections, 1);
        assert_eq!(proxy.requests(), totals.requests);

        let metadata = request(api_key::METADATA, 5);
        let client = tokio::task::spawn_blocking(move || {
            send(&mut client, &metadata).unwrap();
            receive(&mut client).unwrap();
            client
        });
        client.await.unwrap();
        let during = proxy.traffic().since(&totals);
        assert_eq!(during.requests, BTreeMap::from([(api_key::METADATA, 1)]));
        assert_eq!(during.bytes_to_broker, 4 + 10);
        assert_eq!(during.bytes_to_client, 4 + 4);
        assert_eq!(during.connections, 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn not_leader_once_answers_the_next_produce_itself_and_keeps_it_from_the_broker() {
        let (seen, broker_saw) = mpsc::channel();
        let (proxy, mut client) = proxy_to(fake_broker(seen), Fault::NotLeaderOnce).await;
        let responses = tokio::task::spawn_blocking(move || {
            // A produce request and a metadata request behind it, before
            // either is answered: the made-up answer and the broker's must
            // both arrive whole.
            send(&mut client, &produce(1)).unwrap();
            send(&mut client, &request(api_key::METADATA, 2)).unwrap();
            let mut first = [receive(&mut client).unwrap(), receive(&mut client).unwrap()];
            first.sort_by_key(|r| correlation_id(r));
            send(&mut client, &produce(3)).unwrap();
            let second = receive(&mut client).unwrap();
            (first, second)
        })
        .await
        .unwrap();
        let ([refused, metadata], accepted) = responses;
        assert_eq!(correlation_id(&refused), 1);
        assert_eq!(
            errors(&refused),
            vec![(0, NOT_LEADER_OR_FOLLOWER), (4, NOT_LEADER_OR_FOLLOWER)]
        );
        assert_eq!(correlation_id(&metadata), 2);
        assert_eq!(correlation_id(&accepted), 3);
        assert_eq!(errors(&accepted), vec![(0, 0), (4, 0)], "only once");
        let at_broker: Vec<i32> = broker_saw
            .try_iter()
            .map(|f| i32::from_be_bytes(f[8..12].try_into().unwrap()))
            .collect();
        assert_eq!(
            at_broker,
            vec![2, 3],
            "the refused request never reached the broker"
        );
        assert_eq!(proxy.fault(), Fault::None);
        assert_eq!(proxy.requests()[&api_key::PRODUCE], 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn not_leader_after_append_relays_the_produce_and_rewrites_its_answer() {
        let (seen, broker_saw) = mpsc::channel();
        let (proxy, mut client) =
            proxy_to(fake_broker(seen), Fault::NotLeaderAfterAppendOnce).await;
        let (rewritten, untouched) = tokio::task::spawn_blocking(move || {
            send(&mut client, &request(api_key::METADATA, 1)).unwrap();
            send(&mut client, &produce(2)).unwrap();
            send(&mut client, &produce(3)).unwrap();
            let metadata = receive(&mut client).unwrap();
            assert_eq!(correlation_id(&metadata), 1);
            (receive(&mut client).unwrap(), receive(&mut client).unwrap())
        })
        .await
        .unwrap();
        assert_eq!(correlation_id(&rewritten), 2);
        assert_eq!(
            errors(&rewritten),
            vec![(0, NOT_LEADER_OR_FOLLOWER), (4, NOT_LEADER_OR_FOLLOWER)]
        );
        assert_eq!(correlation_id(&untouched), 3);
        assert_eq!(errors(&untouched), vec![(0, 0), (4, 0)], "only once");
        assert_eq!(
            broker_saw.try_iter().count(),
            3,
            "the broker saw every request"
        );
        assert_eq!(proxy.fault(), Fault::None);
    }
}
