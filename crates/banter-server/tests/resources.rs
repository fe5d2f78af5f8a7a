//! The `banter` binary under anonymous load: thousands of silent, half-sent and
//! kept-alive-after-401 connections plus a flood of logins with made-up usernames. A
//! logged-in user must still connect and chat within a stated latency, the server's
//! memory must stay under a stated bound, and the anonymous sockets must be closed by
//! the server once the header deadline has passed. The figures are printed
//! (`cargo test --test resources -- --nocapture`) for docs/security.md.

use banter_client::Client;
use banter_protocol::{ClientFrame, ServerEvent};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const PASSWORD: &str = "correct horse battery";
const SILENT: usize = 1500;
const HALF_SENT: usize = 1000;
const KEPT_AFTER_401: usize = 500;
const ANONYMOUS: usize = SILENT + HALF_SENT + KEPT_AFTER_401;
/// Logins in flight at once, each for a username that does not exist: more than the
/// hashing queue (64) takes, so that some are refused.
const FLOOD_CONCURRENCY: usize = 128;
/// Set explicitly, so that the memory bound does not depend on the machine's cores.
const PASSWORD_HASHES_MAX: usize = 2;
const MESSAGES: usize = 20;
/// The server's header deadline in this test (its default).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Generous for a loaded two-core machine running a debug build, yet far below what an
/// unbounded server showed (660 ms per ack, logins and /healthz timing out).
const CHAT_LATENCY_MAX: Duration = Duration::from_millis(1500);
const CONNECT_LATENCY_MAX: Duration = Duration::from_secs(3);
/// Peak resident memory of the server (an unbounded one grew by 1.16 GB under 64
/// concurrent logins alone).
const RSS_PEAK_MAX_KIB: u64 = 256 * 1024;

struct Banter {
    child: Child,
    url: String,
}

impl Banter {
    fn start(data_dir: &std::path::Path) -> Banter {
        let mut child = Command::new(env!("CARGO_BIN_EXE_banter"))
            .env("BANTER_LISTEN", "127.0.0.1:0")
            .env("BANTER_DATA_DIR", data_dir)
            .env("BANTER_DURABILITY", "relaxed")
            .env(
                "BANTER_LIMITS__PASSWORD_HASHES_MAX",
                PASSWORD_HASHES_MAX.to_string(),
            )
            .env(
                "BANTER_LIMITS__HTTP_HEADER_TIMEOUT_SECS",
                HEADER_TIMEOUT.as_secs().to_string(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("banter starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("the stdout line names the address")
            .to_string();
        Banter { child, url }
    }

    /// A line of /proc/PID/status, in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn address(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }
}

impl Drop for Banter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens the anonymous connections: silent ones, ones that sent half a header, and ones
/// kept alive after a `401`; a few at a time.
async fn open_anonymous(address: &str) -> Vec<TcpStream> {
    const AT_ONCE: usize = 16;
    let chunks = (0..AT_ONCE).map(|first| {
        let address = address.to_string();
        async move {
            let mut streams = Vec::new();
            for i in (first..ANONYMOUS).step_by(AT_ONCE) {
                streams.push(open_one(&address, i).await);
            }
            streams
        }
    });
    futures_util::future::join_all(chunks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn open_one(address: &str, i: usize) -> TcpStream {
    {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        if i < SILENT {
            // Nothing at all.
        } else if i < SILENT + HALF_SENT {
            stream
                .write_all(b"GET /api/v1/me HTTP/1.1\r\nHost: banter\r\nX-Slow: ")
                .await
                .unwrap();
        } else {
            stream
                .write_all(b"GET /api/v1/me HTTP/1.1\r\nHost: banter\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 401"), "no token: 401");
        }
        stream
    }
}

#[derive(Default)]
struct FloodCount {
    refused_busy: AtomicUsize,
    refused_limited: AtomicUsize,
    wrong_credentials: AtomicUsize,
    other: AtomicUsize,
}

/// Logins for made-up usernames, `FLOOD_CONCURRENCY` in flight, until `stop`, each task
/// from an address of its own (127.0.1.x): a flood from one address would only meet its
/// per-address login budget (429), never the hashing queue.
async fn login_flood(url: String, stop: Arc<AtomicBool>, count: Arc<FloodCount>) {
    let tasks: Vec<_> = (0..FLOOD_CONCURRENCY)
        .map(|task| {
            let (url, stop, count) = (url.clone(), stop.clone(), count.clone());
            tokio::spawn(async move {
                let source = std::net::Ipv4Addr::new(127, 0, 1, 1 + task as u8);
                let mut client = Client::new_from(&url, source.into()).unwrap();
                let mut attempt = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    attempt += 1;
                    let name = format!("ghost{task}x{attempt}");
                    match client.login(&name, "not the password", "flood").await {
                        Err(err) if err.status() == Some(503) => &count.refused_busy,
                        Err(err) if err.status() == Some(401) => &count.wrong_credentials,
                        Err(err) if err.status() == Some(429) => &count.refused_limited,
                        _ => &count.other,
                    }
                    .fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

fn max(durations: &[Duration]) -> Duration {
    durations.iter().copied().max().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_connections_and_a_login_flood_leave_a_logged_in_user_served() {
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("raise the open-files limit");
    if limit < (ANONYMOUS as u64) * 2 + 512 {
        let message =
            format!("open-files hard limit {limit} is too low for {ANONYMOUS} connections");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("skipped: {message}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let banter = Banter::start(&dir.path().join("data"));
    let idle_rss_kib = banter.status_kib("VmRSS:");

    // Two real users, friends, logged in before the attack.
    let alice = Client::new(&banter.url).unwrap();
    alice.register("alice", PASSWORD).await.unwrap();
    let bob = Client::new(&banter.url).unwrap();
    let bob_id = bob.register("bob", PASSWORD).await.unwrap().id;
    let mut alice = alice;
    alice.login("alice", PASSWORD, "laptop").await.unwrap();
    let mut bob = bob;
    bob.login("bob", PASSWORD, "phone").await.unwrap();
    let request = alice.send_friend_request(bob_id, None).await.unwrap();
    bob.accept_friend_request(request.id).await.unwrap();
    let conversation = alice.open_direct(bob_id).await.unwrap().id;

    // The attack: the login flood, and meanwhile the anonymous connections.
    let attack_started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let flood_count = Arc::new(FloodCount::default());
    let flood = tokio::spawn(login_flood(
        banter.url.clone(),
        stop.clone(),
        flood_count.clone(),
    ));
    let anonymous = open_anonymous(&banter.address()).await;
    let opened_in = attack_started.elapsed();
    let descriptors_under_attack = banter.open_descriptors();

    // The logged-in users connect and chat meanwhile.
    let started = Instant::now();
    let mut alice_ws = alice.connect().await.expect("alice connects under load");
    let mut bob_ws = bob.connect().await.expect("bob connects under load");
    let connect_latency = started.elapsed() / 2;
    let health_started = Instant::now();
    alice.health().await.expect("/healthz answers under load");
    let health_latency = health_started.elapsed();
    let mut ack_latencies = Vec::new();
    let mut delivery_latencies = Vec::new();
    for i in 0..MESSAGES {
        let sent = Instant::now();
        let frame = ClientFrame::SendMessage {
            id: format!("m{i}"),
            conversation_id: conversation,
            client_msg_id: format!("load-{i}"),
            text: format!("still here {i}"),
            attachment: None,
        };
        alice_ws.send_frame(&frame).await.unwrap();
        loop {
            match alice_ws.next_event(Duration::from_secs(10)).await.unwrap() {
                ServerEvent::Ack { .. } => break,
                ServerEvent::Error { code, .. } => panic!("send refused: {code:?}"),
                _ => continue,
            }
        }
        ack_latencies.push(sent.elapsed());
        loop {
            match bob_ws.next_event(Duration::from_secs(10)).await.unwrap() {
                ServerEvent::MessageCreated { message }
                    if message.client_msg_id.as_deref() == Some(format!("load-{i}").as_str()) =>
                {
                    break
                }
                _ => continue,
            }
        }
        delivery_latencies.push(sent.elapsed());
    }
    // A real login meanwhile competes with the flood for the hashing queue: it is
    // either served or refused at once with 503 (reported, not asserted: keeping logins
    // available under a flood from many sources takes per-source limits).
    let login_started = Instant::now();
    let mut tablet = Client::new(&banter.url).unwrap();
    let mut login_outcome = "refused (503) 3 times".to_string();
    for attempt in 1..=3 {
        match tablet.login("alice", PASSWORD, "tablet").await {
            Ok(_) => {
                login_outcome = format!("served on attempt {attempt}");
                break;
            }
            Err(err) if err.status() == Some(503) => {
                // What Retry-After asks for.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(err) => panic!("a real login under the flood failed: {err}"),
        }
    }
    let login_latency = login_started.elapsed();
    let rss_under_attack_kib = banter.status_kib("VmRSS:");
    stop.store(true, Ordering::Relaxed);
    flood.await.unwrap();
    let attack_lasted = attack_started.elapsed();

    // Every anonymous socket is closed by the server once its header deadline passed.
    let deadline = attack_started + HEADER_TIMEOUT + opened_in + Duration::from_secs(10);
    let closing = anonymous
        .into_iter()
        .enumerate()
        .map(|(i, mut stream)| async move {
            let mut buf = [0u8; 1024];
            let closed = tokio::time::timeout_at(deadline, async {
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => continue,
                    }
                }
            })
            .await;
            (i, closed.is_ok())
        });
    let open: Vec<usize> = futures_util::future::join_all(closing)
        .await
        .into_iter()
        .filter_map(|(i, closed)| (!closed).then_some(i))
        .collect();
    assert!(
        open.is_empty(),
        "{} anonymous connections are still open {:?} after the attack began (opened in \
         {opened_in:?}); the first: {:?}",
        open.len(),
        attack_started.elapsed(),
        &open[..open.len().min(10)]
    );
    let closed_after = attack_started.elapsed();

    let peak_rss_kib = banter.status_kib("VmHWM:");
    println!(
        "anonymous connections held: {ANONYMOUS} ({SILENT} silent, {HALF_SENT} half-sent headers, \
         {KEPT_AFTER_401} kept alive after a 401), opened in {opened_in:?}; server descriptors \
         under attack: {descriptors_under_attack}"
    );
    println!(
        "login flood: {FLOOD_CONCURRENCY} in flight for {attack_lasted:?}: {} refused busy (503), \
         {} refused by the address's login budget (429), {} wrong credentials (401), {} other",
        flood_count.refused_busy.load(Ordering::Relaxed),
        flood_count.refused_limited.load(Ordering::Relaxed),
        flood_count.wrong_credentials.load(Ordering::Relaxed),
        flood_count.other.load(Ordering::Relaxed)
    );
    println!("a real login under the flood: {login_outcome}, {login_latency:?}");
    println!(
        "logged-in user: connect {connect_latency:?}, /healthz {health_latency:?}, send->ack max \
         {:?}, send->peer max {:?} over {MESSAGES} messages",
        max(&ack_latencies),
        max(&delivery_latencies)
    );
    println!(
        "server RSS: idle {} MiB, under attack {} MiB, peak {} MiB; every anonymous socket \
         closed {closed_after:?} after the attack began",
        idle_rss_kib / 1024,
        rss_under_attack_kib / 1024,
        peak_rss_kib / 1024
    );

    assert_eq!(
        flood_count.other.load(Ordering::Relaxed),
        0,
        "every flood login got 401, 429 or 503"
    );
    assert!(connect_latency < CONNECT_LATENCY_MAX, "{connect_latency:?}");
    assert!(max(&ack_latencies) < CHAT_LATENCY_MAX, "{ack_latencies:?}");
    assert!(
        max(&delivery_latencies) < CHAT_LATENCY_MAX,
        "{delivery_latencies:?}"
    );
    assert!(
        peak_rss_kib < RSS_PEAK_MAX_KIB,
        "peak RSS {} MiB",
        peak_rss_kib / 1024
    );
}
