//! Rate limits: keyed budgets that refill over time, the client address they are keyed
//! by, and the set of limits the REST handlers and the gateway spend from.
//!
//! One concept serves every limit: a [`Budget`] of `events` per `per` (a duration) for
//! each key (an address, a user, an account), refilled continuously, so `events` can be
//! spent at once and then one more every `per / events`. It is kept as one instant per
//! key (the generic cell rate algorithm: the "theoretical arrival time" after which the
//! key's budget is full again), so a refusal knows exactly when the next event would be
//! allowed: that is the `Retry-After` the client is given.
//!
//! Memory is bounded: each budget tracks at most `keys_max` keys, in two generations
//! (recently touched, and touched before that). When the recent generation is full, the
//! older one is dropped and the recent one becomes the older. A key that was not touched
//! for a whole generation is forgotten, and a forgotten key has a full budget; an attacker
//! who wants to reset one key's budget that way has to touch `keys_max / 2` other keys
//! first, each of which is itself limited. Keys are spread over shards, each with its own
//! lock, because the message budget is spent on every send.
//!
//! In a cluster every node spends the same budgets: a [`Budget`] then also has
//! [`SharedBudgets`], the cluster's store of the same instants (Redis or NATS, in
//! `bus::budgets`), so a user or an address cannot multiply a budget by the number of
//! nodes. The budget of this process is still kept and spent first: a refusal it gives
//! costs no round trip (whatever this node has seen spent, the cluster has too), and
//! when the shared store does not answer within [`SHARED_WAIT`] the node decides alone
//! (logged), so a slow or lost store never stops messages.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use banter_protocol::{ErrorCode, UserId};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Shards of one budget's key map: enough that concurrent senders rarely share a lock.
const SHARDS: usize = 16;

/// Most keys one budget tracks at once (over all shards and both generations).
pub const KEYS_MAX: usize = 100_000;

/// `events` per `per`, refilled continuously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub events: u32,
    pub per: Duration,
}

impl Rate {
    pub fn new(events: u32, per: Duration) -> Rate {
        assert!(events > 0, "a rate allows at least one event");
        Rate { events, per }
    }

    pub fn per_second(events: u32) -> Rate {
        Rate::new(events, Duration::from_secs(1))
    }

    /// Time for one event's worth of budget to come back.
    fn interval(&self) -> Duration {
        self.per / self.events
    }
}

/// A refusal: the budget has not enough left; `0` is how long until it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// The `rate_limited` error for this refusal, with its `Retry-After`.
    pub fn error(self, what: &str) -> ApiError {
        let secs = retry_after_secs(self.0);
        ApiError::new(
            ErrorCode::RateLimited,
            format!("{what}; try again in {secs} s"),
        )
        .with_retry_after(self.0)
    }
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1, so a client that
/// waits that long is allowed.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// How long a node waits for the cluster's budgets before it decides alone.
pub const SHARED_WAIT: Duration = Duration::from_millis(250);

/// Budgets every node of a cluster spends: the same rule as [`Budget`]'s (one instant per
/// key, the generic cell rate algorithm), kept in a store the nodes share, each operation
/// atomic there. `key` names the budget and the key (`messages:42`). An `Err` is the
/// store not answering; the caller then decides alone.
///
/// The store also remembers, per key, the newest few members with when they were seen:
/// the login throttle's addresses an account logged in from, which let its owner past a
/// spent budget on whichever node they reach.
#[async_trait::async_trait]
pub trait SharedBudgets: Send + Sync + 'static {
    /// Spends `n` events (all or nothing), or says how long until they would fit.
    async fn take(&self, key: &str, rate: Rate, n: u32) -> anyhow::Result<Result<(), RetryAfter>>;
    /// Spends `n` events that happened already, even beyond the budget (which then owes
    /// them: it refills that much later); when it is over, how long until it is not.
    async fn spend(&self, key: &str, rate: Rate, n: u32) -> anyhow::Result<Option<RetryAfter>>;
    /// Gives one event back.
    async fn refund(&self, key: &str, rate: Rate) -> anyhow::Result<()>;
    /// Refills the budget completely.
    async fn reset(&self, key: &str) -> anyhow::Result<()>;
    /// Remembers `member` under `key` now, keeping the newest `keep` members, each for
    /// `ttl`.
    async fn remember(
        &self,
        key: &str,
        member: &str,
        keep: usize,
        ttl: Duration,
    ) -> anyhow::Result<()>;
    /// Whether `member` was remembered under `key` less than `ttl` ago.
    async fn remembers(&self, key: &str, member: &str, ttl: Duration) -> anyhow::Result<bool>;
}

/// A key as the cluster's store spells it: the same key on every node.
pub trait SharedKey {
    fn shared_key(&self) -> String;
}

impl SharedKey for UserId {
    fn shared_key(&self) -> String {
        self.0.to_string()
    }
}

impl SharedKey for AddressKey {
    fn shared_key(&self) -> String {
        self.0.to_string()
    }
}

impl SharedKey for String {
    fn shared_key(&self) -> String {
        self.clone()
    }
}

impl SharedKey for (String, AddressKey) {
    /// The address first: it never holds `|`, so no two pairs are spelled alike.
    fn shared_key(&self) -> String {
        format!("{}|{}", self.1 .0, self.0)
    }
}

/// One budget per key of type `K`.
pub struct Budget<K> {
    /// Its name in the cluster's store.
    name: &'static str,
    rate: Rate,
    /// Per key, the instant at which its budget is full again.
    shards: Box<[Mutex<BoundedMap<K, Instant>>]>,
    hasher: std::collections::hash_map::RandomState,
    shared: Option<Arc<dyn SharedBudgets>>,
    /// For a budget checked against the cluster's behind each spend
    /// ([`Budget::checked_behind`]): per key, until when the cluster refused it.
    refused_until: Option<Arc<Mutex<BoundedMap<K, Instant>>>>,
}

/// A map of at most `2 × generation_max` keys, in two generations: when the recent one is
/// full, the older one is dropped and the recent one becomes the older. What was not
/// touched for a whole generation is forgotten: a cheap approximation of least recently used.
pub(crate) struct BoundedMap<K, V> {
    recent: HashMap<K, V>,
    older: HashMap<K, V>,
    generation_max: usize,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    pub(crate) fn new(keys_max: usize) -> BoundedMap<K, V> {
        BoundedMap {
            recent: HashMap::new(),
            older: HashMap::new(),
            generation_max: (keys_max / 2).max(1),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.recent.get(key).or_else(|| self.older.get(key))
    }

    pub(crate) fn insert(&mut self, key: &K, value: V) {
        // The common case, a key updated again within its generation: one lookup.
        if let Some(slot) = self.recent.get_mut(key) {
            *slot = value;
            return;
        }
        self.older.remove(key);
        if self.recent.len() >= self.generation_max {
            self.older = std::mem::take(&mut self.recent);
        }
        self.recent.insert(key.clone(), value);
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let recent = self.recent.remove(key);
        let older = self.older.remove(key);
        recent.or(older)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.recent.len() + self.older.len()
    }
}

impl<K: Hash + Eq + Clone> Budget<K> {
    /// A budget of this process alone.
    pub fn new(rate: Rate, keys_max: usize) -> Budget<K> {
        Budget::named("local", rate, keys_max, None)
    }

    /// A budget called `name`, also spent in the cluster's `shared` budgets if there are.
    pub fn named(
        name: &'static str,
        rate: Rate,
        keys_max: usize,
        shared: Option<Arc<dyn SharedBudgets>>,
    ) -> Budget<K> {
        Budget {
            name,
            rate,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(BoundedMap::new(keys_max / SHARDS)))
                .collect(),
            hasher: Default::default(),
            shared,
            refused_until: None,
        }
    }

    /// Makes a budget spent on a hot path (every send) check the cluster's behind each
    /// spend instead of before it: a spend this node allows goes ahead at once and is
    /// recorded in the cluster's store in the background, even beyond the budget (which
    /// then refills that much later); when the store answers that the key is over its
    /// budget, this node refuses the key until it is not. A send then waits for no round
    /// trip. A key spending through several nodes at once can get a few events beyond its
    /// budget (what those nodes allow while their answers are on the way, about one round
    /// trip's worth each), and pays them back from its later budget, so over time it gets
    /// its rate and no more.
    /// Without a cluster it changes nothing (a single node has no one to wait for).
    pub fn checked_behind(mut self) -> Budget<K> {
        if self.shared.is_some() {
            self.refused_until = Some(Arc::new(Mutex::new(BoundedMap::new(KEYS_MAX))));
        }
        self
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, BoundedMap<K, Instant>> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        lock(&self.shards[index])
    }

    /// The local half of [`Budget::take_n`] at a given time (tests pass their own clock).
    /// More events than the whole budget are never allowed; the answer is then the wait
    /// for a full budget.
    pub fn take_n_at(&self, key: &K, n: u32, now: Instant) -> Result<(), RetryAfter> {
        if n == 0 {
            return Ok(());
        }
        let mut shard = self.shard(key);
        let full_at = shard.get(key).map_or(now, |t| (*t).max(now));
        if n > self.rate.events {
            return Err(RetryAfter(full_at - now));
        }
        let after = full_at + self.rate.interval() * n;
        // Allowed while what is spent, counting this, fits in one period.
        let spent = after - now;
        if spent > self.rate.per {
            return Err(RetryAfter(spent - self.rate.per));
        }
        shard.insert(key, after);
        Ok(())
    }

    /// How long until `key` may spend one event; `None` if it may now. Spends nothing.
    #[cfg(test)]
    fn check_at(&self, key: &K, now: Instant) -> Option<RetryAfter> {
        let full_at = *self.shard(key).get(key)?;
        let spent = (full_at + self.rate.interval()).saturating_duration_since(now);
        (spent > self.rate.per).then(|| RetryAfter(spent - self.rate.per))
    }

    /// The local half of [`Budget::refund`].
    pub fn refund_at(&self, key: &K, now: Instant) {
        let mut shard = self.shard(key);
        let Some(&full_at) = shard.get(key) else {
            return;
        };
        match full_at.checked_sub(self.rate.interval()) {
            Some(earlier) if earlier > now => shard.insert(key, earlier),
            _ => {
                shard.remove(key);
            }
        }
    }

    /// Refills `key`'s budget in this process.
    fn forget(&self, key: &K) {
        self.shard(key).remove(key);
    }
}

impl<K: Hash + Eq + Clone + SharedKey> Budget<K> {
    fn shared_name(&self, key: &K) -> String {
        format!("{}:{}", self.name, key.shared_key())
    }

    /// Spends one event of `key`'s budget, or says how long until one is left.
    pub async fn take(&self, key: &K) -> Result<(), RetryAfter>
    where
        K: Send + 'static,
    {
        self.take_n(key, 1).await
    }

    /// Spends `n` events at once (all or nothing): here, then in the cluster's budgets
    /// (or, for a budget [`Budget::checked_behind`], here and then behind).
    pub async fn take_n(&self, key: &K, n: u32) -> Result<(), RetryAfter>
    where
        K: Send + 'static,
    {
        let now = Instant::now();
        if let Some(refused_until) = &self.refused_until {
            let until = lock(refused_until).get(key).copied();
            if let Some(until) = until.filter(|until| *until > now) {
                return Err(RetryAfter(until - now));
            }
        }
        self.take_n_at(key, n, now)?;
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        if let Some(refused_until) = &self.refused_until {
            let (shared, refused_until) = (shared.clone(), refused_until.clone());
            let (name, rate, key) = (self.shared_name(key), self.rate, key.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(SHARED_WAIT, shared.spend(&name, rate, n)).await {
                    Ok(Ok(None)) => {}
                    Ok(Ok(Some(over))) => {
                        lock(&refused_until).insert(&key, Instant::now() + over.0)
                    }
                    Ok(Err(err)) => unshared_warning(&err.to_string()),
                    Err(_) => unshared_warning("no answer in time"),
                }
            });
            return Ok(());
        }
        let answer = tokio::time::timeout(
            SHARED_WAIT,
            shared.take(&self.shared_name(key), self.rate, n),
        )
        .await;
        match answer {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(refused))) => {
                // Not spent in the cluster, so not spent here either.
                for _ in 0..n {
                    self.refund_at(key, now);
                }
                Err(refused)
            }
            Ok(Err(err)) => {
                unshared_warning(&err.to_string());
                Ok(())
            }
            Err(_) => {
                unshared_warning("no answer in time");
                Ok(())
            }
        }
    }

    /// Gives one event back (an attempt that turned out not to count).
    pub async fn refund(&self, key: &K) {
        self.refund_at(key, Instant::now());
        if let Some(shared) = &self.shared {
            let answer = tokio::time::timeout(
                SHARED_WAIT,
                shared.refund(&self.shared_name(key), self.rate),
            )
            .await;
            if !matches!(answer, Ok(Ok(()))) {
                unshared_warning("a refund was not recorded");
            }
        }
    }

    /// Refills `key`'s budget completely.
    pub async fn reset(&self, key: &K) {
        self.forget(key);
        if let Some(shared) = &self.shared {
            let answer =
                tokio::time::timeout(SHARED_WAIT, shared.reset(&self.shared_name(key))).await;
            if !matches!(answer, Ok(Ok(()))) {
                unshared_warning("a reset was not recorded");
            }
        }
    }
}

/// Every update is one insert or remove, so a poisoned map is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Says, at most every 10 s, that a node is deciding budgets alone: the cluster's store
/// did not answer (every spend would log it otherwise).
fn unshared_warning(why: &str) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            why,
            "the cluster's rate limits did not answer; this node decides alone"
        );
    }
}

/// The address a budget is kept for. An IPv4 address counts alone; an IPv6 address by its
/// /64 prefix, because one host or home is routinely given a whole /64 and could otherwise
/// use a fresh address for every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    pub fn of(address: IpAddr) -> AddressKey {
        match address {
            IpAddr::V4(_) => AddressKey(address),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    AddressKey(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

/// The client's address: the peer of the TCP connection, or, when that peer is one of the
/// configured `trusted_proxies`, the address that proxy appended to `X-Forwarded-For`.
/// A forwarded header from anyone else is ignored, since any client can send one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    pub fn key(&self) -> AddressKey {
        AddressKey::of(self.0)
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The listener puts each request's peer address in its extensions (listener.rs);
        // without it every client would share one budget, so fail loudly instead.
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            tracing::error!("the serve loop does not provide client addresses (ConnectInfo)");
            return Err(ApiError::internal());
        };
        Ok(ClientAddr(client_ip(
            peer.ip(),
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

/// The client behind a request from `peer`: `peer` itself, unless it is a trusted proxy,
/// in which case the last address in `X-Forwarded-For` (the one that proxy appended;
/// addresses before it were written by the client and prove nothing).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|a| a.trim().parse::<IpAddr>().ok())
        .map_or(peer, |a| a.to_canonical())
}

/// The rate limits of REST routes and of sends, built from the configuration once per
/// server. (The login throttle is [`crate::auth::LoginThrottle`], built on the same budgets.)
pub struct RateLimits {
    pub registrations: Budget<AddressKey>,
    pub friend_requests: Budget<UserId>,
    pub groups: Budget<UserId>,
    pub group_invites: Budget<UserId>,
    pub messages: Budget<UserId>,
}

impl RateLimits {
    /// The budgets of `limits`, also spent in the cluster's `shared` budgets if there are.
    pub fn new(
        limits: &crate::config::Limits,
        shared: Option<Arc<dyn SharedBudgets>>,
    ) -> RateLimits {
        RateLimits {
            registrations: Budget::named(
                "registrations",
                limits.registrations_per_address,
                KEYS_MAX,
                shared.clone(),
            ),
            friend_requests: Budget::named(
                "friend_requests",
                limits.friend_requests_per_user,
                KEYS_MAX,
                shared.clone(),
            ),
            groups: Budget::named("groups", limits.groups_per_user, KEYS_MAX, shared.clone()),
            group_invites: Budget::named(
                "group_invites",
                limits.group_invites_per_user,
                KEYS_MAX,
                shared.clone(),
            ),
            // Spent on every send: the cluster's answer must not delay the ack.
            messages: Budget::named("messages", limits.messages_per_user, KEYS_MAX, shared)
                .checked_behind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_budget_allows_its_burst_then_one_event_per_interval() {
        let budget = Budget::new(Rate::new(3, secs(30)), KEYS_MAX);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(budget.take_n_at(&"k", 1, t0), Ok(()));
        }
        assert_eq!(budget.take_n_at(&"k", 1, t0), Err(RetryAfter(secs(10))));
        assert_eq!(budget.check_at(&"k", t0), Some(RetryAfter(secs(10))));
        // Other keys have budgets of their own.
        assert_eq!(budget.take_n_at(&"other", 1, t0), Ok(()));
        assert_eq!(
            budget.take_n_at(&"k", 1, t0 + secs(4)),
            Err(RetryAfter(secs(6)))
        );
        assert_eq!(budget.check_at(&"k", t0 + secs(10)), None);
        assert_eq!(budget.take_n_at(&"k", 1, t0 + secs(10)), Ok(()));
        assert!(budget.take_n_at(&"k", 1, t0 + secs(10)).is_err());
        // A whole period later the budget is full again.
        let later = t0 + secs(40);
        for _ in 0..3 {
            assert_eq!(budget.take_n_at(&"k", 1, later), Ok(()));
        }
        assert!(budget.take_n_at(&"k", 1, later).is_err());
    }

    #[test]
    fn several_events_are_spent_all_or_nothing() {
        let budget = Budget::new(Rate::new(10, secs(10)), KEYS_MAX);
        let t0 = Instant::now();
        assert_eq!(budget.take_n_at(&1, 7, t0), Ok(()));
        assert_eq!(budget.take_n_at(&1, 4, t0), Err(RetryAfter(secs(1))));
        assert_eq!(budget.take_n_at(&1, 3, t0), Ok(()));
        // More than a whole budget never fits.
        assert!(budget.take_n_at(&2, 11, t0).is_err());
        assert_eq!(budget.take_n_at(&2, 10, t0), Ok(()));
    }

    #[test]
    fn refunds_and_resets_give_budget_back() {
        let budget = Budget::new(Rate::new(2, secs(60)), KEYS_MAX);
        let t0 = Instant::now();
        budget.take_n_at(&"k", 2, t0).unwrap();
        assert!(budget.check_at(&"k", t0).is_some());
        budget.refund_at(&"k", t0);
        assert_eq!(budget.check_at(&"k", t0), None);
        budget.take_n_at(&"k", 1, t0).unwrap();
        budget.forget(&"k");
        assert_eq!(budget.take_n_at(&"k", 2, t0), Ok(()));
        // A refund never makes more than a full budget.
        budget.refund_at(&"k", t0);
        budget.refund_at(&"k", t0);
        budget.refund_at(&"k", t0);
        assert_eq!(budget.take_n_at(&"k", 2, t0), Ok(()));
        assert!(budget.take_n_at(&"k", 1, t0).is_err());
    }

    #[test]
    fn tracked_keys_are_bounded_and_the_least_recent_are_forgotten() {
        let keys_max = SHARDS * 4;
        let budget = Budget::new(Rate::new(1, secs(3600)), keys_max);
        let t0 = Instant::now();
        budget.take_n_at(&0u32, 1, t0).unwrap();
        for key in 1..10_000u32 {
            budget.take_n_at(&key, 1, t0).unwrap();
        }
        let tracked: usize = budget.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(tracked <= keys_max, "{tracked} keys tracked");
        // The first key was forgotten long ago: its budget is full again.
        assert_eq!(budget.take_n_at(&0u32, 1, t0), Ok(()));
        // The most recent one is still spent.
        assert!(budget.take_n_at(&9_999u32, 1, t0).is_err());
    }

    #[test]
    fn ipv6_addresses_share_a_budget_per_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddressKey::of(a), AddressKey::of(b));
        assert_ne!(AddressKey::of(a), AddressKey::of(c));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(AddressKey::of(v4), AddressKey::of(mapped));
        assert_ne!(
            AddressKey::of(v4),
            AddressKey::of("192.0.2.2".parse().unwrap())
        );
    }

    #[test]
    fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.1".parse().unwrap(),
        );
        headers.append("x-forwarded-for", "192.0.2.7".parse().unwrap());
        assert_eq!(client_ip(proxy, &headers, &[]), proxy, "untrusted peer");
        assert_eq!(
            client_ip(proxy, &headers, &[proxy]),
            client,
            "the address the proxy appended, not the ones the client wrote"
        );
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_ip(mapped, &headers, &[proxy]), client);
        assert_eq!(
            client_ip(proxy, &HeaderMap::new(), &[proxy]),
            proxy,
            "no header: the proxy itself"
        );
        let mut garbled = HeaderMap::new();
        garbled.append("x-forwarded-for", "192.0.2.7, nonsense".parse().unwrap());
        assert_eq!(client_ip(proxy, &garbled, &[proxy]), proxy);
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_secs(secs(90)), 90);
    }
}
