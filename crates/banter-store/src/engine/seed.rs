//! Seeding in bulk, for the admin API: many users with their sessions, many friendships
//! with their direct conversations. Each runs inside the caller's one write transaction
//! with multi-row inserts, and checks everything before it writes anything.

use std::collections::{HashMap, HashSet};

use banter_protocol::model::Role;
use banter_protocol::{ConversationId, UserId};

use crate::row::{direct_key, username_key, NewMember};
use crate::sql::{ConversationSql, SeedSql};
use crate::{NewSession, SeedUser, StoreError, StoreResult, UserRecord};

/// How many offending names or ids an error message lists before it says "and N more".
const LISTED_MAX: usize = 10;

/// `items` joined with ", ", at most [`LISTED_MAX`] of them.
fn listed(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(LISTED_MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > LISTED_MAX {
        text.push_str(&format!(" and {} more", items.len() - LISTED_MAX));
    }
    text
}

/// The username keys of `users`, in order; a key that appears twice is refused here,
/// before any transaction, with the repeats named as given.
pub(super) fn check_usernames(users: &[SeedUser]) -> StoreResult<Vec<String>> {
    let keys: Vec<String> = users.iter().map(|u| username_key(&u.username)).collect();
    let mut seen = HashSet::with_capacity(keys.len());
    let repeated: Vec<String> = users
        .iter()
        .zip(&keys)
        .filter(|(_, key)| !seen.insert(key.as_str()))
        .map(|(user, _)| user.username.clone())
        .collect();
    if repeated.is_empty() {
        Ok(keys)
    } else {
        Err(StoreError::UsernamesTaken(repeated))
    }
}

/// Refuses a pair of one user, before any transaction.
pub(super) fn check_pairs(pairs: &[[UserId; 2]]) -> StoreResult<()> {
    match pairs.iter().position(|[a, b]| a == b) {
        None => Ok(()),
        Some(at) => Err(StoreError::InvalidInput(format!(
            "pair {at} names user {} twice; a friendship needs two people",
            pairs[at][0]
        ))),
    }
}

/// `InvalidInput` naming the ids in `ids` that are not users.
pub(super) async fn ensure_users_exist<S: SeedSql>(
    conn: &mut S::Conn,
    ids: &[UserId],
) -> StoreResult<()> {
    let mut wanted = ids.to_vec();
    wanted.sort();
    wanted.dedup();
    let found: HashSet<UserId> = S::existing_user_ids(conn, &wanted)
        .await?
        .into_iter()
        .collect();
    let missing: Vec<String> = wanted
        .iter()
        .filter(|id| !found.contains(id))
        .map(|id| id.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "no user has the id {}",
            listed(&missing)
        )))
    }
}

/// See [`crate::Store::seed_users`]; `keys` are the users' username keys, in order.
pub(super) async fn users<S: SeedSql>(
    conn: &mut S::Conn,
    password_hash: &str,
    users: &[SeedUser],
    keys: &[String],
    now_ms: i64,
) -> StoreResult<Vec<UserRecord>> {
    let taken: HashSet<String> = S::user_ids_by_keys(conn, keys)
        .await?
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    if !taken.is_empty() {
        let names: Vec<String> = users
            .iter()
            .zip(keys)
            .filter(|(_, key)| taken.contains(*key))
            .map(|(user, _)| user.username.clone())
            .collect();
        return Err(StoreError::UsernamesTaken(names));
    }

    S::insert_users(conn, users, password_hash, now_ms).await?;
    // Ids are read back by key: no backend promises the order of a multi-row insert's ids.
    let ids: HashMap<String, UserId> = S::user_ids_by_keys(conn, keys).await?.into_iter().collect();
    let mut profiles = Vec::with_capacity(users.len());
    let mut sessions = Vec::with_capacity(users.len());
    for (user, key) in users.iter().zip(keys) {
        let id = *ids.get(key).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Protocol(format!(
                "the user {:?} just inserted is missing",
                user.username
            )))
        })?;
        profiles.push(UserRecord {
            id,
            username: user.username.clone(),
            nickname: user.nickname.clone(),
            avatar_url: None,
            signature: None,
        });
        sessions.push(NewSession {
            user_id: id,
            token_hash: user.token_hash.clone(),
            device_name: user.device_name.clone(),
            expires_at_ms: user.session_expires_at_ms,
        });
    }
    S::insert_sessions(conn, &sessions, now_ms).await?;
    Ok(profiles)
}

/// See [`crate::Store::seed_friendships`]. Direct conversations that exist are reused and
/// the others created, with the same key and members `open_direct` gives them.
pub(super) async fn friendships<S: SeedSql + ConversationSql>(
    conn: &mut S::Conn,
    pairs: &[[UserId; 2]],
    now_ms: i64,
) -> StoreResult<Vec<ConversationId>> {
    let everyone: Vec<UserId> = pairs.iter().flatten().copied().collect();
    ensure_users_exist::<S>(conn, &everyone).await?;

    // One entry per unordered pair, whichever way round and however often it is named.
    let mut unique: Vec<(UserId, UserId)> = pairs
        .iter()
        .map(|&[a, b]| if a < b { (a, b) } else { (b, a) })
        .collect();
    unique.sort();
    unique.dedup();
    S::insert_friendships(conn, &unique, now_ms).await?;

    let keys: Vec<String> = unique.iter().map(|&(a, b)| direct_key(a, b)).collect();
    let mut conversations: HashMap<String, ConversationId> =
        S::direct_conversations_by_keys(conn, &keys)
            .await?
            .into_iter()
            .collect();
    let missing: Vec<(String, (UserId, UserId))> = keys
        .iter()
        .zip(&unique)
        .filter(|(key, _)| !conversations.contains_key(*key))
        .map(|(key, pair)| (key.clone(), *pair))
        .collect();
    if !missing.is_empty() {
        let missing_keys: Vec<String> = missing.iter().map(|(key, _)| key.clone()).collect();
        S::insert_direct_conversations(conn, &missing_keys, now_ms).await?;
        let created: HashMap<String, ConversationId> =
            S::direct_conversations_by_keys(conn, &missing_keys)
                .await?
                .into_iter()
                .collect();
        let mut members = Vec::with_capacity(2 * missing.len());
        for (key, (a, b)) in &missing {
            let conversation = *created.get(key).ok_or_else(|| {
                StoreError::Database(sqlx::Error::Protocol(format!(
                    "the direct conversation {key} just inserted is missing"
                )))
            })?;
            for user in [*a, *b] {
                members.push(NewMember {
                    conversation,
                    user,
                    role: Role::Member,
                    read_seq: 0,
                });
            }
        }
        S::insert_members(conn, &members, now_ms).await?;
        conversations.extend(created);
    }

    pairs
        .iter()
        .map(|&[a, b]| {
            conversations
                .get(&direct_key(a, b))
                .copied()
                .ok_or_else(|| {
                    StoreError::Database(sqlx::Error::Protocol(
                        "a direct conversation is missing".into(),
                    ))
                })
        })
        .collect()
}
