//! Turning rows into protocol values and back: the backend-neutral helpers of
//! [`crate::row`], which the PostgreSQL and MySQL backends share, under the names this
//! backend's modules use.

pub(crate) use crate::row::{
    count, direct_key, friend_request_at, friend_request_sql, message_at, message_sql, now_ms,
    profile_at, role_at, status_str, username_key, Body,
};
