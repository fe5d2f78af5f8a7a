//! Credentials and bearer tokens.
//!
//! Passwords are hashed with Argon2id on the blocking pool (hashing takes tens of
//! milliseconds of CPU by design and must not stall the async runtime), a bounded number
//! at a time ([`PasswordHashing`]). A token is 32
//! random bytes, shown to the client once as hex; the server keeps only its SHA-256, so a
//! leaked database does not leak live sessions. [`LoginThrottle`] limits password guessing.

use crate::error::{ApiError, ApiResult};
use crate::ratelimit::{
    self, AddressKey, BoundedMap, Budget, ClientAddr, SharedBudgets, SharedKey,
};
use crate::state::AppState;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use banter_protocol::{ErrorCode, UserId};
use banter_store::{SessionId, StoreError};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub const USERNAME_CHARS_MIN: usize = 3;
pub const USERNAME_CHARS_MAX: usize = 32;
pub const PASSWORD_CHARS_MIN: usize = 8;
pub const PASSWORD_CHARS_MAX: usize = 128;
const TOKEN_BYTES: usize = 32;

pub fn validate_username(username: &str) -> ApiResult<()> {
    let len = username.chars().count();
    let charset_ok = username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !(USERNAME_CHARS_MIN..=USERNAME_CHARS_MAX).contains(&len) || !charset_ok {
        return Err(ApiError::invalid_input(format!(
            "username must be {USERNAME_CHARS_MIN}-{USERNAME_CHARS_MAX} characters of letters, digits, '_', '.' or '-'"
        )));
    }
    Ok(())
}

pub fn validate_password(password: &str) -> ApiResult<()> {
    let len = password.chars().count();
    if !(PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&len) {
        return Err(ApiError::invalid_input(format!(
            "password must be {PASSWORD_CHARS_MIN}-{PASSWORD_CHARS_MAX} characters"
        )));
    }
    Ok(())
}

/// Runs Argon2id (default parameters: 19 MiB of memory and tens of milliseconds of CPU
/// per hash) on the blocking pool, at most `hashes_max` at once, with at most `queue_max`
/// more requests waiting for a turn. A request beyond that is refused at once with
/// [`busy`] (HTTP 503 `shutting_down` with `Retry-After`): a flood of logins with made-up
/// usernames then costs a bounded amount of memory and CPU, and leaves cores free for the
/// users who are already logged in.
pub struct PasswordHashing {
    running: Arc<Semaphore>,
    /// Requests admitted: hashing now or waiting for a turn.
    admitted: AtomicUsize,
    admitted_max: usize,
}

/// Seconds a client refused by [`PasswordHashing`] is told to wait (`Retry-After`).
pub const HASHING_BUSY_RETRY_AFTER_SECS: u64 = 1;

/// The refusal of a password operation when the hashing queue is full.
pub fn busy() -> ApiError {
    ApiError::new(
        ErrorCode::ShuttingDown,
        "the server is busy checking other passwords; retry in a moment",
    )
    .with_retry_after(Duration::from_secs(HASHING_BUSY_RETRY_AFTER_SECS))
}

impl PasswordHashing {
    pub fn new(hashes_max: usize, queue_max: usize) -> PasswordHashing {
        PasswordHashing {
            running: Arc::new(Semaphore::new(hashes_max)),
            admitted: AtomicUsize::new(0),
            admitted_max: hashes_max + queue_max,
        }
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: String) -> ApiResult<String> {
        self.run(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|err| {
            tracing::error!(error = %err, "password hashing failed");
            ApiError::internal()
        })
    }

    /// Checks a password against a stored PHC string.
    pub async fn verify(&self, password: String, stored_hash: String) -> ApiResult<bool> {
        self.run(move || {
            let Ok(parsed) = PasswordHash::new(&stored_hash) else {
                tracing::error!("stored password hash is not a valid PHC string");
                return false;
            };
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ApiResult<T> {
        let _admission = self.admit().ok_or_else(busy)?;
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal())?;
        // The permit moves into the blocking task: a request abandoned by its client
        // still holds its turn until the hash it started has finished.
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|_| ApiError::internal())
    }

    fn admit(&self) -> Option<Admission<'_>> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(&self.admitted);
        (before < self.admitted_max).then_some(admission)
    }
}

/// One admitted password operation; leaves the count when dropped.
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A new random token (hex) and the hash under which it is stored.
pub fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The bearer token of a REST request: from `Authorization: Bearer …` only.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
}

/// The bearer token of a WebSocket upgrade: from `Authorization: Bearer …`, or, for
/// browsers (which cannot set headers on an upgrade), from the `banter.auth.<token>`
/// subprotocol. Only the upgrade accepts the subprotocol form.
pub fn upgrade_token(headers: &HeaderMap) -> Option<String> {
    if headers.contains_key(header::AUTHORIZATION) {
        return bearer_token(headers);
    }
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())?
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix(banter_protocol::AUTH_SUBPROTOCOL_PREFIX))
        .map(str::to_string)
}

/// An authenticated caller. Extracting it from a request checks the token against the store.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: UserId,
    pub session_id: SessionId,
}

impl AuthUser {
    /// The caller of a REST request (`Authorization` header only).
    pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> ApiResult<AuthUser> {
        let token = bearer_token(headers).ok_or_else(ApiError::unauthorized)?;
        AuthUser::from_token(state, &token).await
    }

    /// The session a token belongs to, if it is live.
    pub async fn from_token(state: &AppState, token: &str) -> ApiResult<AuthUser> {
        match state
            .store
            .session_by_token_hash(&token_hash(token), now_ms())
            .await
        {
            Ok(session) => Ok(AuthUser {
                user_id: session.user_id,
                session_id: session.id,
            }),
            Err(StoreError::NotFound) => Err(ApiError::unauthorized()),
            Err(err) => Err(err.into()),
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<AuthUser> {
        AuthUser::from_headers(state, &parts.headers).await
    }
}

/// The admin API's shared secret, kept only as its SHA-256 so that the token itself is
/// neither held in memory after start-up nor printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    sha256: [u8; 32],
}

impl AdminToken {
    pub fn new(token: &str) -> AdminToken {
        AdminToken {
            sha256: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Whether `presented` is the token. Compares the two SHA-256 digests in constant time
    /// (every byte is looked at, whatever the first difference), so the response time says
    /// nothing about how much of a guess was right; hashing first also makes the time
    /// independent of the guess's length.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let difference = self
            .sha256
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Rejects wrong credentials without saying which half was wrong.
pub fn invalid_credentials() -> ApiError {
    ApiError::new(ErrorCode::InvalidCredentials, "wrong username or password")
}

/// Throttles password guessing at logins (and at the old password of `PUT /me/password`)
/// with three budgets of failed checks, so that neither of two attackers wins:
///
/// - **per account and address** (`login_failures_max` per `login_lockout_secs`): the
///   budget a guesser at one address has against one account. Spending it locks only
///   that pair: the owner elsewhere is not affected.
/// - **per address** (`login_failures_per_address_max` per `login_lockout_secs`): one
///   address cannot spray guesses over many accounts.
/// - **per account** (`login_failures_per_account_per_day_max` per day): guesses spread
///   over many addresses (a botnet) are stopped. When it is spent, attempts from the
///   addresses that logged in to this account recently (the last
///   `login_known_addresses_max`, for `session_ttl_days`) are still admitted, so a
///   stranger can spend it but cannot lock the owner out of their usual places.
///
/// Accounts are keyed by the store's username key, so every spelling that reaches the
/// same account (any letter case) spends the same budgets; unknown usernames are throttled
/// exactly like existing ones, so the throttle does not reveal which exist. An attempt
/// spends from every budget *before* the password is checked (so concurrent guesses cannot
/// all slip in before the first failure is counted), and a success gives its spending back.
pub struct LoginThrottle {
    per_pair: Budget<(String, AddressKey)>,
    per_address: Budget<AddressKey>,
    per_account: Budget<String>,
    /// Per account: addresses that logged in to it, most recent last, with when.
    known: std::sync::Mutex<BoundedMap<String, Vec<(AddressKey, Instant)>>>,
    known_max: usize,
    known_for: Duration,
    /// In a cluster, where every node also keeps the known addresses.
    shared: Option<Arc<dyn SharedBudgets>>,
}

/// An admitted password check, to report to [`LoginThrottle::succeeded`] if the password
/// was right. A failure needs no report: it was counted when admitted.
pub struct PasswordAttempt {
    account: String,
    address: AddressKey,
    /// False when admitted from a known address although the account's budget was spent.
    account_charged: bool,
}

impl LoginThrottle {
    /// The throttle of `limits`; its budgets (and the addresses an account logged in
    /// from) are also kept in the cluster's `shared` budgets if there are.
    pub fn new(
        limits: &crate::config::Limits,
        shared: Option<Arc<dyn SharedBudgets>>,
    ) -> LoginThrottle {
        LoginThrottle {
            per_pair: Budget::named(
                "login_failures_account_address",
                limits.login_failures_per_account_address,
                ratelimit::KEYS_MAX,
                shared.clone(),
            ),
            per_address: Budget::named(
                "login_failures_address",
                limits.login_failures_per_address,
                ratelimit::KEYS_MAX,
                shared.clone(),
            ),
            per_account: Budget::named(
                "login_failures_account",
                limits.login_failures_per_account,
                ratelimit::KEYS_MAX,
                shared.clone(),
            ),
            known: std::sync::Mutex::new(BoundedMap::new(ratelimit::KEYS_MAX)),
            known_max: limits.login_known_addresses_max,
            known_for: limits.session_ttl,
            shared,
        }
    }

    fn known_key(account: &str) -> String {
        format!("login_known_addresses:{account}")
    }

    fn known(&self) -> std::sync::MutexGuard<'_, BoundedMap<String, Vec<(AddressKey, Instant)>>> {
        // Every update is one insert, so a poisoned map is still consistent.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `address` logged in to `account` recently: as this node remembers, or else
    /// as the cluster does.
    async fn is_known(&self, account: &String, address: AddressKey) -> bool {
        let now = Instant::now();
        let known_here = self.known().get(account).is_some_and(|addresses| {
            addresses
                .iter()
                .any(|(a, at)| *a == address && now.duration_since(*at) < self.known_for)
        });
        let Some(shared) = self.shared.as_ref().filter(|_| !known_here) else {
            return known_here;
        };
        let (key, member) = (Self::known_key(account), address.shared_key());
        let asked = shared.remembers(&key, &member, self.known_for);
        match tokio::time::timeout(ratelimit::SHARED_WAIT, asked).await {
            Ok(Ok(known)) => known,
            _ => {
                tracing::warn!("the cluster's known addresses did not answer; this node's only");
                false
            }
        }
    }

    /// Admits one password check of `username` from `address`, or refuses it with
    /// `rate_limited` (and its `Retry-After`) without spending anything.
    pub async fn admit(&self, username: &str, address: ClientAddr) -> ApiResult<PasswordAttempt> {
        let account = banter_store::username_key(username);
        let address = address.key();
        self.per_address
            .take(&address)
            .await
            .map_err(|r| r.error("too many failed password checks from this address"))?;
        let pair = (account.clone(), address);
        if let Err(refused) = self.per_pair.take(&pair).await {
            self.per_address.refund(&address).await;
            return Err(
                refused.error("too many failed password checks for this account from this address")
            );
        }
        let account_charged = match self.per_account.take(&account).await {
            Ok(()) => true,
            Err(_) if self.is_known(&account, address).await => false,
            Err(refused) => {
                self.per_address.refund(&address).await;
                self.per_pair.refund(&pair).await;
                tracing::info!("password check refused: the account's failure budget is spent");
                return Err(refused.error(
                    "too many failed password checks for this account; try from a device that logged in before, or later",
                ));
            }
        };
        Ok(PasswordAttempt {
            account,
            address,
            account_charged,
        })
    }

    /// The password could not be checked (the hashing queue was full): the attempt never
    /// happened, so every budget it spent is given back. Nothing is forgiven beyond that.
    pub async fn withdrawn(&self, attempt: PasswordAttempt) {
        self.per_address.refund(&attempt.address).await;
        self.per_pair
            .refund(&(attempt.account.clone(), attempt.address))
            .await;
        if attempt.account_charged {
            self.per_account.refund(&attempt.account).await;
        }
    }

    /// The password was right: the attempt does not count, the pair's failures are
    /// forgiven, and the address is remembered as the account owner's.
    pub async fn succeeded(&self, attempt: PasswordAttempt) {
        self.per_address.refund(&attempt.address).await;
        if attempt.account_charged {
            self.per_account.refund(&attempt.account).await;
        }
        self.per_pair
            .reset(&(attempt.account.clone(), attempt.address))
            .await;
        let now = Instant::now();
        {
            let mut known = self.known();
            let mut addresses = known.remove(&attempt.account).unwrap_or_default();
            addresses.retain(|(a, at)| {
                *a != attempt.address && now.duration_since(*at) < self.known_for
            });
            addresses.push((attempt.address, now));
            if addresses.len() > self.known_max {
                addresses.drain(..addresses.len() - self.known_max);
            }
            known.insert(&attempt.account, addresses);
        }
        if let Some(shared) = &self.shared {
            let (key, member) = (
                Self::known_key(&attempt.account),
                attempt.address.shared_key(),
            );
            let remembered = shared.remember(&key, &member, self.known_max, self.known_for);
            if !matches!(
                tokio::time::timeout(ratelimit::SHARED_WAIT, remembered).await,
                Ok(Ok(()))
            ) {
                tracing::warn!("could not remember a login's address in the cluster");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashing_admits_the_running_and_queued_and_refuses_the_rest() {
        let hashing = Arc::new(PasswordHashing::new(1, 1));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let running = tokio::spawn({
            let hashing = hashing.clone();
            async move {
                hashing
                    .run(move || {
                        let _ = started_tx.send(());
                        release_rx.recv().ok()
                    })
                    .await
            }
        });
        started_rx.await.unwrap();
        let queued = tokio::spawn({
            let hashing = hashing.clone();
            async move { hashing.run(|| "queued").await }
        });
        // Wait until the queued call has been admitted (it counts before it waits).
        while hashing.admitted.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        let refused = hashing.run(|| "refused").await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::ShuttingDown);
        assert_eq!(
            refused.retry_after,
            Some(Duration::from_secs(HASHING_BUSY_RETRY_AFTER_SECS))
        );
        release_tx.send(()).unwrap();
        assert_eq!(running.await.unwrap().unwrap(), Some(()));
        assert_eq!(queued.await.unwrap().unwrap(), "queued");
        assert_eq!(hashing.admitted.load(Ordering::Acquire), 0);
        assert_eq!(hashing.run(|| "later").await.unwrap(), "later");
    }
}
