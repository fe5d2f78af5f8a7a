//! The test harness: [`TestServer`] starts a real server in-process on `127.0.0.1:0`
//! (bound before anything connects, so no sleeps), and helpers drive it through the SDK.

use crate::scratch::ScratchDatabase;
use banter_client::{Client, Connection};
use banter_protocol::model::UserProfile;
use banter_protocol::ServerEvent;
use banter_server::config::BusConfig;
use banter_server::{Config, Server};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery";
/// How long a test waits for something a user would expect to see "at once".
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    /// One node, or three of one cluster when the suite runs on a bus ([`crate::CLUSTER`]).
    nodes: Vec<Option<Server>>,
    /// Each node's configuration (its port fixed after the first start, for restarts).
    configs: Vec<Config>,
    urls: Vec<String>,
    /// Which node the next [`TestServer::client`] talks to: clients take the nodes in turn.
    next: AtomicUsize,
    /// The first node's address.
    pub base_url: String,
    bus: Option<BusConfig>,
    // Dropped last: the database lives in one of these.
    _database: Option<ScratchDatabase>,
    _dir: TempDir,
}

/// Nodes of a cluster in the suite's cluster runs.
const CLUSTER_NODES: usize = 3;

impl TestServer {
    /// Starts a server on this suite's backend ([`crate::BACKEND`]): a temporary SQLite
    /// file, or a database of its own on the PostgreSQL or MySQL server named in the
    /// environment. `None` when that server is not configured (outside CI, the suite then
    /// says which backend it did not test, and the test passes; in CI it fails). In a
    /// cluster run ([`crate::CLUSTER`]), three nodes on that database and bus, sharing one
    /// media folder.
    pub async fn start() -> Option<TestServer> {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test defaults changed by `adjust` (on every node).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Option<TestServer> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_tests(dir.path());
        let database = match crate::BACKEND {
            None => None,
            Some(server) => Some(crate::scratch::create(server).await?),
        };
        if let Some(database) = &database {
            config.database_url = database.url.clone();
        }
        let bus = match crate::CLUSTER {
            None => None,
            Some(bus) => Some(bus.fresh()?),
        };
        config.bus = bus.clone();
        adjust(&mut config);
        let count = if bus.is_some() { CLUSTER_NODES } else { 1 };
        let (mut nodes, mut configs, mut urls) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..count {
            let server = Server::start(config.clone()).await.expect("server starts");
            let mut node_config = config.clone();
            // Restarts reuse the same port, so that clients find the server where they left it.
            node_config.listen = server.local_addr();
            urls.push(format!("http://{}", server.local_addr()));
            nodes.push(Some(server));
            configs.push(node_config);
        }
        Some(TestServer {
            nodes,
            configs,
            base_url: urls[0].clone(),
            urls,
            next: AtomicUsize::new(0),
            bus,
            _database: database,
            _dir: dir,
        })
    }

    /// Stops gracefully and starts again on the same data and port (every node).
    pub async fn restart(&mut self) {
        self.stop().await;
        for (node, config) in self.nodes.iter_mut().zip(&self.configs) {
            *node = Some(
                Server::start(config.clone())
                    .await
                    .expect("server restarts"),
            );
        }
    }

    /// Stops gracefully (acks pending sends, closes sockets with 1001), every node.
    pub async fn stop(&mut self) {
        for node in &mut self.nodes {
            if let Some(server) = node.take() {
                server.stop().await.expect("clean shutdown");
            }
        }
    }

    /// A client of the next node in turn (of the only one, outside a cluster run).
    pub fn client(&self) -> Client {
        let node = self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len();
        Client::new(&self.urls[node]).expect("client")
    }

    /// Registers `username` and logs in one device.
    pub async fn user(&self, username: &str) -> (Client, UserProfile) {
        let client = self.client();
        let profile = client.register(username, PASSWORD).await.expect("register");
        (self.device(username).await, profile)
    }

    /// Logs in another device of an existing user.
    pub async fn device(&self, username: &str) -> Client {
        let mut client = self.client();
        client
            .login(username, PASSWORD, "test device")
            .await
            .expect("login");
        client
    }
}

/// Makes `a` and `b` friends through a request and its acceptance.
pub async fn befriend(a: &Client, b: &Client) {
    let b_id = b.me().await.expect("me").id;
    let request = a
        .send_friend_request(b_id, Some("hi"))
        .await
        .expect("friend request");
    b.accept_friend_request(request.id).await.expect("accept");
}

/// Reads events until one matches `want`, skipping the others; fails after [`WAIT`].
pub async fn expect_event<T>(
    conn: &mut Connection,
    mut want: impl FnMut(&ServerEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = conn
            .next_event_until(deadline)
            .await
            .expect("the expected event arrives");
        if let Some(found) = want(&event) {
            return found;
        }
    }
}

/// Asserts that nothing matching `unwanted` arrives within `quiet` (used sparingly: only
/// to show that something a user must not see did not happen).
pub async fn expect_no_event(
    conn: &mut Connection,
    quiet: Duration,
    mut unwanted: impl FnMut(&ServerEvent) -> bool,
) {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match conn.next_event_until(deadline).await {
            Ok(event) => assert!(!unwanted(&event), "unexpected event: {event:?}"),
            Err(banter_client::ClientError::Timeout) => return,
            Err(err) => panic!("connection failed: {err}"),
        }
    }
}

/// Reads until the server closes the connection, and returns how it closed.
pub async fn expect_closed(conn: &mut Connection) -> banter_client::ClientError {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match conn.next_event_until(deadline).await {
            Ok(_) => continue,
            Err(banter_client::ClientError::Timeout) => panic!("the connection stayed open"),
            Err(err) => return err,
        }
    }
}

impl Drop for TestServer {
    /// A cluster run leaves nothing on the shared Redis or NATS server.
    fn drop(&mut self) {
        if let Some(bus) = self.bus.take() {
            crate::cluster_support::clean_bus_blocking(bus);
        }
    }
}
