//! Checkpoints beside the stream writer: a thread with a connection of its own copies
//! committed WAL frames back into the database file while the writer goes on committing.
//!
//! With SQLite's automatic checkpoint alone, the commit that takes the WAL past
//! `wal_autocheckpoint` frames copies all of them into the database file before it
//! returns. At 10,000 sends a second that is every second or two, and the copy holds the
//! writer for tens of milliseconds: most of the ack p99 at that rate (docs/benchmarks.md).
//! A `PASSIVE` checkpoint on another connection takes no write lock, so it runs here,
//! shortly after commits, and copies the frames as they come.
//!
//! The automatic checkpoint stays on the writer's connection: SQLite starts the WAL over
//! only after a checkpoint that copied every frame, which one running beside a writer that
//! never pauses does not reach. When the writer's own checkpoint comes, the frames this
//! thread copied already are not copied again: it has only the last few, and the fsync.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::BUSY_TIMEOUT;

/// How long after a commit the checkpoint runs: long enough to gather a burst's commits
/// into one pass (each pass ends with an fsync of the database file), short enough that
/// the writer's own checkpoint finds only a few hundred frames left.
const GATHER: Duration = Duration::from_millis(100);

/// A failing pass is logged at most this often: a disk that fails fails every pass.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Tells the checkpoint thread that something was committed. The thread ends when this is
/// dropped.
#[derive(Debug)]
pub(super) struct Checkpoints {
    due: SyncSender<()>,
}

impl Checkpoints {
    /// Starts the thread on a connection of its own to the (migrated, WAL-mode) database
    /// at `path`.
    pub(super) fn start(path: &Path) -> rusqlite::Result<Checkpoints> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let (due, nudges) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(conn, nudges))
            .map_err(|e| {
                rusqlite::Error::ToSqlConversionFailure(
                    format!("could not start the SQLite checkpoint thread: {e}").into(),
                )
            })?;
        Ok(Checkpoints { due })
    }

    /// Called after each commit. Never waits: a pass already due covers this commit too.
    pub(super) fn committed(&self) {
        let _ = self.due.try_send(());
    }
}

fn run(conn: Connection, nudges: Receiver<()>) {
    let mut warned: Option<Instant> = None;
    while nudges.recv().is_ok() {
        std::thread::sleep(GATHER);
        // A commit during the pause is covered by this pass; one after it asks for the next.
        let _ = nudges.try_recv();
        // Answers (busy, frames in the WAL, frames copied). Busy means the writer's own
        // checkpoint was running, which does the same work.
        let pass = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        });
        if let Err(error) = pass {
            if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                tracing::warn!(%error, "SQLite background checkpoint failed; the writer's own checkpoints go on");
                warned = Some(Instant::now());
            }
        }
    }
    tracing::debug!("SQLite checkpoint thread stopped");
}
