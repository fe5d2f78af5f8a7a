//! `kill -9` while clients send: the `banter` binary is killed at random moments of the
//! traffic and started again on the same data, 3 to 5 times, while several clients
//! pipeline sends and, after each reconnect, resend every send not yet acked with the same
//! `client_msg_id`. At the end every acked message is stored exactly once with the seq its
//! ack named, each conversation's seqs are gapless, and no resend made a second copy.
//!
//! Runs on SQLite, and on PostgreSQL and MySQL/MariaDB when `BANTER_TEST_POSTGRES_URL` /
//! `BANTER_TEST_MYSQL_URL` name a server (in a scratch database of its own, as the store's
//! tests do; unset, the test says so and passes, except in CI where it fails).
//!
//! And for a cluster: three nodes on one PostgreSQL database with a Redis bus
//! (`BANTER_TEST_REDIS_URL`); the clients send through one node, which is killed once
//! mid-traffic, and fail over to another; every user also has a device on the third node,
//! which must end with exactly the stored history (live pushes, then a sync from its
//! cursor, as docs/protocol.md §7.5 says a client does).

#[path = "../../banter-store/tests/scratch/mod.rs"]
mod scratch;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use banter_client::{AdminClient, Client, ClientError, Connection};
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent, UserId};
use rand::{Rng, SeedableRng};
use scratch::Server as DatabaseServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const ADMIN_TOKEN: &str = "crash-test-admin-token-0123456789abcdef";
const PASSWORD: &str = "correct horse battery";
/// Senders, in pairs that share a direct conversation; all of them share one group.
const CLIENTS: usize = 6;
const SENDS_PER_CLIENT: usize = 300;
/// Sends a client keeps in flight on its connection before it waits for an ack.
const PIPELINE: usize = 8;
/// How long anything a client waits for may take: a server start, a reconnect, an ack.
const WAIT: Duration = Duration::from_secs(20);

/// One run of the `banter` binary.
struct Banter {
    child: Child,
    url: String,
}

/// How to start the binary on the test's data.
struct Launcher {
    data_dir: std::path::PathBuf,
    database_url: String,
    starts: usize,
    /// More settings (a cluster node's bus).
    settings: Vec<(&'static str, String)>,
}

impl Launcher {
    /// Starts the binary on an ephemeral port and waits for its `listening on` line.
    async fn start(&mut self) -> Banter {
        self.starts += 1;
        let log = std::fs::File::create(self.data_dir.join(format!("server-{}.log", self.starts)))
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_banter"));
        // Only what this test sets: a BANTER_* of the caller's environment must not leak in.
        for (name, _) in std::env::vars() {
            if name.starts_with("BANTER_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .env("BANTER_LISTEN", "127.0.0.1:0")
            .env("BANTER_DATA_DIR", &self.data_dir)
            .env("BANTER_DATABASE_URL", &self.database_url)
            .env("BANTER_ADMIN_TOKEN", ADMIN_TOKEN)
            // The clients resend in bursts after each restart; the frame rate is not
            // what this test is about.
            .env("BANTER_LIMITS__FRAMES_PER_SECOND_MAX", "100000")
            .env("BANTER_LIMITS__MESSAGES_PER_USER_PER_SECOND_MAX", "100000")
            .envs(self.settings.iter().map(|(name, value)| (*name, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("banter starts");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::time::timeout(WAIT, BufReader::new(stdout).lines().next_line())
            .await
            .expect("banter prints its address in time")
            .expect("stdout readable")
            .expect("banter prints its address");
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Banter { child, url }
    }
}

impl Banter {
    /// SIGKILL: no shutdown, no flush, no goodbye to the clients.
    async fn kill(mut self) {
        self.child.start_kill().expect("kill");
        let status = self.child.wait().await.expect("wait");
        assert_eq!(status.signal(), Some(9), "killed, not exited: {status}");
    }
}

/// A client's result: every acked `client_msg_id` with the conversation and seq of its ack.
#[derive(Default)]
struct Outcome {
    acked: BTreeMap<String, (ConversationId, i64)>,
    resends: usize,
    /// Resends answered with a message stored before the connection was lost: the ones
    /// whose first ack the kill swallowed.
    found_stored: usize,
    connections: usize,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// The current server's URL, and whether the test will kill it.
type Current = (String, bool);

/// Opens a connection to the current server, waiting for the next one when this one is gone.
async fn connect(token: &str, urls: &mut watch::Receiver<Current>) -> Connection {
    loop {
        let url = urls.borrow_and_update().0.clone();
        let client = Client::new(&url).expect("client").with_token(token);
        match client.connect().await {
            Ok(conn) => return conn,
            Err(_) => tokio::time::timeout(WAIT, urls.changed())
                .await
                .expect("a server comes back")
                .expect("the test still runs"),
        }
    }
}

fn send_frame(request: usize, client_msg_id: &str, conversation: ConversationId) -> ClientFrame {
    ClientFrame::SendMessage {
        id: format!("r{request}"),
        conversation_id: conversation,
        client_msg_id: client_msg_id.to_owned(),
        text: format!("text of {client_msg_id}"),
        attachment: None,
    }
}

/// Sends `SENDS_PER_CLIENT` messages, alternating between `targets`, with up to
/// `PIPELINE` in flight; after any loss of the connection, reconnects and resends every
/// un-acked one with its `client_msg_id`. Returns once every send is acked.
///
/// A `lazy` client, like a phone that loses its signal right after sending, does not read
/// its acks on a connection to a server that is going to be killed: it fills its pipeline
/// and waits for the kill, so that it resends messages the server has already stored.
async fn run_client(
    tag: String,
    token: String,
    targets: [ConversationId; 2],
    lazy: bool,
    mut urls: watch::Receiver<Current>,
    progress: Arc<watch::Sender<usize>>,
) -> Outcome {
    let mut outcome = Outcome::default();
    // Sent and not acked yet, in the order they were first sent.
    let mut pending: BTreeMap<usize, (String, ConversationId)> = BTreeMap::new();
    let (mut next, mut request) = (0, 0);
    'connection: while outcome.acked.len() < SENDS_PER_CLIENT {
        // Anything stored before this moment was stored by an earlier connection's server.
        let lost_at_ms = now_ms();
        let mut resent = BTreeSet::new();
        let mut conn = connect(&token, &mut urls).await;
        let doomed = urls.borrow().1;
        outcome.connections += 1;
        for (client_msg_id, conversation) in pending.values() {
            request += 1;
            outcome.resends += 1;
            resent.insert(client_msg_id.clone());
            let frame = send_frame(request, client_msg_id, *conversation);
            if conn.send_frame(&frame).await.is_err() {
                continue 'connection;
            }
        }
        loop {
            while pending.len() < PIPELINE && next < SENDS_PER_CLIENT {
                let client_msg_id = format!("{tag}-{next}");
                let conversation = targets[next % targets.len()];
                pending.insert(next, (client_msg_id.clone(), conversation));
                next += 1;
                request += 1;
                let frame = send_frame(request, &client_msg_id, conversation);
                if conn.send_frame(&frame).await.is_err() {
                    continue 'connection;
                }
            }
            if pending.is_empty() {
                break 'connection;
            }
            if lazy && doomed {
                tokio::time::timeout(WAIT, urls.changed())
                    .await
                    .expect("the server is killed")
                    .expect("the test still runs");
                continue 'connection;
            }
            match conn.next_event(WAIT).await {
                Ok(ServerEvent::Ack {
                    client_msg_id: Some(client_msg_id),
                    conversation_id,
                    seq,
                    created_at_ms,
                    ..
                }) => {
                    if resent.contains(&client_msg_id) && created_at_ms < lost_at_ms {
                        outcome.found_stored += 1;
                    }
                    let acked = (conversation_id, seq);
                    match outcome.acked.get(&client_msg_id) {
                        Some(first) => assert_eq!(
                            *first, acked,
                            "{client_msg_id} was acked twice with different seqs"
                        ),
                        None => {
                            outcome.acked.insert(client_msg_id.clone(), acked);
                            progress.send_modify(|acks| *acks += 1);
                        }
                    }
                    pending.retain(|_, (id, _)| *id != client_msg_id);
                }
                // A send the server could not take now; it is resent on the next connection.
                Ok(ServerEvent::Error {
                    code: ErrorCode::ShuttingDown | ErrorCode::Internal,
                    ..
                }) => continue 'connection,
                Ok(ServerEvent::Error { id, code, message }) => {
                    panic!("{tag}: request {id:?} refused: {code:?} {message}")
                }
                Ok(_) => {}
                Err(err) if err.is_connection_lost() => continue 'connection,
                Err(ClientError::Timeout) => panic!("{tag}: no ack within {WAIT:?}"),
                Err(err) => panic!("{tag}: {err}"),
            }
        }
    }
    outcome
}

/// The test's users with their conversations.
struct Seeded {
    users: Vec<banter_protocol::api::AdminCreatedUser>,
    /// One group of all.
    group: ConversationId,
    /// One direct conversation per pair of users (0 and 1, 2 and 3, …).
    directs: Vec<ConversationId>,
}

/// [`CLIENTS`] users, their direct conversations and their group, seeded through `url`
/// in three requests.
async fn seed_users(url: &str) -> Seeded {
    let admin = AdminClient::new(url, ADMIN_TOKEN).expect("admin client");
    let names: Vec<String> = (0..CLIENTS).map(|i| format!("sender{i}")).collect();
    let users = admin
        .create_users(&names, PASSWORD, Some("crash"))
        .await
        .expect("seed users");
    let ids: Vec<UserId> = users.iter().map(|u| u.user.id).collect();
    let pairs: Vec<[UserId; 2]> = ids.chunks(2).map(|pair| [pair[0], pair[1]]).collect();
    let directs = admin
        .create_friendships(&pairs)
        .await
        .expect("seed friendships");
    let group = admin
        .create_group(ids[0], "crash", &ids[1..])
        .await
        .expect("seed group")
        .id;
    Seeded {
        users,
        group,
        directs,
    }
}

/// One [`run_client`] per user, sending to the group and the user's direct
/// conversation; the last one is lazy.
fn spawn_clients(
    users: &[banter_protocol::api::AdminCreatedUser],
    group: ConversationId,
    directs: &[ConversationId],
    urls: &watch::Receiver<Current>,
    progress: &Arc<watch::Sender<usize>>,
) -> Vec<tokio::task::JoinHandle<Outcome>> {
    users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            tokio::spawn(run_client(
                format!("c{i}"),
                user.token.clone(),
                [group, directs[i / 2]],
                i == CLIENTS - 1,
                urls.clone(),
                progress.clone(),
            ))
        })
        .collect()
}

/// Waits for every client and adds up their outcomes; every one of the `total` sends
/// must have been acked.
async fn finish(
    clients: Vec<tokio::task::JoinHandle<Outcome>>,
    total: usize,
    seed: u64,
) -> Outcome {
    let mut all = Outcome::default();
    for client in clients {
        let outcome = tokio::time::timeout(WAIT * 2, client)
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: a client did not finish"))
            .expect("client task");
        all.resends += outcome.resends;
        all.found_stored += outcome.found_stored;
        all.connections += outcome.connections;
        all.acked.extend(outcome.acked);
    }
    assert_eq!(
        all.acked.len(),
        total,
        "every send was acked once it was resent"
    );
    all
}

/// Every entry of `conversation`, read as `reader`.
async fn history(reader: &Client, conversation: ConversationId) -> Vec<(UserId, String, i64)> {
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let page = reader
            .messages_after(conversation, after, 200)
            .await
            .expect("history");
        for message in &page.messages {
            let client_msg_id = message.client_msg_id.clone().expect("a user's text");
            entries.push((message.sender_id, client_msg_id, message.seq));
            after = message.seq;
        }
        if !page.has_more {
            return entries;
        }
    }
}

/// Reads each (conversation, member index) as that member through `url` and checks that
/// it holds exactly the acked messages at their acked seqs, gapless from 1, no
/// `client_msg_id` twice; returns each conversation's history.
async fn verify_stored(
    url: &str,
    users: &[banter_protocol::api::AdminCreatedUser],
    conversations: &[(ConversationId, usize)],
    acked: &BTreeMap<String, (ConversationId, i64)>,
    seed: u64,
) -> BTreeMap<ConversationId, Vec<(UserId, String, i64)>> {
    let mut histories = BTreeMap::new();
    for &(conversation, member) in conversations {
        let reader = Client::new(url)
            .unwrap()
            .with_token(users[member].token.clone());
        let entries = history(&reader, conversation).await;
        let seqs: Vec<i64> = entries.iter().map(|(_, _, seq)| *seq).collect();
        assert_eq!(
            seqs,
            (1..=entries.len() as i64).collect::<Vec<_>>(),
            "seed {seed}: conversation {conversation} has gapless seqs from 1"
        );
        let keys: BTreeSet<(UserId, &String)> = entries
            .iter()
            .map(|(sender, id, _)| (*sender, id))
            .collect();
        assert_eq!(
            keys.len(),
            entries.len(),
            "seed {seed}: a client_msg_id stored twice in conversation {conversation}"
        );
        let stored: BTreeMap<String, (ConversationId, i64)> = entries
            .iter()
            .map(|(_, id, seq)| (id.clone(), (conversation, *seq)))
            .collect();
        let expected: BTreeMap<String, (ConversationId, i64)> = acked
            .iter()
            .filter(|(_, (c, _))| *c == conversation)
            .map(|(id, at)| (id.clone(), *at))
            .collect();
        assert_eq!(
            stored, expected,
            "seed {seed}: conversation {conversation} holds exactly the acked messages at their acked seqs"
        );
        histories.insert(conversation, entries);
    }
    histories
}

async fn acked_messages_survive_kill_9(database_url: Option<String>, dir: &Path) {
    let started = Instant::now();
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let kills = rng.gen_range(3..=5);
    let mut launcher = Launcher {
        data_dir: dir.to_path_buf(),
        database_url: database_url
            .unwrap_or_else(|| format!("sqlite://{}/banter.db?mode=rwc", dir.display())),
        starts: 0,
        settings: Vec::new(),
    };
    let mut server = launcher.start().await;

    let Seeded {
        users,
        group,
        directs,
    } = seed_users(&server.url).await;

    let (urls, urls_rx) = watch::channel((server.url.clone(), true));
    let progress = Arc::new(watch::Sender::new(0usize));
    let clients = spawn_clients(&users, group, &directs, &urls_rx, &progress);

    // Kill at random points of the traffic: each after a random number of acks, while
    // every client has sends in flight. (The lazy client's sends are mostly left for
    // after the last kill, hence at most 70%.)
    let total = CLIENTS * SENDS_PER_CLIENT;
    let mut moments: Vec<usize> = (0..kills)
        .map(|_| rng.gen_range(total / 10..total * 7 / 10))
        .collect();
    moments.sort_unstable();
    let mut acks = progress.subscribe();
    for (i, moment) in moments.iter().enumerate() {
        tokio::time::timeout(WAIT, acks.wait_for(|acks| *acks >= *moment))
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: the clients stalled before {moment} acks"))
            .expect("progress");
        server.kill().await;
        server = launcher.start().await;
        urls.send_replace((server.url.clone(), i + 1 < moments.len()));
    }

    let Outcome {
        acked,
        resends,
        found_stored,
        connections,
    } = finish(clients, total, seed).await;
    assert!(
        found_stored > 0,
        "seed {seed}: the lazy client resent messages that were stored before the kill"
    );

    // What the server holds after its last restart: every acked message once, at its seq.
    let mut conversations = vec![(group, 0)];
    conversations.extend(directs.iter().enumerate().map(|(i, d)| (*d, 2 * i)));
    verify_stored(&server.url, &users, &conversations, &acked, seed).await;
    eprintln!(
        "crash test (seed {seed}): {kills} kills, {total} messages, {resends} resends \
         ({found_stored} of them already stored) over \
         {connections} connections, {:.1}s",
        started.elapsed().as_secs_f64()
    );
    server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_acked_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    acked_messages_survive_kill_9(None, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_acked_messages_survive_kill_9() {
    let Some(database) = scratch::create(DatabaseServer::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    acked_messages_survive_kill_9(Some(database.url.clone()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_acked_messages_survive_kill_9() {
    let Some(database) = scratch::create(DatabaseServer::MySql).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    acked_messages_survive_kill_9(Some(database.url.clone()), dir.path()).await;
}

/// What one watching device received live: (conversation, seq, client_msg_id) in order.
type Watched = Vec<(ConversationId, i64, Option<String>)>;

/// A device that only listens, on a node that stays up, until `stop`.
async fn watch_live(url: String, token: String, mut stop: watch::Receiver<bool>) -> Watched {
    let client = Client::new(&url).expect("client").with_token(token);
    let mut conn = client.connect().await.expect("the watcher connects");
    let mut received = Vec::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return received,
            event = conn.next_event(WAIT) => match event {
                Ok(ServerEvent::MessageCreated { message }) => received.push((
                    message.conversation_id,
                    message.seq,
                    message.client_msg_id,
                )),
                Ok(_) | Err(ClientError::Timeout) => {}
                Err(err) => panic!("a watcher on a node that stays up lost its connection: {err}"),
            },
        }
    }
}

/// Three nodes on one PostgreSQL database and one Redis; the clients send through node
/// C, which is killed once at a random moment; they fail over to node A and resend what
/// was not acked. Each user also has a device on node B from the start. Afterwards: every
/// acked message is stored once at its seq (as on one node), and each device on B, from
/// what it received live plus a sync from its cursor (the highest seq up to which it held
/// every entry), holds exactly the stored history: nothing lost, nothing twice, nothing
/// out of place, including what node C stored and then died before announcing.
async fn a_killed_node_loses_nothing(database_url: String, redis: String, dir: &Path) {
    let started = Instant::now();
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let namespace = format!("crash{}x{seed}", std::process::id());
    let mut launchers: Vec<Launcher> = (0..3)
        .map(|node| {
            let data_dir = dir.join(format!("node{node}"));
            std::fs::create_dir_all(&data_dir).expect("node folder");
            Launcher {
                data_dir,
                database_url: database_url.clone(),
                starts: 0,
                settings: vec![
                    ("BANTER_BUS_URL", redis.clone()),
                    ("BANTER_BUS_NAMESPACE", namespace.clone()),
                    ("BANTER_MEDIA__LOCAL_FOLDER_IS_SHARED", "true".to_owned()),
                ],
            }
        })
        .collect();
    let node_a = launchers[0].start().await;
    let node_b = launchers[1].start().await;
    let node_c = launchers[2].start().await;

    let Seeded {
        users,
        group,
        directs,
    } = seed_users(&node_a.url).await;

    let (stop, stop_rx) = watch::channel(false);
    let watchers: Vec<_> = users
        .iter()
        .map(|user| {
            tokio::spawn(watch_live(
                node_b.url.clone(),
                user.token.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();

    let (urls, urls_rx) = watch::channel((node_c.url.clone(), true));
    let progress = Arc::new(watch::Sender::new(0usize));
    let clients = spawn_clients(&users, group, &directs, &urls_rx, &progress);
    let total = CLIENTS * SENDS_PER_CLIENT;
    let moment = rng.gen_range(total / 10..total / 2);
    tokio::time::timeout(WAIT, progress.subscribe().wait_for(|acks| *acks >= moment))
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: the clients stalled before {moment} acks"))
        .expect("progress");
    node_c.kill().await;
    urls.send_replace((node_a.url.clone(), false));

    let Outcome {
        acked,
        resends,
        found_stored,
        ..
    } = finish(clients, total, seed).await;

    let mut conversations = vec![(group, 0)];
    conversations.extend(directs.iter().enumerate().map(|(i, d)| (*d, 2 * i)));
    let histories = verify_stored(&node_a.url, &users, &conversations, &acked, seed).await;

    // Live pushes still on their way (or held for order) arrive before the watchers stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send_replace(true);
    let mut missed_live = 0;
    for (user, watcher) in watchers.into_iter().enumerate() {
        let received = watcher.await.expect("watcher");
        for (&conversation, history) in &histories {
            let members_of = if conversation == group {
                true
            } else {
                directs[user / 2] == conversation
            };
            if !members_of {
                continue;
            }
            let truth: BTreeMap<i64, &String> =
                history.iter().map(|(_, id, seq)| (*seq, id)).collect();
            // Applied as docs/protocol.md §7.6 says: a seq seen before is dropped.
            let mut held: BTreeMap<i64, String> = BTreeMap::new();
            for (c, seq, id) in received.iter().filter(|(c, _, _)| *c == conversation) {
                let id = id.clone().expect("a user's text");
                assert_eq!(
                    truth.get(seq).copied(),
                    Some(&id),
                    "seed {seed}: user {user}'s device got {id} at seq {seq} of {c}, which holds something else"
                );
                held.entry(*seq).or_insert(id);
            }
            // The cursor: the highest seq up to which the device holds every entry; a
            // sync from there brings the rest.
            let cursor = (1..)
                .take_while(|seq| held.contains_key(seq))
                .last()
                .unwrap_or(0);
            missed_live += truth.len() - held.len();
            let reader = Client::new(&node_b.url)
                .unwrap()
                .with_token(users[user].token.clone());
            let mut after = cursor;
            loop {
                let page = reader
                    .messages_after(conversation, after, 200)
                    .await
                    .expect("sync");
                for message in &page.messages {
                    held.entry(message.seq)
                        .or_insert_with(|| message.client_msg_id.clone().expect("text"));
                    after = message.seq;
                }
                if !page.has_more {
                    break;
                }
            }
            let converged: BTreeMap<i64, &String> =
                held.iter().map(|(seq, id)| (*seq, id)).collect();
            assert_eq!(
                converged, truth,
                "seed {seed}: user {user}'s device on node B converged on conversation {conversation}"
            );
        }
    }
    eprintln!(
        "node loss test (seed {seed}): node C killed after {moment} acks, {total} messages, \
         {resends} resends ({found_stored} already stored), {missed_live} entries filled by \
         sync rather than live on node B's devices, {:.1}s",
        started.elapsed().as_secs_f64()
    );
    node_a.kill().await;
    node_b.kill().await;
    banter_server::bus::remove_namespace(&banter_server::config::BusConfig {
        url: redis,
        namespace,
    })
    .await
    .expect("remove the test's Redis keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_node_killed_mid_traffic_loses_nothing() {
    let redis = match std::env::var("BANTER_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let missing = "node loss test NOT RUN: set BANTER_TEST_REDIS_URL";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing}");
            eprintln!("{missing}");
            return;
        }
    };
    let Some(database) = scratch::create(DatabaseServer::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    a_killed_node_loses_nothing(database.url.clone(), redis, dir.path()).await;
}
