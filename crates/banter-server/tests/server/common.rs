//! The test harness: [`TestServer`] starts a real server in-process on `127.0.0.1:0`
//! (bound before anything connects, so no sleeps), and helpers drive it through the SDK.

use crate::scratch::ScratchDatabase;
use banter_client::{Client, Connection};
use banter_protocol::model::UserProfile;
use banter_protocol::ServerEvent;
use banter_server::{Config, Server};
use std::time::Duration;
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery";
/// How long a test waits for something a user would expect to see "at once".
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    server: Option<Server>,
    config: Config,
    pub base_url: String,
    // Dropped last: the database lives in one of these.
    _database: Option<ScratchDatabase>,
    _dir: TempDir,
}

impl TestServer {
    /// Starts a server on this suite's backend ([`crate::BACKEND`]): a temporary SQLite
    /// file, or a database of its own on the PostgreSQL or MySQL server named in the
    /// environment. `None` when that server is not configured (outside CI, the suite then
    /// says which backend it did not test, and the test passes; in CI it fails).
    pub async fn start() -> Option<TestServer> {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test defaults changed by `adjust`.
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
        adjust(&mut config);
        let server = Server::start(config.clone()).await.expect("server starts");
        let base_url = format!("http://{}", server.local_addr());
        // Restarts reuse the same port, so that clients find the server where they left it.
        config.listen = server.local_addr();
        Some(TestServer {
            server: Some(server),
            config,
            base_url,
            _database: database,
            _dir: dir,
        })
    }

    /// Stops gracefully and starts again on the same data and port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let server = Server::start(self.config.clone())
            .await
            .expect("server restarts");
        self.server = Some(server);
    }

    /// Stops gracefully (acks pending sends, closes sockets with 1001).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("clean shutdown");
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base_url).expect("client")
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
