//! Two `banter` servers on one PostgreSQL or MySQL/MariaDB database, as a deployment with
//! several processes would run: users send concurrently to one group through both, and
//! every message gets its own seq, gapless from 1, exactly once.
//!
//! The database server is named by `BANTER_TEST_POSTGRES_URL` / `BANTER_TEST_MYSQL_URL`,
//! and each test runs in a database of its own, as in the store's tests (whose helper this
//! file shares). Unset, the test says so and passes, except in CI where it fails.

#[path = "../../banter-store/tests/scratch/mod.rs"]
mod scratch;

#[path = "cluster_support/mod.rs"]
mod cluster_support;

use std::collections::BTreeSet;
use std::time::Duration;

use banter_client::Client;
use banter_protocol::{ClientFrame, ConversationId, ServerEvent};
use banter_server::config::BusConfig;
use banter_server::{Config, Server};
use cluster_support::{clean_bus, fresh_namespace, Bus};
use scratch::Server as DatabaseServer;

const PASSWORD: &str = "correct horse battery";
/// Messages each device sends; four devices, two on each server.
const SENDS_PER_DEVICE: usize = 30;
const WAIT: Duration = Duration::from_secs(20);

async fn start(database_url: &str, dir: &std::path::Path) -> Server {
    let mut config = Config::for_tests(dir);
    config.database_url = database_url.to_owned();
    Server::start(config).await.expect("server starts")
}

async fn device(base_url: &str, username: &str) -> Client {
    let mut client = Client::new(base_url).expect("client");
    client
        .login(username, PASSWORD, "test device")
        .await
        .expect("login");
    client
}

/// Sends `SENDS_PER_DEVICE` messages on one connection without waiting in between, and
/// returns the acked (client_msg_id, seq) pairs.
async fn send_all(client: Client, group: ConversationId, tag: String) -> Vec<(String, i64)> {
    let mut conn = client.connect().await.expect("connect");
    for i in 0..SENDS_PER_DEVICE {
        let frame = ClientFrame::SendMessage {
            id: format!("{tag}-{i}"),
            conversation_id: group,
            client_msg_id: format!("{tag}-{i}"),
            text: format!("{tag} says {i}"),
            attachment: None,
        };
        conn.send_frame(&frame).await.expect("send");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut acks = Vec::new();
    while acks.len() < SENDS_PER_DEVICE {
        let event = conn
            .next_event_until(deadline)
            .await
            .expect("every ack arrives");
        match event {
            ServerEvent::Ack {
                client_msg_id: Some(client_msg_id),
                seq,
                ..
            } => acks.push((client_msg_id, seq)),
            ServerEvent::Error { .. } => panic!("a send failed: {event:?}"),
            _ => {}
        }
    }
    acks
}

async fn seqs_are_gapless_across_two_servers(database: DatabaseServer) {
    let Some(database) = scratch::create(database).await else {
        return;
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server_a = start(&database.url, dir_a.path()).await;
    let server_b = start(&database.url, dir_b.path()).await;
    let url_a = format!("http://{}", server_a.local_addr());
    let url_b = format!("http://{}", server_b.local_addr());

    // Alice registers through one server and Bob through the other: one database.
    Client::new(&url_a)
        .unwrap()
        .register("alice", PASSWORD)
        .await
        .expect("register alice");
    let bob = Client::new(&url_b)
        .unwrap()
        .register("bob", PASSWORD)
        .await
        .expect("register bob");
    let alice_a = device(&url_a, "alice").await;
    let bob_b = device(&url_b, "bob").await;
    let request = alice_a
        .send_friend_request(bob.id, None)
        .await
        .expect("friend request");
    bob_b
        .accept_friend_request(request.id)
        .await
        .expect("accept");
    let group = alice_a
        .create_group("two servers", &[bob.id])
        .await
        .expect("create group")
        .id;

    let devices = [
        (alice_a, "alice-a"),
        (device(&url_b, "alice").await, "alice-b"),
        (device(&url_a, "bob").await, "bob-a"),
        (bob_b, "bob-b"),
    ];
    let mut tasks = Vec::new();
    for (client, tag) in devices {
        tasks.push(tokio::spawn(send_all(client, group, tag.to_owned())));
    }
    let mut acks = Vec::new();
    for task in tasks {
        acks.extend(task.await.expect("sender"));
    }

    let total = (4 * SENDS_PER_DEVICE) as i64;
    let mut seqs: Vec<i64> = acks.iter().map(|(_, seq)| *seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "gapless, no seq twice"
    );

    // Either server's history agrees: every message once, at the seq its ack named.
    for url in [&url_a, &url_b] {
        let reader = device(url, "bob").await;
        let page = reader
            .messages_after(group, 0, total as u32 + 1)
            .await
            .expect("history");
        assert!(!page.has_more);
        let stored: Vec<(String, i64)> = page
            .messages
            .iter()
            .map(|m| (m.client_msg_id.clone().expect("a user's message"), m.seq))
            .collect();
        assert_eq!(
            stored.iter().map(|(_, seq)| *seq).collect::<Vec<_>>(),
            (1..=total).collect::<Vec<_>>()
        );
        let ids: BTreeSet<&String> = stored.iter().map(|(id, _)| id).collect();
        assert_eq!(ids.len(), stored.len(), "no message stored twice");
        let mut expected = acks.clone();
        expected.sort_by_key(|(_, seq)| *seq);
        assert_eq!(stored, expected);
    }

    server_a.stop().await.expect("stop a");
    server_b.stop().await.expect("stop b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_seqs_are_gapless_across_two_servers() {
    seqs_are_gapless_across_two_servers(DatabaseServer::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_seqs_are_gapless_across_two_servers() {
    seqs_are_gapless_across_two_servers(DatabaseServer::MySql).await;
}

fn redis_url() -> Option<String> {
    Bus::Redis.url()
}

fn nats_url() -> Option<String> {
    Bus::Nats.url()
}

async fn start_node(database_url: &str, dir: &std::path::Path, bus: BusConfig) -> Server {
    start_node_with(database_url, dir, bus, |_| {}).await
}

async fn start_node_with(
    database_url: &str,
    dir: &std::path::Path,
    bus: BusConfig,
    adjust: impl FnOnce(&mut Config),
) -> Server {
    let mut config = Config::for_tests(dir);
    config.database_url = database_url.to_owned();
    config.bus = Some(bus);
    adjust(&mut config);
    Server::start(config).await.expect("node starts")
}

/// Two nodes of a fresh cluster: a scratch database on `database`'s server, a namespace of
/// their own on the bus at `bus_url`, `adjust` applied to both configurations. `None` when
/// either server is not configured (the test then says so and passes, except in CI).
struct TwoNodes {
    a: Server,
    b: Server,
    bus: BusConfig,
    _database: scratch::ScratchDatabase,
    _dirs: [tempfile::TempDir; 2],
}

impl TwoNodes {
    async fn start(
        database: DatabaseServer,
        bus_url: Option<String>,
        adjust: impl Fn(&mut Config),
    ) -> Option<TwoNodes> {
        let bus = BusConfig {
            url: bus_url?,
            namespace: fresh_namespace(),
        };
        let database = scratch::create(database).await?;
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let a = start_node_with(&database.url, dirs[0].path(), bus.clone(), &adjust).await;
        let b = start_node_with(&database.url, dirs[1].path(), bus.clone(), &adjust).await;
        Some(TwoNodes {
            a,
            b,
            bus,
            _database: database,
            _dirs: dirs,
        })
    }

    fn url_a(&self) -> String {
        format!("http://{}", self.a.local_addr())
    }

    fn url_b(&self) -> String {
        format!("http://{}", self.b.local_addr())
    }

    /// Stops both nodes and removes what they kept on the bus's server.
    async fn stop(self) {
        self.a.stop().await.expect("stop a");
        self.b.stop().await.expect("stop b");
        clean_bus(&self.bus).await;
    }
}

/// Rate limits and login throttles are the cluster's, not each node's: a budget spent
/// through node A is spent for node B too, so an address or a user cannot multiply it by
/// going round the nodes.
async fn budgets_hold_across_nodes(database: DatabaseServer, bus_url: Option<String>) {
    use banter_protocol::ErrorCode;
    use banter_server::ratelimit::Rate;
    let tight = |config: &mut Config| {
        let hour = Duration::from_secs(3600);
        config.limits.registrations_per_address = Rate::new(3, hour);
        config.limits.login_failures_per_account_address = Rate::new(2, hour);
        config.limits.messages_per_user = Rate::new(4, hour);
    };
    let Some(nodes) = TwoNodes::start(database, bus_url, tight).await else {
        return;
    };
    let (url_a, url_b) = (nodes.url_a(), nodes.url_b());
    let a = Client::new(&url_a).unwrap();
    let b = Client::new(&url_b).unwrap();

    // Registrations per address: three in all, wherever they are made.
    a.register("alice", PASSWORD).await.unwrap();
    b.register("bob", PASSWORD).await.unwrap();
    a.register("carol", PASSWORD).await.unwrap();
    for (node, name) in [(&a, "dave"), (&b, "erin")] {
        let refused = node.register(name, PASSWORD).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Some(ErrorCode::RateLimited),
            "{name}: {refused:?}"
        );
    }

    // Wrong passwords for one account from one address: two in all.
    let mut guesser_a = Client::new(&url_a).unwrap();
    let mut guesser_b = Client::new(&url_b).unwrap();
    let wrong = guesser_a
        .login("alice", "wrong guess 1", "x")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some(ErrorCode::InvalidCredentials));
    let wrong = guesser_b
        .login("alice", "wrong guess 2", "x")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some(ErrorCode::InvalidCredentials));
    for guesser in [&mut guesser_a, &mut guesser_b] {
        let refused = guesser
            .login("alice", "wrong guess 3", "x")
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Some(ErrorCode::RateLimited), "{refused:?}");
    }

    // Messages per user: four in all, over sockets on both nodes, with the message budget
    // checked behind each send (ratelimit.rs, `checked_behind`): a node that has not yet
    // heard that the cluster's budget is spent accepts one more send, records it as owed,
    // and refuses from then on. Sends alternate between the nodes, a moment apart so that
    // each node has its answer: the fifth and sixth are the two nodes' one send each past
    // the budget; without the cluster's budget each node would accept four, eight in all.
    let bob_a = device(&url_a, "bob").await;
    let carol_id = device(&url_a, "carol").await.me().await.unwrap().id;
    let bob_b = Client::new(&url_b)
        .unwrap()
        .with_token(bob_a.token().unwrap().to_owned());
    let carol = device(&url_b, "carol").await;
    let request = bob_a.send_friend_request(carol_id, None).await.unwrap();
    carol.accept_friend_request(request.id).await.unwrap();
    let direct = bob_a.open_direct(carol_id).await.unwrap().id;
    let mut sockets = [
        bob_a.connect().await.expect("bob on node A"),
        bob_b.connect().await.expect("bob on node B"),
    ];
    let mut outcomes = Vec::new();
    for n in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let socket = &mut sockets[n % 2];
        let id = format!("m{n}");
        socket
            .send_frame(&ClientFrame::SendMessage {
                id: id.clone(),
                conversation_id: direct,
                client_msg_id: id.clone(),
                text: format!("message {n}"),
                attachment: None,
            })
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        let outcome = loop {
            match socket.next_event_until(deadline).await.expect("an answer") {
                ServerEvent::Ack { id: acked, .. } if acked == id => break "acked".to_owned(),
                ServerEvent::Error {
                    id: Some(refused),
                    code,
                    ..
                } if refused == id => break code.as_str().to_owned(),
                _ => continue,
            }
        };
        outcomes.push(outcome);
    }
    let expected = [["acked"; 6].as_slice(), &["rate_limited"; 2]].concat();
    assert_eq!(outcomes, expected);

    nodes.stop().await;
}

/// Nodes of one cluster on one database and one Redis: a message sent through node A
/// reaches the peer's device on node B live, at the seq A acked; a logout through A closes
/// the same session's socket on B within a second; and a node of another cluster (another
/// namespace) on the same Redis hears none of it.
async fn events_and_revocations_cross_nodes(database: DatabaseServer, bus_url: Option<String>) {
    let Some(redis) = bus_url else {
        return;
    };
    let Some(database) = scratch::create(database).await else {
        return;
    };
    let namespace = fresh_namespace();
    let bus = |namespace: &str| BusConfig {
        url: redis.clone(),
        namespace: namespace.to_owned(),
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let node_a = start_node(&database.url, dirs[0].path(), bus(&namespace)).await;
    let node_b = start_node(&database.url, dirs[1].path(), bus(&namespace)).await;
    let elsewhere = start_node(
        &database.url,
        dirs[2].path(),
        bus(&format!("{namespace}other")),
    )
    .await;
    let url = |node: &Server| format!("http://{}", node.local_addr());

    let register = Client::new(&url(&node_a)).unwrap();
    register.register("alice", PASSWORD).await.unwrap();
    register.register("bob", PASSWORD).await.unwrap();
    let alice = device(&url(&node_a), "alice").await;
    let mut bob = device(&url(&node_a), "bob").await;
    let bob_id = bob.me().await.unwrap().id;
    let request = alice.send_friend_request(bob_id, None).await.unwrap();
    bob.accept_friend_request(request.id).await.unwrap();
    let direct = alice.open_direct(bob_id).await.unwrap().id;

    // Bob's session, connected through node B; another of his devices on the other cluster.
    let bob_on_b = Client::new(&url(&node_b))
        .unwrap()
        .with_token(bob.token().unwrap().to_owned());
    let mut bob_socket = bob_on_b.connect().await.expect("bob on node B");
    let bob_elsewhere = device(&url(&elsewhere), "bob").await;
    let mut bob_other_cluster = bob_elsewhere
        .connect()
        .await
        .expect("bob on the other cluster");

    let mut alice_socket = alice.connect().await.expect("alice on node A");
    alice_socket
        .send_frame(&ClientFrame::SendMessage {
            id: "hi".into(),
            conversation_id: direct,
            client_msg_id: "hi".into(),
            text: "across nodes".into(),
            attachment: None,
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let acked_seq = loop {
        match alice_socket
            .next_event_until(deadline)
            .await
            .expect("the ack")
        {
            ServerEvent::Ack { seq, .. } => break seq,
            _ => continue,
        }
    };
    let delivered = loop {
        match bob_socket
            .next_event_until(deadline)
            .await
            .expect("the message on node B")
        {
            ServerEvent::MessageCreated { message } => break message,
            _ => continue,
        }
    };
    assert_eq!(
        (delivered.conversation_id, delivered.seq),
        (direct, acked_seq)
    );

    // Logging out through node A closes the session's socket on node B.
    let logged_out = std::time::Instant::now();
    bob.logout().await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let closed = loop {
        match bob_socket.next_event_until(deadline).await {
            Ok(_) => continue,
            Err(err) => break err,
        }
    };
    assert_eq!(closed.close_code(), Some(4001), "{closed:?}");
    assert!(
        logged_out.elapsed() < Duration::from_secs(1),
        "the socket on the other node closed after {:?}",
        logged_out.elapsed()
    );

    // The other cluster heard nothing of this one: its socket got no message and stays open.
    bob_other_cluster
        .send_frame(&ClientFrame::Ping { id: "still".into() })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match bob_other_cluster
            .next_event_until(deadline)
            .await
            .expect("pong")
        {
            ServerEvent::Pong { id } if id == "still" => break,
            ServerEvent::MessageCreated { message } => {
                panic!("another cluster's message crossed namespaces: {message:?}")
            }
            _ => continue,
        }
    }

    for node in [node_a, node_b, elsewhere] {
        node.stop().await.expect("clean shutdown");
    }
    clean_bus(&bus(&namespace)).await;
    clean_bus(&bus(&format!("{namespace}other"))).await;
}

/// Waits for alice's next presence change on `socket`, or `None` if none comes within
/// `quiet` (used only where a user would notice a wrong flicker).
async fn presence_change(
    socket: &mut banter_client::Connection,
    alice: banter_protocol::UserId,
    quiet: Duration,
) -> Option<bool> {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match socket.next_event_until(deadline).await {
            Ok(ServerEvent::PresenceChanged { user_id, online }) if user_id == alice => {
                return Some(online)
            }
            Ok(_) => continue,
            Err(banter_client::ClientError::Timeout) => return None,
            Err(err) => panic!("bob's socket failed: {err}"),
        }
    }
}

/// Presence over the cluster: a user online through one node is online for friends on
/// another; a second device on another node does not announce them again; leaving one
/// node while still connected through the other does not take them offline; leaving the
/// last one does.
async fn presence_spans_nodes(database: DatabaseServer, bus_url: Option<String>) {
    let Some(nodes) = TwoNodes::start(database, bus_url, |_| {}).await else {
        return;
    };
    let (url_a, url_b) = (nodes.url_a(), nodes.url_b());
    let register = Client::new(&url_a).unwrap();
    let alice_id = register.register("alice", PASSWORD).await.unwrap().id;
    let bob_id = register.register("bob", PASSWORD).await.unwrap().id;
    let alice_on_a = device(&url_a, "alice").await;
    let bob_on_b = device(&url_b, "bob").await;
    let request = alice_on_a.send_friend_request(bob_id, None).await.unwrap();
    bob_on_b.accept_friend_request(request.id).await.unwrap();

    let mut bob = bob_on_b.connect().await.expect("bob on node B");
    let alice_first = alice_on_a.connect().await.expect("alice on node A");
    assert_eq!(presence_change(&mut bob, alice_id, WAIT).await, Some(true));
    // A new device of Bob's on node B finds Alice (on node A only) online.
    let bob_again = device(&url_b, "bob").await;
    assert!(
        bob_again.friends().await.unwrap()[0].online,
        "the friend list counts devices on every node"
    );

    let alice_on_b = device(&url_b, "alice").await;
    let alice_second = alice_on_b.connect().await.expect("alice on node B");
    let quiet = Duration::from_secs(1);
    assert_eq!(
        presence_change(&mut bob, alice_id, quiet).await,
        None,
        "announced twice"
    );
    alice_first.close().await.unwrap();
    assert_eq!(
        presence_change(&mut bob, alice_id, quiet).await,
        None,
        "offline while still connected through node B"
    );
    alice_second.close().await.unwrap();
    assert_eq!(presence_change(&mut bob, alice_id, WAIT).await, Some(false));
    assert!(!bob_again.friends().await.unwrap()[0].online);

    nodes.stop().await;
}

/// A node that dies says nothing: its users' presence entries stop being refreshed and
/// expire. Alice is online only through such a node (her entry is written as a dead
/// node's would be, expiring in two seconds); Bob, on node A, finds her online, and once
/// her entry has expired he is told she is offline, once, although both live nodes look
/// for departures.
async fn a_dead_nodes_users_go_offline_for_their_friends(
    database: DatabaseServer,
    bus_url: Option<String>,
) {
    let Some(nodes) = TwoNodes::start(database, bus_url, |_| {}).await else {
        return;
    };
    let url_a = nodes.url_a();
    let register = Client::new(&url_a).unwrap();
    let alice_id = register.register("alice", PASSWORD).await.unwrap().id;
    let bob_id = register.register("bob", PASSWORD).await.unwrap().id;
    let alice = device(&url_a, "alice").await;
    let bob = device(&url_a, "bob").await;
    let request = alice.send_friend_request(bob_id, None).await.unwrap();
    bob.accept_friend_request(request.id).await.unwrap();

    write_dead_nodes_entry(&nodes.bus, alice_id).await;

    let mut bob_socket = bob.connect().await.expect("bob on node A");
    assert!(
        bob.friends().await.unwrap()[0].online,
        "alice counts as online while her dead node's entry lives"
    );
    let reaped_within = Duration::from_secs(2) + banter_server::bus::REAP_EVERY * 2;
    assert_eq!(
        presence_change(&mut bob_socket, alice_id, reaped_within).await,
        Some(false),
        "bob is told alice went offline when her dead node's entry expired"
    );
    assert_eq!(
        presence_change(&mut bob_socket, alice_id, banter_server::bus::REAP_EVERY).await,
        None,
        "told once, though both nodes look for departures"
    );
    assert!(!bob.friends().await.unwrap()[0].online);

    nodes.stop().await;
}

/// Writes what a node writes for a connection of `user`'s (bus/redis_presence.rs,
/// bus/nats_presence.rs), as a node that will never renew it nor say the user left: its
/// entry expires in two seconds.
async fn write_dead_nodes_entry(bus: &BusConfig, user: banter_protocol::UserId) {
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 2_000;
    let namespace = &bus.namespace;
    if bus.url.starts_with("nats://") {
        use banter_server::bus::kv::{change, Bucket, Write};
        let client = async_nats::connect(&bus.url).await.expect("nats");
        let bucket = Bucket::open(
            client,
            banter_server::bus::nats_presence::NatsPresence::bucket_name(namespace),
            Duration::ZERO,
        )
        .await
        .expect("the presence bucket");
        change(&bucket, "nodes", |nodes| {
            let mut nodes = String::from_utf8(nodes.unwrap_or_default().to_vec()).unwrap();
            nodes.push_str(&format!("a-node-that-died {expires}\n"));
            (Write::Put(nodes.into()), ())
        })
        .await
        .expect("enter the dead node");
        change(&bucket, &format!("user.{}", user.0), |_| {
            (Write::Put("a-node-that-died".into()), ())
        })
        .await
        .expect("write the dead node's user");
        return;
    }
    let mut redis = redis::Client::open(bus.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    redis::pipe()
        .cmd("ZADD")
        .arg(format!("{namespace}:presence:{}", user.0))
        .arg(expires)
        .arg("a-node-that-died")
        .ignore()
        .cmd("ZADD")
        .arg(format!("{namespace}:presence:due"))
        .arg(expires)
        .arg(user.0)
        .ignore()
        .query_async::<()>(&mut redis)
        .await
        .expect("write the dead node's entry");
}

/// Which bus server a [`PrivateBus`] runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BusKind {
    Redis,
    Nats,
}

/// A Redis or NATS server of this test's own, so that stopping it disturbs no other test;
/// killed when dropped.
struct PrivateBus {
    kind: BusKind,
    child: Option<std::process::Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateBus {
    /// `None` when `redis-server` / `nats-server` is not installed (outside CI; a failure
    /// in CI).
    async fn start(kind: BusKind) -> Option<PrivateBus> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut bus = PrivateBus {
            kind,
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        if !bus.restart().await {
            let missing = "bus restart test NOT RUN: redis-server or nats-server is not installed";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing}");
            eprintln!("{missing}");
            return None;
        }
        Some(bus)
    }

    fn url(&self) -> String {
        match self.kind {
            BusKind::Redis => format!("redis://127.0.0.1:{}", self.port),
            BusKind::Nats => format!("nats://127.0.0.1:{}", self.port),
        }
    }

    /// Starts it (again, on the same port) and waits until it answers; false if it cannot
    /// be started.
    async fn restart(&mut self) -> bool {
        let port = self.port.to_string();
        let mut command = match self.kind {
            BusKind::Redis => {
                let mut command = std::process::Command::new("redis-server");
                command
                    .args(["--port", &port, "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .arg("--dir")
                    .arg(self.dir.path());
                command
            }
            BusKind::Nats => {
                let mut command = std::process::Command::new("nats-server");
                command
                    .args(["--port", &port, "--addr", "127.0.0.1", "--jetstream"])
                    .arg("--store_dir")
                    .arg(self.dir.path());
                command
            }
        };
        let spawned = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = spawned else {
            return false;
        };
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the bus server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The bus restarts while a user sends through node A: every send is acked (durable)
/// though node B cannot hear of it; once the bus is back, node B closes its connections
/// with 4009, and the peer who reconnects and syncs has every message, once, in order.
async fn a_bus_restart_loses_nothing(database: DatabaseServer, kind: BusKind) {
    let Some(mut redis) = PrivateBus::start(kind).await else {
        return;
    };
    let Some(database) = scratch::create(database).await else {
        return;
    };
    let bus = BusConfig {
        url: redis.url(),
        namespace: fresh_namespace(),
    };
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let node_a = start_node(&database.url, dirs[0].path(), bus.clone()).await;
    let node_b = start_node(&database.url, dirs[1].path(), bus).await;
    let (url_a, url_b) = (
        format!("http://{}", node_a.local_addr()),
        format!("http://{}", node_b.local_addr()),
    );
    let register = Client::new(&url_a).unwrap();
    register.register("alice", PASSWORD).await.unwrap();
    let bob_id = register.register("bob", PASSWORD).await.unwrap().id;
    let alice = device(&url_a, "alice").await;
    let bob = device(&url_b, "bob").await;
    let request = alice.send_friend_request(bob_id, None).await.unwrap();
    bob.accept_friend_request(request.id).await.unwrap();
    let direct = alice.open_direct(bob_id).await.unwrap().id;
    let mut bob_socket = bob.connect().await.expect("bob on node B");
    let mut alice_socket = alice.connect().await.expect("alice on node A");

    async fn send(socket: &mut banter_client::Connection, direct: ConversationId, n: usize) -> i64 {
        socket
            .send_frame(&ClientFrame::SendMessage {
                id: format!("s{n}"),
                conversation_id: direct,
                client_msg_id: format!("c{n}"),
                text: format!("message {n}"),
                attachment: None,
            })
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match socket.next_event_until(deadline).await.expect("the ack") {
                ServerEvent::Ack { id, seq, .. } if id == format!("s{n}") => return seq,
                ServerEvent::Error { .. } => panic!("send {n} refused"),
                _ => continue,
            }
        }
    }

    send(&mut alice_socket, direct, 0).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !matches!(
        bob_socket
            .next_event_until(deadline)
            .await
            .expect("the first message live"),
        ServerEvent::MessageCreated { .. }
    ) {}

    redis.stop();
    let mut acked = vec![1];
    for n in 1..=5 {
        acked.push(send(&mut alice_socket, direct, n).await);
    }
    assert_eq!(
        acked,
        vec![1, 2, 3, 4, 5, 6],
        "every send is durable while the bus is down"
    );
    assert!(redis.restart().await, "the bus server restarts");

    let deadline = tokio::time::Instant::now() + WAIT;
    let closed = loop {
        match bob_socket.next_event_until(deadline).await {
            Ok(_) => continue,
            Err(err) => break err,
        }
    };
    assert_eq!(closed.close_code(), Some(4009), "{closed:?}");
    // Bob reconnects and syncs from his cursor (here: the start).
    let history = bob.messages_after(direct, 0, 50).await.unwrap();
    let seqs: Vec<i64> = history.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);

    node_a.stop().await.expect("stop a");
    node_b.stop().await.expect("stop b");
}

#[tokio::test]
async fn postgres_a_bus_restart_loses_nothing() {
    a_bus_restart_loses_nothing(DatabaseServer::Postgres, BusKind::Redis).await;
}

#[tokio::test]
async fn mysql_a_bus_restart_loses_nothing() {
    a_bus_restart_loses_nothing(DatabaseServer::MySql, BusKind::Redis).await;
}

#[tokio::test]
async fn postgres_a_nats_restart_loses_nothing() {
    a_bus_restart_loses_nothing(DatabaseServer::Postgres, BusKind::Nats).await;
}

#[tokio::test]
async fn postgres_presence_spans_nodes() {
    presence_spans_nodes(DatabaseServer::Postgres, redis_url()).await;
}

#[tokio::test]
async fn mysql_presence_spans_nodes() {
    presence_spans_nodes(DatabaseServer::MySql, redis_url()).await;
}

#[tokio::test]
async fn postgres_presence_spans_nodes_on_nats() {
    presence_spans_nodes(DatabaseServer::Postgres, nats_url()).await;
}

#[tokio::test]
async fn postgres_budgets_hold_across_nodes() {
    budgets_hold_across_nodes(DatabaseServer::Postgres, redis_url()).await;
}

#[tokio::test]
async fn postgres_budgets_hold_across_nodes_on_nats() {
    budgets_hold_across_nodes(DatabaseServer::Postgres, nats_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_dead_nodes_users_go_offline_for_their_friends() {
    a_dead_nodes_users_go_offline_for_their_friends(DatabaseServer::Postgres, redis_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_dead_nodes_users_go_offline_for_their_friends_on_nats() {
    a_dead_nodes_users_go_offline_for_their_friends(DatabaseServer::Postgres, nats_url()).await;
}

#[tokio::test]
async fn postgres_events_and_revocations_cross_nodes() {
    events_and_revocations_cross_nodes(DatabaseServer::Postgres, redis_url()).await;
}

#[tokio::test]
async fn mysql_events_and_revocations_cross_nodes() {
    events_and_revocations_cross_nodes(DatabaseServer::MySql, redis_url()).await;
}

#[tokio::test]
async fn postgres_events_and_revocations_cross_nodes_on_nats() {
    events_and_revocations_cross_nodes(DatabaseServer::Postgres, nats_url()).await;
}
