//! The store's queries, written once where the backends agree.
//!
//! A query that reads the same on SQLite, PostgreSQL and MySQL is one default method of an
//! area trait ([`AccountSql`], [`SocialSql`], [`ConversationSql`], [`StreamSql`],
//! [`MediaSql`], and
//! [`SeedSql`] for seeding in bulk), its SQL text written in one spelling: `?`
//! placeholders, `FOR UPDATE` where it locks a row, `RETURNING id` where it inserts one.
//! Each backend's [`Dialect`] says how its database spells those ([`Flavor::render`], done
//! once per statement and kept) and how to run a statement; a backend overrides a query
//! only where its SQL must differ: upserts, `RETURNING` of anything but an id, a lock
//! that MySQL takes differently, and the tuned multi-row statements of the send batch and
//! of seeding whose plans `docs/storage.md` records.
//!
//! Methods taking `&self` run one statement on a pooled connection. Associated functions
//! taking a connection run inside a transaction the engine opened with
//! [`Dialect::begin_write`] or [`Dialect::begin_read`].

mod account;
mod conversation;
mod media;
mod seed;
mod social;
mod stream;

use std::borrow::Cow;
use std::ops::DerefMut;
use std::sync::OnceLock;

use async_trait::async_trait;
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UserId};

pub use account::AccountSql;
pub use conversation::ConversationSql;
pub use media::MediaSql;
pub use seed::SeedSql;
pub use social::SocialSql;
pub use stream::{Seek, StreamSql};

use crate::row::Columns;
use crate::{Appended, SendPolicy, SessionId, StoreResult, StreamAppend};

/// Every query the engine runs, by area. Implemented for each backend's dialect by
/// implementing the five area traits (mostly empty: their defaults hold the shared SQL).
pub trait Sql: AccountSql + SocialSql + ConversationSql + StreamSql + MediaSql + SeedSql {}

impl<S: AccountSql + SocialSql + ConversationSql + StreamSql + MediaSql + SeedSql> Sql for S {}

/// Which database a statement's text is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Sqlite = 0,
    Postgres = 1,
    MySql = 2,
}

/// How many flavors there are: the number of rendered texts a [`Statement`] keeps.
const FLAVORS: usize = 3;

/// The row lock of the shared spelling, as the shared SQL writes it.
const FOR_UPDATE: &str = " FOR UPDATE";
/// The end of the shared spelling of an insert that reports the new row's id.
const RETURNING_ID: &str = " RETURNING id";
/// The shared spelling of an insert that leaves a row with the same key as it is.
const ON_CONFLICT_DO_NOTHING: &str = " ON CONFLICT DO NOTHING";

impl Flavor {
    /// The shared spelling in this database's dialect:
    ///
    /// - SQLite takes no row locks (its write transaction holds the database lock from
    ///   `BEGIN IMMEDIATE`), so `FOR UPDATE` is dropped;
    /// - PostgreSQL numbers its placeholders (`$1`, `$2`, …) and locks with
    ///   `FOR NO KEY UPDATE`, which the key-share locks of foreign-key checks do not wait
    ///   for (inserting a message whose sender row is locked goes ahead);
    /// - MySQL has no `RETURNING`: an insert's `RETURNING id` is dropped and the id read
    ///   from `LAST_INSERT_ID()` instead (see [`Dialect::insert`]). Nor has it `ON
    ///   CONFLICT`: `ON CONFLICT DO NOTHING` becomes `ON DUPLICATE KEY UPDATE c = c` for the
    ///   last column `c` of the insert's column list, which leaves the existing row as it
    ///   is (unlike `INSERT IGNORE`, which would also turn other errors into warnings).
    ///
    /// A text that needs no change is returned as it is, without a copy.
    pub fn render(self, shared: &str) -> Cow<'_, str> {
        match self {
            Flavor::Sqlite if shared.contains(FOR_UPDATE) => {
                Cow::Owned(shared.replace(FOR_UPDATE, ""))
            }
            Flavor::Sqlite => Cow::Borrowed(shared),
            Flavor::Postgres => {
                Cow::Owned(numbered(&shared.replace(FOR_UPDATE, " FOR NO KEY UPDATE")))
            }
            Flavor::MySql => {
                let text = shared.strip_suffix(RETURNING_ID).unwrap_or(shared);
                debug_assert!(
                    !text.contains("RETURNING"),
                    "MySQL has no RETURNING; the backend must override this query: {text}"
                );
                match text.strip_suffix(ON_CONFLICT_DO_NOTHING) {
                    Some(insert) => {
                        let column = last_inserted_column(insert);
                        Cow::Owned(format!(
                            "{insert} ON DUPLICATE KEY UPDATE {column} = {column}"
                        ))
                    }
                    None => Cow::Borrowed(text),
                }
            }
        }
    }
}

/// The last column named in an `INSERT INTO t (a, b, c) …`'s column list: `c`.
fn last_inserted_column(insert: &str) -> &str {
    let list = insert
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(list, _)| list);
    list.and_then(|list| list.rsplit(',').next())
        .map(str::trim)
        .expect("an INSERT with ON CONFLICT names its columns")
}

/// `VALUES` and `rows` copies of `row`, one row's `(…)` in the shared spelling: the text of
/// a multi-row insert of one chunk.
pub(crate) fn values(row: &str, rows: usize) -> String {
    let mut text = String::with_capacity(7 + rows * (row.len() + 2));
    text.push_str("VALUES ");
    for at in 0..rows {
        if at > 0 {
            text.push_str(", ");
        }
        text.push_str(row);
    }
    text
}

/// `(?, ?, …)` with `n` placeholders: an `IN` list.
pub(crate) fn in_list(n: usize) -> String {
    let mut text = String::with_capacity(2 + 3 * n);
    text.push('(');
    for at in 0..n {
        text.push_str(if at == 0 { "?" } else { ", ?" });
    }
    text.push(')');
    text
}

/// `?` placeholders numbered `$1`, `$2`, … in order; a `?` inside a quoted literal stays.
fn numbered(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut quoted = false;
    let mut next = 1;
    for c in text.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push('$');
                out.push_str(&next.to_string());
                next += 1;
            }
            _ => out.push(c),
        }
    }
    out
}

/// One statement's SQL in the shared spelling, rendered for each flavor the first time it
/// runs there and kept for the life of the process. Declared with [`sql!`] as a `static`
/// at the query's one call site.
pub struct Statement {
    shared: &'static str,
    rendered: [OnceLock<String>; FLAVORS],
}

impl Statement {
    pub const fn new(shared: &'static str) -> Statement {
        Statement {
            shared,
            rendered: [const { OnceLock::new() }; FLAVORS],
        }
    }

    /// The text to send to a database of `flavor`.
    pub fn text(&'static self, flavor: Flavor) -> &'static str {
        self.rendered[flavor as usize].get_or_init(|| flavor.render(self.shared).into_owned())
    }
}

/// A `&'static` [`Statement`] of the given shared SQL text.
macro_rules! sql {
    ($text:expr) => {{
        static STATEMENT: $crate::sql::Statement = $crate::sql::Statement::new($text);
        &STATEMENT
    }};
}
pub(crate) use sql;

/// One bound parameter of a shared statement: the few types the store binds.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    Text(&'a str),
    OptText(Option<&'a str>),
    Bytes(&'a [u8]),
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(value: Option<i64>) -> Self {
        Arg::OptInt(value)
    }
}

impl From<bool> for Arg<'_> {
    fn from(value: bool) -> Self {
        Arg::Bool(value)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Arg::Text(value)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(value: &'a String) -> Self {
        Arg::Text(value)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Arg::OptText(value)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(value: &'a [u8]) -> Self {
        Arg::Bytes(value)
    }
}

/// Ids bind as the integers they wrap.
macro_rules! id_args {
    ($($id:ty),*) => {
        $(impl From<$id> for Arg<'_> {
            fn from(id: $id) -> Self {
                Arg::Int(id.0)
            }
        })*
    };
}
id_args!(
    UserId,
    ConversationId,
    MessageId,
    FriendRequestId,
    SessionId
);

/// The bound parameters of a statement, in placeholder order: `args![user, key]`.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        &[$($crate::sql::Arg::from($arg)),*]
    };
}
pub(crate) use args;

/// How a backend runs one statement of shared SQL. Implemented by [`statements_on!`], the
/// same for every backend but for the types.
#[async_trait]
pub trait Statements: Send + Sync + 'static {
    /// The connection statements run on.
    type Conn: Send;
    /// A row of results, decoded through [`Columns`].
    type Row: Columns + Send + Sync;
    /// How this backend spells the shared SQL.
    const FLAVOR: Flavor;

    async fn fetch_all(
        conn: &mut Self::Conn,
        statement: &'static Statement,
        args: &[Arg<'_>],
    ) -> Result<Vec<Self::Row>, sqlx::Error>;
    async fn fetch_optional(
        conn: &mut Self::Conn,
        statement: &'static Statement,
        args: &[Arg<'_>],
    ) -> Result<Option<Self::Row>, sqlx::Error>;
    /// Runs the statement; returns how many rows it changed.
    async fn execute(
        conn: &mut Self::Conn,
        statement: &'static Statement,
        args: &[Arg<'_>],
    ) -> Result<u64, sqlx::Error>;
    /// [`Statements::fetch_all`] of a text built for one call (a multi-row statement of
    /// one chunk), rendered each time and not kept prepared on the connection.
    async fn fetch_all_built(
        conn: &mut Self::Conn,
        shared: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<Self::Row>, sqlx::Error>;
    /// [`Statements::execute`] of a text built for one call.
    async fn execute_built(
        conn: &mut Self::Conn,
        shared: &str,
        args: &[Arg<'_>],
    ) -> Result<u64, sqlx::Error>;

    /// The one row of the statement; `RowNotFound` if there is none.
    async fn fetch_one(
        conn: &mut Self::Conn,
        statement: &'static Statement,
        args: &[Arg<'_>],
    ) -> Result<Self::Row, sqlx::Error> {
        Self::fetch_optional(conn, statement, args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }
}

/// Implements [`Statements`] for `$dialect` on sqlx's `$db`, and defines `bind`, which binds
/// [`Arg`]s to a query of that backend (for the backend's own overrides).
macro_rules! statements_on {
    ($dialect:ty, $db:ty, $flavor:expr) => {
        /// Binds `args`, in order, to `query`.
        fn bind<'q>(
            mut query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            args: &[$crate::sql::Arg<'q>],
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            use $crate::sql::Arg;
            for arg in args {
                query = match *arg {
                    Arg::Int(value) => query.bind(value),
                    Arg::OptInt(value) => query.bind(value),
                    Arg::Bool(value) => query.bind(value),
                    Arg::Text(value) => query.bind(value),
                    Arg::OptText(value) => query.bind(value),
                    Arg::Bytes(value) => query.bind(value),
                };
            }
            query
        }

        #[async_trait::async_trait]
        impl $crate::sql::Statements for $dialect {
            type Conn = <$db as sqlx::Database>::Connection;
            type Row = <$db as sqlx::Database>::Row;
            const FLAVOR: $crate::sql::Flavor = $flavor;

            async fn fetch_all(
                conn: &mut Self::Conn,
                statement: &'static $crate::sql::Statement,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<Vec<Self::Row>, sqlx::Error> {
                bind(sqlx::query(statement.text(Self::FLAVOR)), args)
                    .fetch_all(conn)
                    .await
            }

            async fn fetch_optional(
                conn: &mut Self::Conn,
                statement: &'static $crate::sql::Statement,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<Option<Self::Row>, sqlx::Error> {
                bind(sqlx::query(statement.text(Self::FLAVOR)), args)
                    .fetch_optional(conn)
                    .await
            }

            async fn execute(
                conn: &mut Self::Conn,
                statement: &'static $crate::sql::Statement,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<u64, sqlx::Error> {
                Ok(bind(sqlx::query(statement.text(Self::FLAVOR)), args)
                    .execute(conn)
                    .await?
                    .rows_affected())
            }

            async fn fetch_all_built(
                conn: &mut Self::Conn,
                shared: &str,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<Vec<Self::Row>, sqlx::Error> {
                let text = Self::FLAVOR.render(shared);
                bind(sqlx::query(&text), args)
                    .persistent(false)
                    .fetch_all(conn)
                    .await
            }

            async fn execute_built(
                conn: &mut Self::Conn,
                shared: &str,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<u64, sqlx::Error> {
                let text = Self::FLAVOR.render(shared);
                Ok(bind(sqlx::query(&text), args)
                    .persistent(false)
                    .execute(conn)
                    .await?
                    .rows_affected())
            }
        }
    };
}
pub(crate) use statements_on;

/// A backend: its transactions, its pool, and how it learns an inserted row's id.
#[async_trait]
pub trait Dialect: Statements {
    /// A transaction, which derefs to its connection.
    type Tx: DerefMut<Target = Self::Conn> + Send;
    /// A connection borrowed from the pool for one statement.
    type Pooled: DerefMut<Target = Self::Conn> + Send;
    /// Most bound parameters one statement may carry; multi-row statements are split into
    /// chunks that stay under it.
    const BIND_PARAMS_MAX: usize;
    /// Most values in one `IN` list of the send batch; longer lists are split into several
    /// statements, in order.
    const IN_LIST_MAX: usize;

    /// Starts a transaction that will write: `BEGIN IMMEDIATE` on SQLite, a plain READ
    /// COMMITTED transaction (whose writers lock rows) on the others.
    async fn begin_write(&self) -> Result<Self::Tx, sqlx::Error>;
    /// Starts a read-only transaction: one consistent snapshot for queries that read twice.
    async fn begin_read(&self) -> Result<Self::Tx, sqlx::Error>;
    async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error>;
    async fn acquire(&self) -> Result<Self::Pooled, sqlx::Error>;

    /// The backend's own writer of [`crate::Store::append`]'s batches, if it has one
    /// (SQLite: a thread with a connection that does nothing else). Without one, the
    /// engine runs each batch in a write transaction of the pool's.
    fn stream_writer(&self) -> Option<&dyn StreamWriter> {
        None
    }

    /// Runs an insert of one row written `INSERT … RETURNING id` and returns the id.
    async fn insert(
        conn: &mut Self::Conn,
        statement: &'static Statement,
        args: &[Arg<'_>],
    ) -> Result<i64, sqlx::Error> {
        Self::fetch_one(conn, statement, args).await?.int(0)
    }
}

/// Runs each batch of [`crate::Store::append`] as one transaction, with the engine's rules
/// (`engine::append_mixed`), on a connection of its own. On `Err` nothing of the batch is
/// written.
#[async_trait]
pub trait StreamWriter: Send + Sync {
    async fn append(
        &self,
        appends: &[StreamAppend],
        policy: SendPolicy,
    ) -> StoreResult<Vec<StoreResult<Appended>>>;
}

/// The first column of each row, as an integer id.
pub(crate) fn ids<T>(rows: &[impl Columns], id: fn(i64) -> T) -> Result<Vec<T>, sqlx::Error> {
    rows.iter().map(|row| Ok(id(row.int(0)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_flavor_spells_the_shared_sql() {
        let lock = "SELECT kind FROM t WHERE id = ? AND name <> '?' FOR UPDATE";
        assert_eq!(
            Flavor::Sqlite.render(lock),
            "SELECT kind FROM t WHERE id = ? AND name <> '?'"
        );
        assert_eq!(
            Flavor::Postgres.render(lock),
            "SELECT kind FROM t WHERE id = $1 AND name <> '?' FOR NO KEY UPDATE"
        );
        assert_eq!(Flavor::MySql.render(lock), lock);
        let insert = "INSERT INTO t (a, b) VALUES (?, ?) RETURNING id";
        assert_eq!(Flavor::Sqlite.render(insert), insert);
        assert_eq!(
            Flavor::Postgres.render(insert),
            "INSERT INTO t (a, b) VALUES ($1, $2) RETURNING id"
        );
        assert_eq!(
            Flavor::MySql.render(insert),
            "INSERT INTO t (a, b) VALUES (?, ?)"
        );
        let keep = "INSERT INTO t (a, b_ms) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING";
        assert_eq!(Flavor::Sqlite.render(keep), keep);
        assert_eq!(
            Flavor::MySql.render(keep),
            "INSERT INTO t (a, b_ms) VALUES (?, ?), (?, ?) ON DUPLICATE KEY UPDATE b_ms = b_ms"
        );
        assert_eq!(values("(?, 0)", 2), "VALUES (?, 0), (?, 0)");
        assert_eq!(in_list(3), "(?, ?, ?)");
    }
}
