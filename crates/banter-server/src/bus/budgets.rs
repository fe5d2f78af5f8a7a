//! The cluster's rate limits and login throttles (`ratelimit::SharedBudgets`): every
//! node spends the same budgets, so a user or an address gets each budget once, however
//! many nodes their requests reach. Each budget key keeps one instant, as in the node's
//! own `ratelimit::Budget` (the generic cell rate algorithm: when the key's budget is
//! full again), in microseconds since the Unix epoch.
//!
//! - On Redis: `<namespace>:budget:<budget>:<key>`, changed by one script per operation,
//!   on Redis's clock, expiring when the budget is full again. Remembered members: a
//!   sorted set per key, scored by when each was seen.
//! - On NATS: key `<budget>.<key in hex>` of the bucket `<namespace>-budgets`, changed by
//!   compare-and-set on the node's clock (the nodes' clocks must agree, as NTP keeps
//!   them: a node ahead by a second sees budgets a second fuller); values expire with
//!   the bucket's `max_age`, the longest budget period. Remembered members: a line each,
//!   `<member> <ms>`, in one value per key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;

use super::kv::{self, Write};
use crate::ratelimit::{Rate, RetryAfter, SharedBudgets};

/// Spends `ARGV[3]` events of a budget of `ARGV[4]` per `ARGV[2]` µs (one per `ARGV[1]`
/// µs). Returns -1 when allowed, else the µs to wait.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local stored = redis.call('GET', KEYS[1])
local full_at = now
if stored then full_at = math.max(tonumber(stored), now) end
if n > tonumber(ARGV[4]) then return full_at - now end
local after = full_at + interval * n
local spent = after - now
if spent > period then return spent - period end
redis.call('SET', KEYS[1], string.format('%d', after), 'PX', math.ceil(spent / 1000) + 1)
return -1";

/// Spends `ARGV[3]` events that happened already (one per `ARGV[1]` µs), even beyond the
/// budget of `ARGV[2]` µs. Returns how many µs the budget is over (≤ 0: within).
const SPEND: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stored = redis.call('GET', KEYS[1])
local full_at = now
if stored then full_at = math.max(tonumber(stored), now) end
local after = full_at + tonumber(ARGV[1]) * tonumber(ARGV[3])
redis.call('SET', KEYS[1], string.format('%d', after), 'PX', math.ceil((after - now) / 1000) + 1)
return after - now - tonumber(ARGV[2])";

/// Gives back one event (`ARGV[1]` µs).
const REFUND: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local earlier = tonumber(stored) - tonumber(ARGV[1])
if earlier > now then
  redis.call('SET', KEYS[1], string.format('%d', earlier), 'PX', math.ceil((earlier - now) / 1000) + 1)
else
  redis.call('DEL', KEYS[1])
end
return 0";

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn interval_micros(rate: Rate) -> i64 {
    micros(rate.per / rate.events)
}

pub struct RedisBudgets {
    redis: redis::aio::ConnectionManager,
    prefix: String,
    take: redis::Script,
    spend: redis::Script,
    refund: redis::Script,
}

impl RedisBudgets {
    pub fn new(redis: redis::aio::ConnectionManager, namespace: &str) -> RedisBudgets {
        RedisBudgets {
            redis,
            prefix: format!("{namespace}:budget:"),
            take: redis::Script::new(TAKE),
            spend: redis::Script::new(SPEND),
            refund: redis::Script::new(REFUND),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl SharedBudgets for RedisBudgets {
    async fn take(&self, key: &str, rate: Rate, n: u32) -> anyhow::Result<Result<(), RetryAfter>> {
        let mut redis = self.redis.clone();
        let wait: i64 = self
            .take
            .key(self.key(key))
            .arg(interval_micros(rate))
            .arg(micros(rate.per))
            .arg(n)
            .arg(rate.events)
            .invoke_async(&mut redis)
            .await?;
        Ok(match u64::try_from(wait) {
            Ok(wait) => Err(RetryAfter(Duration::from_micros(wait))),
            Err(_) => Ok(()),
        })
    }

    async fn spend(&self, key: &str, rate: Rate, n: u32) -> anyhow::Result<Option<RetryAfter>> {
        let mut redis = self.redis.clone();
        let over: i64 = self
            .spend
            .key(self.key(key))
            .arg(interval_micros(rate))
            .arg(micros(rate.per))
            .arg(n)
            .invoke_async(&mut redis)
            .await?;
        Ok((over > 0).then(|| wait(over)))
    }

    async fn refund(&self, key: &str, rate: Rate) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        let _: i64 = self
            .refund
            .key(self.key(key))
            .arg(interval_micros(rate))
            .invoke_async(&mut redis)
            .await?;
        Ok(())
    }

    async fn reset(&self, key: &str) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut redis)
            .await?;
        Ok(())
    }

    async fn remember(
        &self,
        key: &str,
        member: &str,
        keep: usize,
        ttl: Duration,
    ) -> anyhow::Result<()> {
        let key = self.key(key);
        let now = now_millis();
        let mut redis = self.redis.clone();
        redis::pipe()
            .atomic()
            .cmd("ZADD")
            .arg(&key)
            .arg(now)
            .arg(member)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now - millis(ttl))
            .ignore()
            .cmd("ZREMRANGEBYRANK")
            .arg(&key)
            .arg(0)
            .arg(-(keep as i64) - 1)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(ttl))
            .ignore()
            .query_async::<()>(&mut redis)
            .await?;
        Ok(())
    }

    async fn remembers(&self, key: &str, member: &str, ttl: Duration) -> anyhow::Result<bool> {
        let mut redis = self.redis.clone();
        let seen: Option<i64> = redis::cmd("ZSCORE")
            .arg(self.key(key))
            .arg(member)
            .query_async(&mut redis)
            .await?;
        Ok(seen.is_some_and(|at| now_millis() - at < millis(ttl)))
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn now_millis() -> i64 {
    now_micros() / 1000
}

/// Remembered members in a NATS value: `<member> <ms>` per line, oldest first.
fn parse_members(value: Option<&[u8]>) -> Vec<(String, i64)> {
    let text = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or("");
    text.lines()
        .filter_map(|line| {
            let (member, at) = line.rsplit_once(' ')?;
            Some((member.to_owned(), at.parse().ok()?))
        })
        .collect()
}

fn members_value(members: &[(String, i64)]) -> Bytes {
    let mut text = String::new();
    for (member, at) in members {
        text.push_str(&format!("{member} {at}\n"));
    }
    Bytes::from(text)
}

pub struct NatsBudgets {
    bucket: kv::Bucket,
}

impl NatsBudgets {
    /// The bucket's name for `namespace`.
    pub fn bucket_name(namespace: &str) -> String {
        format!("{namespace}-budgets")
    }

    /// Opens the budgets' bucket; `period_max` is the longest period of any budget (what
    /// a value must outlive).
    pub async fn open(
        client: async_nats::Client,
        namespace: &str,
        period_max: Duration,
    ) -> anyhow::Result<NatsBudgets> {
        let bucket = kv::Bucket::open(client, Self::bucket_name(namespace), period_max).await?;
        Ok(NatsBudgets { bucket })
    }

    /// `budget:key` as a key the bucket accepts: the budget's name, then the key in hex.
    fn key(key: &str) -> String {
        let (budget, rest) = key.split_once(':').unwrap_or(("budget", key));
        let mut out = String::with_capacity(budget.len() + 1 + rest.len() * 2);
        out.push_str(budget);
        out.push('.');
        for byte in rest.bytes() {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, micros)
}

fn parse_instant(value: Option<&[u8]>) -> Option<i64> {
    std::str::from_utf8(value?).ok()?.parse().ok()
}

fn instant_value(instant: i64) -> Bytes {
    Bytes::from(instant.to_string())
}

#[async_trait]
impl SharedBudgets for NatsBudgets {
    async fn take(&self, key: &str, rate: Rate, n: u32) -> anyhow::Result<Result<(), RetryAfter>> {
        let interval = interval_micros(rate);
        let period = micros(rate.per);
        kv::change(&self.bucket, &Self::key(key), |stored| {
            let now = now_micros();
            let full_at = parse_instant(stored).map_or(now, |t| t.max(now));
            if n > rate.events {
                return (Write::Keep, Err(wait(full_at - now)));
            }
            let after = full_at + interval * i64::from(n);
            let spent = after - now;
            if spent > period {
                return (Write::Keep, Err(wait(spent - period)));
            }
            (Write::Put(instant_value(after)), Ok(()))
        })
        .await
    }

    async fn spend(&self, key: &str, rate: Rate, n: u32) -> anyhow::Result<Option<RetryAfter>> {
        let interval = interval_micros(rate);
        let period = micros(rate.per);
        kv::change(&self.bucket, &Self::key(key), |stored| {
            let now = now_micros();
            let full_at = parse_instant(stored).map_or(now, |t| t.max(now));
            let after = full_at + interval * i64::from(n);
            let over = after - now - period;
            (
                Write::Put(instant_value(after)),
                (over > 0).then(|| wait(over)),
            )
        })
        .await
    }

    async fn refund(&self, key: &str, rate: Rate) -> anyhow::Result<()> {
        let interval = interval_micros(rate);
        kv::change(&self.bucket, &Self::key(key), |stored| {
            let now = now_micros();
            match parse_instant(stored) {
                Some(full_at) if full_at - interval > now => {
                    (Write::Put(instant_value(full_at - interval)), ())
                }
                _ => (Write::Delete, ()),
            }
        })
        .await
    }

    async fn reset(&self, key: &str) -> anyhow::Result<()> {
        kv::change(&self.bucket, &Self::key(key), |_| (Write::Delete, ())).await
    }

    async fn remember(
        &self,
        key: &str,
        member: &str,
        keep: usize,
        ttl: Duration,
    ) -> anyhow::Result<()> {
        kv::change(&self.bucket, &Self::key(key), |stored| {
            let now = now_millis();
            let mut members: Vec<(String, i64)> = parse_members(stored)
                .into_iter()
                .filter(|(m, at)| m != member && now - at < millis(ttl))
                .collect();
            members.push((member.to_owned(), now));
            if members.len() > keep {
                members.drain(..members.len() - keep);
            }
            (Write::Put(members_value(&members)), ())
        })
        .await
    }

    async fn remembers(&self, key: &str, member: &str, ttl: Duration) -> anyhow::Result<bool> {
        let stored = self.bucket.read(&Self::key(key)).await?;
        let now = now_millis();
        Ok(parse_members(stored.value.as_deref())
            .iter()
            .any(|(m, at)| m == member && now - at < millis(ttl)))
    }
}

fn wait(micros: i64) -> RetryAfter {
    RetryAfter(Duration::from_micros(u64::try_from(micros).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_keys_name_the_budget_and_spell_the_key_in_hex() {
        assert_eq!(NatsBudgets::key("messages:42"), "messages.3432");
        assert_eq!(
            NatsBudgets::key("login_failures_account_address:::1|bob"),
            "login_failures_account_address.3a3a317c626f62"
        );
    }
}
