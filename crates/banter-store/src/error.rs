//! The store's error vocabulary: domain refusals the caller can act on, and backend failures.

use thiserror::Error;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The thing does not exist, or the caller may not see it.
    #[error("not found")]
    NotFound,
    #[error("username taken")]
    UsernameTaken,
    /// Seeding users in bulk: these usernames (as given) exist already in some letter
    /// case, or appear more than once in the batch.
    #[error("usernames taken: {0:?}")]
    UsernamesTaken(Vec<String>),
    /// The current state forbids the change; the text says why, for the user.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller's role does not allow it.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A value breaks a rule that only the store can check (e.g. befriending oneself).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("blocked")]
    Blocked,
    #[error("not friends")]
    NotFriends,
    #[error("recall window expired")]
    RecallWindowExpired,
    /// The user's uploads would take more than their storage quota.
    #[error("upload quota exceeded")]
    QuotaExceeded,
    /// The database URL or options are unusable.
    #[error("configuration: {0}")]
    Config(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed; the server logs it and reports `internal`.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}
