//! SQLite's stream writer: a thread of its own with a connection of its own that runs each
//! batch of [`crate::Store::append`] as one transaction, and does nothing else.
//!
//! Through sqlx every statement is a round trip between the async task and the
//! connection's worker thread (a command over a channel, each result row back over
//! another, a thread woken each way), and a batch is about ten statements: at a few
//! thousand messages a second those wake-ups cost more CPU than SQLite itself. Here the
//! whole batch crosses threads once each way. The batch's rules are the engine's own
//! ([`crate::engine`]'s `append_mixed`, the same code every backend runs); on this
//! thread its statements run synchronously on a `rusqlite` connection, prepared once and
//! kept, so the engine's future finishes without ever waiting and is simply polled to
//! its end.
//!
//! SQLite has one writer at a time. The stream writer and the sqlx pool's write
//! transactions take turns through one [`WriteTurn`] (a fair queue) before `BEGIN
//! IMMEDIATE`, so neither ever polls the file lock on `busy_timeout` behind the other.

use std::borrow::Cow;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode};
use tokio::sync::oneshot;

use super::checkpoint::Checkpoints;
use super::{batch, WriteTurn, BIND_PARAMS_MAX, BUSY_TIMEOUT};
use crate::engine::append_mixed;
use crate::row::{now_ms, Columns};
use crate::sql::{
    AccountSql, Arg, ConversationSql, Dialect, Flavor, MediaSql, SeedSql, SocialSql, Statement,
    Statements, StreamWriter,
};
use crate::{Appended, Durability, SendPolicy, StoreError, StoreResult, StreamAppend};

/// Statements kept prepared: the batch's statements at each batch size seen recently, and
/// those of recalls and group changes.
const STATEMENTS_KEPT: usize = 512;

type Answers = StoreResult<Vec<StoreResult<Appended>>>;

struct Job {
    appends: Vec<StreamAppend>,
    policy: SendPolicy,
    reply: oneshot::Sender<Answers>,
}

/// The handle of the writer thread; the thread ends when the handle is dropped.
#[derive(Debug)]
pub(super) struct StreamThread {
    jobs: mpsc::Sender<Job>,
}

impl StreamThread {
    /// Opens the writer's connection to the database file at `path` (already migrated)
    /// on a new thread, and returns once it is open.
    pub(super) async fn start(
        path: PathBuf,
        durability: Durability,
        turn: WriteTurn,
    ) -> StoreResult<StreamThread> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened, ready) = oneshot::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || match open(&path, durability) {
                Ok((conn, checkpoints)) => {
                    let _ = opened.send(Ok(()));
                    serve(conn, checkpoints, queue, turn);
                }
                Err(error) => {
                    let _ = opened.send(Err(error));
                }
            })
            .map_err(|e| StoreError::Config(format!("could not start the SQLite writer: {e}")))?;
        match ready.await {
            Ok(Ok(())) => Ok(StreamThread { jobs }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(StoreError::Config(
                "the SQLite writer stopped at start".into(),
            )),
        }
    }
}

#[async_trait]
impl StreamWriter for StreamThread {
    async fn append(&self, appends: &[StreamAppend], policy: SendPolicy) -> Answers {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            appends: appends.to_vec(),
            policy,
            reply,
        };
        if self.jobs.send(job).is_err() {
            return Err(StoreError::Config("the SQLite writer has stopped".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Config("the SQLite writer has stopped".into())))
    }
}

/// The writer's connection, and the checkpoint thread that works beside it.
fn open(path: &std::path::Path, durability: Durability) -> StoreResult<(Connection, Checkpoints)> {
    let conn = open_with_settings(path, durability).map_err(|e| StoreError::Database(lite(e)))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .map_err(|e| StoreError::Database(lite(e)))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Config(format!(
            "the SQLite database is in {mode} mode, not WAL"
        )));
    }
    let checkpoints = Checkpoints::start(path).map_err(|e| StoreError::Database(lite(e)))?;
    Ok((conn, checkpoints))
}

fn open_with_settings(
    path: &std::path::Path,
    durability: Durability,
) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The same settings as the pool's connections (`super::SqliteStore::open`).
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Full => "FULL",
            Durability::Relaxed => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", 10000)?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
    Ok(conn)
}

fn serve(
    mut conn: Connection,
    checkpoints: Checkpoints,
    queue: mpsc::Receiver<Job>,
    turn: WriteTurn,
) {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    while let Ok(job) = queue.recv() {
        let answers = {
            let _turn = turn.blocking_lock();
            transaction(&mut conn, &waker, &job.appends, job.policy)
        };
        checkpoints.committed();
        // The submitter may have gone; the batch is stored (or not) either way.
        let _ = job.reply.send(answers);
    }
    tracing::debug!("SQLite writer stopped");
}

/// One batch as one transaction: committed whole, or rolled back whole on `Err`.
fn transaction(
    conn: &mut Connection,
    waker: &Waker,
    appends: &[StreamAppend],
    policy: SendPolicy,
) -> Answers {
    run(conn, "BEGIN IMMEDIATE", &[]).map_err(StoreError::Database)?;
    let answers = block_on(
        waker,
        append_mixed::<WriterSql>(conn, appends, policy, now_ms()),
    );
    let committed = answers.and_then(|answers| {
        run(conn, "COMMIT", &[]).map_err(StoreError::Database)?;
        Ok(answers)
    });
    if committed.is_err() && !conn.is_autocommit() {
        if let Err(error) = run(conn, "ROLLBACK", &[]) {
            tracing::error!(%error, "SQLite writer could not roll back");
        }
    }
    committed
}

/// Wakes the writer thread.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to its end on this thread. The engine's futures over [`WriterSql`]
/// never wait (every statement is synchronous), so the first poll finishes them; the
/// loop is there so that one that did wait would still be correct.
fn block_on<F: Future>(waker: &Waker, future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// SQLite's dialect of the store's queries on the stream writer's connection. It has no
/// pool: it runs only inside the writer's transaction, where the engine asks it for
/// statements, never for connections.
#[derive(Debug)]
pub(super) struct WriterSql;

/// A result row, its values read out of SQLite.
pub(crate) struct WriterRow(Vec<Value>);

/// The writer has no pool and opens no transactions of its own (see [`WriterSql`]).
pub(crate) enum NoPool {}

impl std::ops::Deref for NoPool {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match *self {}
    }
}

impl std::ops::DerefMut for NoPool {
    fn deref_mut(&mut self) -> &mut Connection {
        match *self {}
    }
}

fn no_pool() -> sqlx::Error {
    sqlx::Error::Configuration("the SQLite writer runs statements only inside its batch".into())
}

fn prepare_and_bind<'c>(
    conn: &'c Connection,
    text: &str,
    args: &[Arg<'_>],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut statement = conn.prepare_cached(text)?;
    for (at, arg) in args.iter().enumerate() {
        let at = at + 1;
        match *arg {
            Arg::Int(value) => statement.raw_bind_parameter(at, value),
            Arg::OptInt(value) => statement.raw_bind_parameter(at, value),
            Arg::Bool(value) => statement.raw_bind_parameter(at, value),
            Arg::Text(value) => statement.raw_bind_parameter(at, value),
            Arg::OptText(value) => statement.raw_bind_parameter(at, value),
            Arg::Bytes(value) => statement.raw_bind_parameter(at, value),
        }?;
    }
    Ok(statement)
}

fn query(conn: &Connection, text: &str, args: &[Arg<'_>]) -> Result<Vec<WriterRow>, sqlx::Error> {
    let read = || -> rusqlite::Result<Vec<WriterRow>> {
        let mut statement = prepare_and_bind(conn, text, args)?;
        let columns = statement.column_count();
        let mut rows = statement.raw_query();
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns)
                .map(|at| row.get::<_, Value>(at))
                .collect::<rusqlite::Result<_>>()?;
            found.push(WriterRow(values));
        }
        Ok(found)
    };
    read().map_err(lite)
}

fn run(conn: &Connection, text: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
    let changed = prepare_and_bind(conn, text, args)
        .and_then(|mut statement| statement.raw_execute())
        .map_err(lite)?;
    Ok(changed as u64)
}

#[async_trait]
impl Statements for WriterSql {
    type Conn = Connection;
    type Row = WriterRow;
    const FLAVOR: Flavor = Flavor::Sqlite;

    async fn fetch_all(
        conn: &mut Connection,
        statement: &'static Statement,
        args: &[Arg<'_>],
    ) -> Result<Vec<WriterRow>, sqlx::Error> {
        query(conn, statement.text(Self::FLAVOR), args)
    }

    async fn fetch_optional(
        conn: &mut Connection,
        statement: &'static Statement,
        args: &[Arg<'_>],
    ) -> Result<Option<WriterRow>, sqlx::Error> {
        Ok(query(conn, statement.text(Self::FLAVOR), args)?
            .into_iter()
            .next())
    }

    async fn execute(
        conn: &mut Connection,
        statement: &'static Statement,
        args: &[Arg<'_>],
    ) -> Result<u64, sqlx::Error> {
        run(conn, statement.text(Self::FLAVOR), args)
    }

    /// Kept prepared too, unlike on the pool's connections: a batch's texts repeat for
    /// every batch of the same size.
    async fn fetch_all_built(
        conn: &mut Connection,
        shared: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<WriterRow>, sqlx::Error> {
        query(conn, &Self::FLAVOR.render(shared), args)
    }

    async fn execute_built(
        conn: &mut Connection,
        shared: &str,
        args: &[Arg<'_>],
    ) -> Result<u64, sqlx::Error> {
        run(conn, &Self::FLAVOR.render(shared), args)
    }
}

#[async_trait]
impl Dialect for WriterSql {
    type Tx = NoPool;
    type Pooled = NoPool;
    const BIND_PARAMS_MAX: usize = BIND_PARAMS_MAX;
    const IN_LIST_MAX: usize = BIND_PARAMS_MAX;

    async fn begin_write(&self) -> Result<NoPool, sqlx::Error> {
        Err(no_pool())
    }

    async fn begin_read(&self) -> Result<NoPool, sqlx::Error> {
        Err(no_pool())
    }

    async fn commit(tx: NoPool) -> Result<(), sqlx::Error> {
        match tx {}
    }

    async fn acquire(&self) -> Result<NoPool, sqlx::Error> {
        Err(no_pool())
    }
}

impl AccountSql for WriterSql {}

impl SocialSql for WriterSql {}

impl ConversationSql for WriterSql {}

impl MediaSql for WriterSql {}

impl SeedSql for WriterSql {}

batch::stream_sql_on!(WriterSql, Connection);

fn mismatch(at: usize, wanted: &str, found: Option<&Value>) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: at.to_string(),
        source: format!("expected {wanted}, found {found:?}").into(),
    }
}

impl Columns for WriterRow {
    fn int(&self, at: usize) -> Result<i64, sqlx::Error> {
        match self.0.get(at) {
            Some(Value::Integer(value)) => Ok(*value),
            other => Err(mismatch(at, "an integer", other)),
        }
    }
    fn opt_int(&self, at: usize) -> Result<Option<i64>, sqlx::Error> {
        match self.0.get(at) {
            Some(Value::Null) => Ok(None),
            _ => self.int(at).map(Some),
        }
    }
    fn text(&self, at: usize) -> Result<String, sqlx::Error> {
        match self.0.get(at) {
            Some(Value::Text(value)) => Ok(value.clone()),
            other => Err(mismatch(at, "text", other)),
        }
    }
    fn opt_text(&self, at: usize) -> Result<Option<String>, sqlx::Error> {
        match self.0.get(at) {
            Some(Value::Null) => Ok(None),
            _ => self.text(at).map(Some),
        }
    }
    fn flag(&self, at: usize) -> Result<bool, sqlx::Error> {
        self.int(at).map(|value| value != 0)
    }
}

/// An error SQLite reported to the writer, as sqlx reports those of its own connections
/// (the same code and kind), so that the engine's rules for refusals and races read both.
#[derive(Debug)]
pub(crate) struct WriterError {
    /// SQLite's extended result code.
    extended: i32,
    primary: ErrorCode,
    message: String,
}

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.extended, self.message)
    }
}

impl std::error::Error for WriterError {}

impl sqlx::error::DatabaseError for WriterError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.extended.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use rusqlite::ffi;
        use sqlx::error::ErrorKind;
        match self.extended {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

impl WriterError {
    /// SQLite refused the data: a constraint (19), a value too big (18), a type mismatch
    /// (20).
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(
            self.primary,
            ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch
        )
    }
}

/// A `rusqlite` error as the `sqlx::Error` the engine reads.
fn lite(error: rusqlite::Error) -> sqlx::Error {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            sqlx::Error::Database(Box::new(WriterError {
                extended: failure.extended_code,
                primary: failure.code,
                message: message.unwrap_or_else(|| failure.to_string()),
            }))
        }
        other => sqlx::Error::Protocol(format!("SQLite writer: {other}")),
    }
}
