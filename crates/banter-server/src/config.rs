//! Configuration: defaults, then a TOML file, then `BANTER_*` environment variables
//! (`__` separates nesting: `BANTER_LIMITS__MESSAGE_BYTES_MAX`), then command-line flags.
//! The raw layers are merged as TOML values, deserialized with unknown keys refused, and
//! validated into [`Config`], which is all the rest of the server sees.

use crate::auth::AdminToken;
use crate::ratelimit::Rate;
use anyhow::{bail, Context};
use banter_store::Durability;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The configuration file as written: every field optional, defaults filled in by serde.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    /// Defaults to a SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// `full` (fsync before ack) or `relaxed`.
    pub durability: String,
    /// Origins (besides the server's own) allowed to open a WebSocket, e.g. `https://chat.example.org`.
    pub allowed_origins: Vec<String>,
    /// Enables the admin API (`/api/v1/admin/…`) for callers presenting it as a bearer
    /// token; at least 32 characters. Empty (the default): the admin API does not exist.
    pub admin_token: Secret,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed: for a request
    /// from one of them, rate limits key on the last address of that header (the one the
    /// proxy appended) instead of the proxy's own. Empty (the default): the header is
    /// ignored, and each client is its TCP peer address.
    pub trusted_proxies: Vec<String>,
    /// The bus between the nodes of a cluster: `redis://host:port` or `nats://host:port`
    /// (with NATS, presence is counted per node). Empty (the default): a
    /// single node, with events delivered in-process. A secret: it may hold a password.
    pub bus_url: Secret,
    /// Prefix of every channel this cluster uses on the bus, so that clusters (and tests)
    /// sharing one Redis never hear each other.
    pub bus_namespace: String,
    pub limits: RawLimits,
    pub policy: RawPolicy,
    pub media: RawMedia,
}

/// The `[media]` section: where uploads are stored and their limits (docs/protocol.md
/// §4.10 lists each with what happens when it is hit).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMedia {
    /// `local` (files under `data_dir/media`) or `s3` (the `[media.s3]` bucket).
    pub storage: String,
    pub file_bytes_max: u64,
    pub image_bytes_max: u64,
    pub image_side_px_max: u32,
    pub image_pixels_max: u64,
    pub upload_quota_bytes: u64,
    pub unattached_upload_ttl_secs: u64,
    pub uploads_per_user_per_hour_max: u32,
    pub uploads_per_user_at_once_max: usize,
    pub uploads_at_once_max: usize,
    pub voice_duration_ms_max: u64,
    /// With `storage = "local"` in a cluster: the folder is one every node shares (NFS,
    /// say). Without it, a cluster refuses local storage (a file uploaded to one node would
    /// be missing on the others).
    pub local_folder_is_shared: bool,
    pub s3: RawS3,
}

/// `[media.s3]`: an S3-compatible bucket (AWS, MinIO, Ceph, ...).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawS3 {
    pub bucket: String,
    /// Empty: `us-east-1`.
    pub region: String,
    /// Empty: AWS itself; otherwise the service's URL, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    /// Allow an `http://` endpoint (for a service on the same host or network).
    pub allow_http: bool,
}

impl Default for RawMedia {
    fn default() -> Self {
        RawMedia {
            storage: "local".into(),
            file_bytes_max: 100 * 1024 * 1024,
            image_bytes_max: 20 * 1024 * 1024,
            image_side_px_max: 16_384,
            image_pixels_max: 40_000_000,
            upload_quota_bytes: 1024 * 1024 * 1024,
            unattached_upload_ttl_secs: 86_400,
            uploads_per_user_per_hour_max: 200,
            uploads_per_user_at_once_max: 4,
            uploads_at_once_max: 64,
            voice_duration_ms_max: 600_000,
            local_folder_is_shared: false,
            s3: RawS3::default(),
        }
    }
}

/// Where uploaded bytes live.
#[derive(Debug, Clone)]
pub enum MediaStorage {
    /// Files under this folder.
    Local(PathBuf),
    S3 {
        bucket: String,
        region: String,
        endpoint: Option<String>,
        access_key_id: Secret,
        secret_access_key: Secret,
        allow_http: bool,
    },
}

/// The validated `[media]` section.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub storage: MediaStorage,
    /// Where upload bodies are spooled while they arrive (always on local disk).
    pub spool_dir: PathBuf,
    pub file_bytes_max: u64,
    pub image_bytes_max: u64,
    pub image_side_px_max: u32,
    pub image_pixels_max: u64,
    pub upload_quota_bytes: u64,
    pub unattached_upload_ttl: Duration,
    pub uploads_per_user: Rate,
    pub uploads_per_user_at_once_max: usize,
    pub uploads_at_once_max: usize,
    pub voice_duration_ms_max: u64,
}

impl RawMedia {
    fn validate(self, data_dir: &Path) -> anyhow::Result<MediaConfig> {
        let storage = match self.storage.as_str() {
            "local" => MediaStorage::Local(data_dir.join("media")),
            "s3" => {
                let s3 = self.s3;
                if s3.bucket.is_empty() {
                    bail!("media.s3.bucket is required when media.storage is \"s3\"");
                }
                MediaStorage::S3 {
                    bucket: s3.bucket,
                    region: if s3.region.is_empty() {
                        "us-east-1".into()
                    } else {
                        s3.region
                    },
                    endpoint: Some(s3.endpoint).filter(|e| !e.is_empty()),
                    access_key_id: s3.access_key_id,
                    secret_access_key: s3.secret_access_key,
                    allow_http: s3.allow_http,
                }
            }
            other => bail!("media.storage: {other:?} is not `local` or `s3`"),
        };
        for (name, value) in [
            ("file_bytes_max", self.file_bytes_max),
            ("image_bytes_max", self.image_bytes_max),
            ("image_side_px_max", u64::from(self.image_side_px_max)),
            ("image_pixels_max", self.image_pixels_max),
            (
                "unattached_upload_ttl_secs",
                self.unattached_upload_ttl_secs,
            ),
            (
                "uploads_per_user_per_hour_max",
                u64::from(self.uploads_per_user_per_hour_max),
            ),
            (
                "uploads_per_user_at_once_max",
                self.uploads_per_user_at_once_max as u64,
            ),
            ("uploads_at_once_max", self.uploads_at_once_max as u64),
            ("voice_duration_ms_max", self.voice_duration_ms_max),
        ] {
            if value == 0 {
                bail!("media.{name} must be greater than 0");
            }
        }
        Ok(MediaConfig {
            storage,
            spool_dir: data_dir.join("media-spool"),
            file_bytes_max: self.file_bytes_max,
            image_bytes_max: self.image_bytes_max,
            image_side_px_max: self.image_side_px_max,
            image_pixels_max: self.image_pixels_max,
            upload_quota_bytes: self.upload_quota_bytes,
            unattached_upload_ttl: Duration::from_secs(self.unattached_upload_ttl_secs),
            uploads_per_user: Rate::new(
                self.uploads_per_user_per_hour_max,
                Duration::from_secs(3600),
            ),
            uploads_per_user_at_once_max: self.uploads_per_user_at_once_max,
            uploads_at_once_max: self.uploads_at_once_max,
            voice_duration_ms_max: self.voice_duration_ms_max,
        })
    }
}

/// A configured secret: deserialized like a string, never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(empty)")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

/// The smallest request-header buffer the HTTP library accepts.
pub const HTTP_HEADER_BYTES_MIN: usize = 8192;

/// The shortest admin token accepted: long enough that guessing it is hopeless.
pub const ADMIN_TOKEN_CHARS_MIN: usize = 32;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub message_bytes_max: usize,
    pub frame_bytes_max: usize,
    pub request_body_bytes_max: usize,
    pub json_depth_max: usize,
    pub outbound_queue_frames_max: usize,
    pub outbound_queue_bytes_max: usize,
    pub sync_reply_bytes_max: usize,
    pub inflight_sends_per_connection_max: usize,
    pub connections_max: usize,
    pub http_connections_max: usize,
    pub http_header_timeout_secs: u64,
    pub http_header_bytes_max: usize,
    pub http_body_timeout_secs: u64,
    pub close_handshake_timeout_ms: u64,
    /// 0: half the CPU cores, at least 1.
    pub password_hashes_max: usize,
    pub password_hash_queue_max: usize,
    pub connections_per_user_max: usize,
    pub frames_per_second_max: u32,
    pub write_batch_max: usize,
    pub write_queue_max: usize,
    pub heartbeat_interval_secs: u64,
    pub session_ttl_days: u64,
    pub recall_window_secs: u64,
    pub typing_interval_ms: u64,
    pub database_connections_max: u32,
    pub login_failures_max: u32,
    pub login_lockout_secs: u64,
    pub login_failures_per_address_max: u32,
    pub login_failures_per_account_per_day_max: u32,
    pub login_known_addresses_max: usize,
    pub registrations_per_address_per_hour_max: u32,
    pub friend_requests_per_user_per_hour_max: u32,
    pub groups_per_user_per_hour_max: u32,
    pub group_invites_per_user_per_hour_max: u32,
    pub messages_per_user_per_second_max: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPolicy {
    /// Direct messages only between friends.
    pub direct_requires_friendship: bool,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./banter-data"),
            database_url: None,
            durability: "full".into(),
            allowed_origins: Vec::new(),
            admin_token: Secret::default(),
            trusted_proxies: Vec::new(),
            bus_url: Secret::default(),
            bus_namespace: "banter".into(),
            limits: RawLimits::default(),
            policy: RawPolicy::default(),
            media: RawMedia::default(),
        }
    }
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            message_bytes_max: 16 * 1024,
            frame_bytes_max: 64 * 1024,
            request_body_bytes_max: 64 * 1024,
            json_depth_max: 64,
            outbound_queue_frames_max: 1024,
            outbound_queue_bytes_max: 1024 * 1024,
            sync_reply_bytes_max: 1024 * 1024,
            inflight_sends_per_connection_max: 256,
            connections_max: 10_000,
            http_connections_max: 4096,
            http_header_timeout_secs: 10,
            http_header_bytes_max: 16 * 1024,
            http_body_timeout_secs: 30,
            close_handshake_timeout_ms: 2000,
            password_hashes_max: 0,
            password_hash_queue_max: 64,
            connections_per_user_max: 16,
            frames_per_second_max: 100,
            write_batch_max: 512,
            write_queue_max: 8192,
            heartbeat_interval_secs: 30,
            session_ttl_days: 30,
            recall_window_secs: 120,
            typing_interval_ms: 2000,
            database_connections_max: 8,
            login_failures_max: 10,
            login_lockout_secs: 900,
            login_failures_per_address_max: 30,
            login_failures_per_account_per_day_max: 100,
            login_known_addresses_max: 8,
            registrations_per_address_per_hour_max: 50,
            friend_requests_per_user_per_hour_max: 100,
            groups_per_user_per_hour_max: 20,
            group_invites_per_user_per_hour_max: 1000,
            messages_per_user_per_second_max: 100,
        }
    }
}

impl Default for RawPolicy {
    fn default() -> Self {
        RawPolicy {
            direct_requires_friendship: true,
        }
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub durability: Durability,
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see `RawConfig`).
    pub trusted_proxies: Vec<IpAddr>,
    pub limits: Limits,
    pub direct_requires_friendship: bool,
    /// `None`: the admin API is disabled and its routes do not exist.
    pub admin_token: Option<AdminToken>,
    pub media: MediaConfig,
    /// `Some`: this node is one of a cluster, joined by this bus.
    pub bus: Option<BusConfig>,
}

/// The bus of a cluster.
#[derive(Clone)]
pub struct BusConfig {
    /// `redis://…` or `nats://…`, perhaps with a password.
    pub url: String,
    pub namespace: String,
}

impl std::fmt::Debug for BusConfig {
    /// Never prints the URL, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusConfig")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Every bound the server enforces; each says what happens when it is hit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longer text is refused with `too_large`.
    pub message_bytes_max: usize,
    /// A larger WebSocket frame gets `too_large` and is dropped.
    pub frame_bytes_max: usize,
    /// A larger REST body gets HTTP 413.
    pub request_body_bytes_max: usize,
    /// Deeper JSON nesting gets `invalid_json` before it is parsed.
    pub json_depth_max: usize,
    /// When a connection's queue is full, the connection is closed with 4008 (too slow).
    pub outbound_queue_frames_max: usize,
    /// The same bound in bytes of queued frames; hitting it also closes with 4008.
    pub outbound_queue_bytes_max: usize,
    /// A `synced` reply stops adding entries at this many bytes (always at least one
    /// entry) and says `has_more`.
    pub sync_reply_bytes_max: usize,
    /// A connection with this many unacked sends stops reading until acks go out.
    pub inflight_sends_per_connection_max: usize,
    /// Further upgrades get HTTP 503.
    pub connections_max: usize,
    /// TCP connections serving HTTP (REST, the web client, upgrades not yet done); a
    /// WebSocket leaves this pool for `connections_max` once upgraded. At the bound a new
    /// connection is accepted and closed at once, without a response.
    pub http_connections_max: usize,
    /// Time to send a request's complete header, from connecting or from the end of the
    /// previous response (so also how long an idle keep-alive connection is kept).
    /// Exceeded: the connection is closed without a response.
    pub http_header_timeout: Duration,
    /// A larger request header gets HTTP 431 and the connection is closed.
    pub http_header_bytes_max: usize,
    /// Time for a request's body to arrive after its header; a body still incomplete then
    /// gets `400 invalid_input` and the connection is closed.
    pub http_body_timeout: Duration,
    /// How long a closing WebSocket waits for the client's close frame after sending its own.
    pub close_handshake_timeout: Duration,
    /// Password hashes (Argon2id, 19 MiB each) computed at once.
    pub password_hashes_max: usize,
    /// Password operations waiting for a turn; beyond it they get HTTP 503 at once.
    pub password_hash_queue_max: usize,
    /// A further connection of the same user is closed with 1013 right after the upgrade.
    pub connections_per_user_max: usize,
    /// Frames beyond this rate (burst of twice as many) get `rate_limited`.
    pub frames_per_second_max: u32,
    /// Most sends committed in one transaction.
    pub write_batch_max: usize,
    /// Sends waiting for the writer; beyond it senders wait (backpressure).
    pub write_queue_max: usize,
    pub heartbeat_interval: Duration,
    pub session_ttl: Duration,
    pub recall_window: Duration,
    /// Typing frames closer together than this, per conversation, are dropped.
    pub typing_interval: Duration,
    pub database_connections_max: u32,
    /// Password checks (logins, and old passwords of `PUT /me/password`) are throttled
    /// per account and address, per address, and per account; see
    /// [`crate::auth::LoginThrottle`]. A refused attempt gets `rate_limited` (429) with
    /// `Retry-After`, and its password is not checked.
    pub login_failures_per_account_address: Rate,
    pub login_failures_per_address: Rate,
    /// Does not apply from an address that logged in to the account before.
    pub login_failures_per_account: Rate,
    /// Addresses remembered per account as having logged in to it.
    pub login_known_addresses_max: usize,
    /// Beyond these, the request gets `rate_limited` (429) with `Retry-After`.
    pub registrations_per_address: Rate,
    pub friend_requests_per_user: Rate,
    pub groups_per_user: Rate,
    /// Users added to groups, at creation or later.
    pub group_invites_per_user: Rate,
    /// Sends beyond it (burst of twice as many) get `rate_limited` on the send's id.
    pub messages_per_user: Rate,
}

/// Flags given on the command line; they override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

const ENV_PREFIX: &str = "BANTER_";
/// `BANTER_*` variables that are not configuration keys: the config file path, the log
/// filter, and the binary path that test harnesses pass around (plus `BANTER_TEST_*`).
/// Every other `BANTER_*` variable must name a setting, so a typo is an error.
const NOT_CONFIG_KEYS: &[&str] = &["CONFIG", "LOG", "BIN"];

impl Config {
    /// Loads the layers from the real process environment.
    pub fn load(overrides: Overrides) -> anyhow::Result<Config> {
        Self::load_from(overrides, std::env::vars())
    }

    /// Loads the layers with an explicit environment, so tests need not touch the process's.
    pub fn load_from(
        overrides: Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut table = toml::Table::new();
        let config_file = overrides
            .config_file
            .clone()
            .or_else(|| std::env::var_os("BANTER_CONFIG").map(PathBuf::from));
        if let Some(path) = &config_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            table = text
                .parse::<toml::Table>()
                .with_context(|| format!("parsing config file {}", path.display()))?;
        }
        for (key, value) in env {
            let Some(name) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if NOT_CONFIG_KEYS.contains(&name) || name.starts_with("TEST_") {
                continue;
            }
            let path: Vec<String> = name.split("__").map(|p| p.to_ascii_lowercase()).collect();
            // A secret is a string whatever it looks like (an all-digit token is no number).
            let secret = path == ["admin_token"]
                || path == ["bus_url"]
                || path == ["media", "s3", "access_key_id"]
                || path == ["media", "s3", "secret_access_key"];
            let value = if secret {
                toml::Value::String(value)
            } else {
                env_value(&value)
            };
            set_path(&mut table, &path, value)
                .with_context(|| format!("environment variable {key}"))?;
        }
        if let Some(v) = overrides.listen {
            table.insert("listen".into(), toml::Value::String(v));
        }
        if let Some(v) = overrides.data_dir {
            table.insert(
                "data_dir".into(),
                toml::Value::String(v.display().to_string()),
            );
        }
        if let Some(v) = overrides.database_url {
            table.insert("database_url".into(), toml::Value::String(v));
        }
        let raw: RawConfig = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration")?;
        raw.validate()
    }
}

/// An environment value is read as a TOML scalar or array when it parses as one
/// (`16384`, `true`, `["a"]`), else as a plain string.
fn env_value(value: &str) -> toml::Value {
    let probe = format!("v = {value}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(value.into())),
        Err(_) => toml::Value::String(value.into()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> anyhow::Result<()> {
    match path {
        [] => bail!("empty key"),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [head, rest @ ..] => {
            let entry = table
                .entry(head.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => set_path(inner, rest, value),
                _ => bail!("{head} is not a section"),
            }
        }
    }
}

impl RawConfig {
    pub fn validate(self) -> anyhow::Result<Config> {
        let listen: SocketAddr = self.listen.parse().with_context(|| {
            format!(
                "listen: {:?} is not an address like 127.0.0.1:8080",
                self.listen
            )
        })?;
        let durability = match self.durability.as_str() {
            "full" => Durability::Full,
            "relaxed" => Durability::Relaxed,
            other => bail!("durability: {other:?} is not `full` or `relaxed`"),
        };
        let database_url = match self.database_url {
            Some(url) if !url.is_empty() => url,
            _ => default_database_url(&self.data_dir),
        };
        let admin_token = match self.admin_token.0.as_str() {
            "" => None,
            token if token.chars().count() < ADMIN_TOKEN_CHARS_MIN => bail!(
                "admin_token must be at least {ADMIN_TOKEN_CHARS_MIN} characters (or empty, which disables the admin API)"
            ),
            token => Some(AdminToken::new(token)),
        };
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|a| {
                a.parse::<IpAddr>()
                    .map(|a| a.to_canonical())
                    .with_context(|| format!("trusted_proxies: {a:?} is not an IP address"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let l = self.limits;
        for (name, value) in [
            ("login_failures_max", l.login_failures_max),
            (
                "login_failures_per_address_max",
                l.login_failures_per_address_max,
            ),
            (
                "login_failures_per_account_per_day_max",
                l.login_failures_per_account_per_day_max,
            ),
            (
                "registrations_per_address_per_hour_max",
                l.registrations_per_address_per_hour_max,
            ),
            (
                "friend_requests_per_user_per_hour_max",
                l.friend_requests_per_user_per_hour_max,
            ),
            (
                "groups_per_user_per_hour_max",
                l.groups_per_user_per_hour_max,
            ),
            (
                "group_invites_per_user_per_hour_max",
                l.group_invites_per_user_per_hour_max,
            ),
            (
                "messages_per_user_per_second_max",
                l.messages_per_user_per_second_max,
            ),
        ] {
            if value == 0 {
                bail!("limits.{name} must be greater than 0");
            }
        }
        if l.login_lockout_secs == 0 || l.login_known_addresses_max == 0 {
            bail!("limits.login_lockout_secs and login_known_addresses_max must be greater than 0");
        }
        let hour = Duration::from_secs(3600);
        let lockout = Duration::from_secs(l.login_lockout_secs);
        for (name, value) in [
            ("message_bytes_max", l.message_bytes_max),
            ("frame_bytes_max", l.frame_bytes_max),
            ("request_body_bytes_max", l.request_body_bytes_max),
            ("json_depth_max", l.json_depth_max),
            ("outbound_queue_frames_max", l.outbound_queue_frames_max),
            ("outbound_queue_bytes_max", l.outbound_queue_bytes_max),
            ("sync_reply_bytes_max", l.sync_reply_bytes_max),
            ("http_connections_max", l.http_connections_max),
            (
                "http_header_timeout_secs",
                l.http_header_timeout_secs as usize,
            ),
            ("http_body_timeout_secs", l.http_body_timeout_secs as usize),
            (
                "inflight_sends_per_connection_max",
                l.inflight_sends_per_connection_max,
            ),
            ("connections_max", l.connections_max),
            ("connections_per_user_max", l.connections_per_user_max),
            ("write_batch_max", l.write_batch_max),
            ("write_queue_max", l.write_queue_max),
        ] {
            if value == 0 {
                bail!("limits.{name} must be greater than 0");
            }
        }
        if l.http_header_bytes_max < HTTP_HEADER_BYTES_MIN {
            bail!("limits.http_header_bytes_max must be at least {HTTP_HEADER_BYTES_MIN}");
        }
        if l.frame_bytes_max < l.message_bytes_max {
            bail!("limits.frame_bytes_max must be at least limits.message_bytes_max");
        }
        if l.heartbeat_interval_secs == 0 || l.session_ttl_days == 0 || l.frames_per_second_max == 0
        {
            bail!("limits.heartbeat_interval_secs, session_ttl_days and frames_per_second_max must be greater than 0");
        }
        let bus = match self.bus_url.0.as_str() {
            "" => None,
            url if url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("nats://") =>
            {
                if database_url.starts_with("sqlite:") {
                    bail!(
                        "bus_url: a cluster needs a database every node shares (PostgreSQL or \
                         MySQL); SQLite is one node's file. Set database_url, or remove bus_url \
                         to run a single node"
                    );
                }
                if self.media.storage == "local" && !self.media.local_folder_is_shared {
                    bail!(
                        "bus_url: in a cluster, uploads must be where every node finds them: set \
                         media.storage = \"s3\", or media.local_folder_is_shared = true if \
                         data_dir/media is a folder all nodes share"
                    );
                }
                let namespace = self.bus_namespace.clone();
                // It names Redis keys, NATS subjects and NATS buckets: only characters
                // all three take as they are.
                if namespace.is_empty()
                    || namespace.len() > 64
                    || !namespace
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    bail!(
                        "bus_namespace must be 1-64 letters, digits, '-' or '_', got {namespace:?}"
                    );
                }
                Some(BusConfig {
                    url: url.to_owned(),
                    namespace,
                })
            }
            other => bail!(
                "bus_url: {:?} is not a redis:// or nats:// URL",
                other.split('@').next_back().unwrap_or("")
            ),
        };
        let media = self.media.validate(&self.data_dir)?;
        Ok(Config {
            bus,
            media,
            listen,
            data_dir: self.data_dir,
            database_url,
            durability,
            allowed_origins: self.allowed_origins,
            trusted_proxies,
            direct_requires_friendship: self.policy.direct_requires_friendship,
            admin_token,
            limits: Limits {
                message_bytes_max: l.message_bytes_max,
                frame_bytes_max: l.frame_bytes_max,
                request_body_bytes_max: l.request_body_bytes_max,
                json_depth_max: l.json_depth_max,
                outbound_queue_frames_max: l.outbound_queue_frames_max,
                outbound_queue_bytes_max: l.outbound_queue_bytes_max,
                sync_reply_bytes_max: l.sync_reply_bytes_max,
                inflight_sends_per_connection_max: l.inflight_sends_per_connection_max,
                connections_max: l.connections_max,
                http_connections_max: l.http_connections_max,
                http_header_timeout: Duration::from_secs(l.http_header_timeout_secs),
                http_header_bytes_max: l.http_header_bytes_max,
                http_body_timeout: Duration::from_secs(l.http_body_timeout_secs),
                close_handshake_timeout: Duration::from_millis(l.close_handshake_timeout_ms),
                password_hashes_max: match l.password_hashes_max {
                    0 => default_password_hashes_max(),
                    n => n,
                },
                password_hash_queue_max: l.password_hash_queue_max,
                connections_per_user_max: l.connections_per_user_max,
                frames_per_second_max: l.frames_per_second_max,
                write_batch_max: l.write_batch_max,
                write_queue_max: l.write_queue_max,
                heartbeat_interval: Duration::from_secs(l.heartbeat_interval_secs),
                session_ttl: Duration::from_secs(l.session_ttl_days * 24 * 3600),
                recall_window: Duration::from_secs(l.recall_window_secs),
                typing_interval: Duration::from_millis(l.typing_interval_ms),
                database_connections_max: l.database_connections_max.max(1),
                login_failures_per_account_address: Rate::new(l.login_failures_max, lockout),
                login_failures_per_address: Rate::new(l.login_failures_per_address_max, lockout),
                login_failures_per_account: Rate::new(
                    l.login_failures_per_account_per_day_max,
                    24 * hour,
                ),
                login_known_addresses_max: l.login_known_addresses_max,
                registrations_per_address: Rate::new(
                    l.registrations_per_address_per_hour_max,
                    hour,
                ),
                friend_requests_per_user: Rate::new(l.friend_requests_per_user_per_hour_max, hour),
                groups_per_user: Rate::new(l.groups_per_user_per_hour_max, hour),
                group_invites_per_user: Rate::new(l.group_invites_per_user_per_hour_max, hour),
                // A burst of twice the rate, like the per-connection frame rate: a client
                // that reconnects may resend a backlog at once.
                messages_per_user: Rate::new(
                    l.messages_per_user_per_second_max.saturating_mul(2),
                    Duration::from_secs(2),
                ),
            },
        })
    }
}

/// Half the CPU cores, at least one: hashing on every core would leave none for the
/// users already logged in while a flood of logins is being refused.
fn default_password_hashes_max() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().div_ceil(2))
        .unwrap_or(1)
}

fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("banter.db").display())
}

impl Config {
    /// The longest period of any rate limit: how long a cluster keeps what was spent.
    pub fn budget_period_max(&self) -> Duration {
        let l = &self.limits;
        [
            l.login_failures_per_account_address,
            l.login_failures_per_address,
            l.login_failures_per_account,
            l.registrations_per_address,
            l.friend_requests_per_user,
            l.groups_per_user,
            l.group_invites_per_user,
            l.messages_per_user,
            self.media.uploads_per_user,
        ]
        .iter()
        .map(|rate| rate.per)
        .max()
        .unwrap_or_default()
    }

    /// The default `limits.json_depth_max`, for code that checks JSON without a server.
    pub fn default_json_depth_max() -> usize {
        RawLimits::default().json_depth_max
    }

    /// A configuration for tests: defaults, an ephemeral port, the given data folder.
    pub fn for_tests(data_dir: &Path) -> Config {
        let raw = RawConfig {
            listen: "127.0.0.1:0".into(),
            data_dir: data_dir.to_path_buf(),
            ..RawConfig::default()
        };
        raw.validate().expect("default configuration is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_file_matches_the_defaults() {
        let text = include_str!("../../../banter.example.toml");
        let parsed: RawConfig = toml::from_str(text).expect("banter.example.toml parses");
        assert_eq!(parsed, RawConfig::default());
    }

    #[test]
    fn environment_overrides_file_and_nesting_uses_double_underscore() {
        let env = [
            ("BANTER_LISTEN".to_string(), "0.0.0.0:9000".to_string()),
            (
                "BANTER_LIMITS__MESSAGE_BYTES_MAX".to_string(),
                "100".to_string(),
            ),
            (
                "BANTER_POLICY__DIRECT_REQUIRES_FRIENDSHIP".to_string(),
                "false".to_string(),
            ),
            ("BANTER_DATA_DIR".to_string(), "/tmp/x".to_string()),
        ];
        let config = Config::load_from(Overrides::default(), env).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.limits.message_bytes_max, 100);
        assert!(!config.direct_requires_friendship);
        assert_eq!(config.database_url, "sqlite:///tmp/x/banter.db?mode=rwc");
    }

    #[test]
    fn flags_override_environment() {
        let env = [("BANTER_LISTEN".to_string(), "0.0.0.0:9000".to_string())];
        let overrides = Overrides {
            listen: Some("127.0.0.1:7000".into()),
            ..Overrides::default()
        };
        let config = Config::load_from(overrides, env).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
    }

    #[test]
    fn admin_token_is_off_by_default_long_when_set_and_never_printed() {
        let config = Config::load_from(Overrides::default(), []).unwrap();
        assert!(config.admin_token.is_none());

        let short = [("BANTER_ADMIN_TOKEN".to_string(), "too-short".to_string())];
        let err = Config::load_from(Overrides::default(), short).unwrap_err();
        assert!(format!("{err:#}").contains("at least 32 characters"));

        // All digits: still a string, not a number.
        let token = "12345678901234567890123456789012";
        let env = [("BANTER_ADMIN_TOKEN".to_string(), token.to_string())];
        let config = Config::load_from(Overrides::default(), env).unwrap();
        let admin = config.admin_token.as_ref().expect("enabled");
        assert!(admin.matches(token));
        assert!(!admin.matches("12345678901234567890123456789013"));
        assert!(!format!("{config:?}").contains(token));
        let raw = RawConfig {
            admin_token: Secret(token.into()),
            ..RawConfig::default()
        };
        assert!(!format!("{raw:?}").contains(token));
    }

    #[test]
    fn rate_limits_take_their_windows_and_refuse_zero() {
        let env = [
            (
                "BANTER_LIMITS__MESSAGES_PER_USER_PER_SECOND_MAX".to_string(),
                "7".to_string(),
            ),
            (
                "BANTER_TRUSTED_PROXIES".to_string(),
                r#"["10.0.0.1", "::1"]"#.to_string(),
            ),
        ];
        let config = Config::load_from(Overrides::default(), env).unwrap();
        let l = &config.limits;
        assert_eq!(l.messages_per_user, Rate::new(14, Duration::from_secs(2)));
        assert_eq!(
            l.login_failures_per_account_address,
            Rate::new(10, Duration::from_secs(900))
        );
        assert_eq!(
            l.login_failures_per_account,
            Rate::new(100, Duration::from_secs(86_400))
        );
        assert_eq!(
            l.registrations_per_address,
            Rate::new(50, Duration::from_secs(3600))
        );
        assert_eq!(config.trusted_proxies.len(), 2);
        for key in [
            "BANTER_LIMITS__LOGIN_FAILURES_PER_ACCOUNT_PER_DAY_MAX",
            "BANTER_LIMITS__GROUP_INVITES_PER_USER_PER_HOUR_MAX",
            "BANTER_LIMITS__LOGIN_LOCKOUT_SECS",
        ] {
            let env = [(key.to_string(), "0".to_string())];
            assert!(
                Config::load_from(Overrides::default(), env).is_err(),
                "{key} = 0"
            );
        }
        let env = [(
            "BANTER_TRUSTED_PROXIES".to_string(),
            r#"["proxy.local"]"#.to_string(),
        )];
        let err = Config::load_from(Overrides::default(), env).unwrap_err();
        assert!(format!("{err:#}").contains("trusted_proxies"));
    }

    #[test]
    fn a_cluster_needs_a_shared_database_and_shared_media() {
        let load = |pairs: &[(&str, &str)]| {
            let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
            Config::load_from(Overrides::default(), env).map_err(|e| format!("{e:#}"))
        };
        let redis = ("BANTER_BUS_URL", "redis://127.0.0.1:6379");
        let postgres = ("BANTER_DATABASE_URL", "postgres://banter@db/banter");
        let sqlite_refused = load(&[redis]).unwrap_err();
        assert!(sqlite_refused.contains("SQLite"), "{sqlite_refused}");
        let local_refused = load(&[redis, postgres]).unwrap_err();
        assert!(local_refused.contains("media.storage"), "{local_refused}");
        let shared = load(&[
            redis,
            postgres,
            ("BANTER_MEDIA__LOCAL_FOLDER_IS_SHARED", "true"),
        ])
        .expect("a shared folder is fine");
        let bus = shared.bus.expect("a cluster node");
        assert_eq!(
            (bus.url.as_str(), bus.namespace.as_str()),
            (redis.1, "banter")
        );
        let not_a_bus =
            load(&[("BANTER_BUS_URL", "amqp://user:secret@host:5672"), postgres]).unwrap_err();
        assert!(
            !not_a_bus.contains("secret"),
            "a URL's password is never echoed: {not_a_bus}"
        );
        assert!(load(&[]).expect("defaults").bus.is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let unknown = [("BANTER_LIMITS__NO_SUCH_LIMIT".to_string(), "1".to_string())];
        assert!(Config::load_from(Overrides::default(), unknown).is_err());
        let bad = [("BANTER_DURABILITY".to_string(), "sometimes".to_string())];
        let err = Config::load_from(Overrides::default(), bad).unwrap_err();
        assert!(format!("{err:#}").contains("durability"));
    }
}
