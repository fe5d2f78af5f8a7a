//! The stream writer: the one path by which anything is appended to a conversation's
//! stream (sends, recalls, group notices; later edits, reactions, attachments).
//!
//! Services submit appends to one bounded queue. A single task takes everything that has
//! queued up (up to `write_batch_max`) and stores it in ONE store transaction, in queue
//! order (group commit: a burst of N sends, recalls and notices costs one commit and one
//! fsync instead of N). Seqs are assigned by the store inside that transaction. When a batch is
//! stored, it goes to the publisher task, the one after-commit hook: it publishes each
//! new entry to the bus, in seq order, and only then replies to the submitter, so a reply
//! always means "durable". The writer meanwhile stores the next batch.
//!
//! A send the store refuses fails alone (the store isolates it); the others in its batch
//! are committed and acked.
//!
//! In a cluster, a resend that finds its message already stored announces it again: the
//! node that stored it may have died between its commit and its publish, and then no
//! other node's devices heard of it. Devices drop an entry they hold already by seq. (On
//! one node that cannot happen: the devices die with the node, and sync when they
//! reconnect.)
//!
//! On shutdown the queue is closed and the task drains what was already accepted before
//! it exits.

use crate::fanout::Broadcaster;
use crate::wire;
use banter_protocol::ServerEvent;
use banter_store::{Appended, SendPolicy, Store, StoreResult, StreamAppend};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// One append to a conversation's stream: the store's [`StreamAppend`].
pub type Append = StreamAppend;

struct Job {
    append: Append,
    reply: oneshot::Sender<StoreResult<Appended>>,
}

/// Submits appends to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

/// The writer has stopped (the server is shutting down).
#[derive(Debug)]
pub struct WriterClosed;

impl Writer {
    /// `reannounce`: announce again a resend's message found stored (a cluster's nodes).
    pub fn spawn(
        store: Arc<dyn Store>,
        broadcast: Broadcaster,
        policy: SendPolicy,
        batch_max: usize,
        queue_max: usize,
        reannounce: bool,
    ) -> (Writer, JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(queue_max);
        let task = tokio::spawn(run(rx, store, broadcast, policy, batch_max, reannounce));
        (Writer { queue }, task)
    }

    /// Queues an append; waits only if the queue is full. The receiver resolves once the
    /// append is durable and published (or refused).
    pub async fn submit(
        &self,
        append: Append,
    ) -> Result<oneshot::Receiver<StoreResult<Appended>>, WriterClosed> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(Job { append, reply })
            .await
            .map_err(|_| WriterClosed)?;
        Ok(rx)
    }
}

/// Stored batches waiting to be published; beyond it the writer waits before it stores
/// the next batch, so a slow fan-out pushes back instead of piling up.
const PUBLISH_QUEUE_BATCHES: usize = 2;

/// One stored append on its way to the publisher.
struct Outcome {
    reply: oneshot::Sender<StoreResult<Appended>>,
    result: StoreResult<Appended>,
    /// The submitter needs the recipients too (a group change tells them more).
    keep_recipients: bool,
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<dyn Store>,
    broadcast: Broadcaster,
    policy: SendPolicy,
    batch_max: usize,
    reannounce: bool,
) {
    // Publishing (serializing each entry and offering it to the bus) and answering the
    // submitters happen in a task of their own, so the next batch is already committing
    // while this one fans out. One task, fed in commit order, keeps the order.
    let (stored, to_publish) = mpsc::channel::<Vec<Outcome>>(PUBLISH_QUEUE_BATCHES);
    let publisher = tokio::spawn(publish(to_publish, broadcast, reannounce));
    let mut jobs: Vec<Job> = Vec::with_capacity(batch_max);
    // `recv_many` returns whatever is queued (at least one) without waiting for more:
    // batches grow by themselves while a commit is in flight and stay at one when idle.
    while rx.recv_many(&mut jobs, batch_max).await > 0 {
        let (appends, replies): (Vec<Append>, Vec<_>) = jobs
            .drain(..)
            .map(|job| {
                let keep_recipients = matches!(job.append, Append::Group { .. });
                (job.append, (job.reply, keep_recipients))
            })
            .unzip();
        let results = store.append(&appends, policy).await;
        debug_assert_eq!(results.len(), replies.len());
        tracing::trace!(batch = results.len(), "stream batch stored");
        let outcomes = replies
            .into_iter()
            .zip(results)
            .map(|((reply, keep_recipients), result)| Outcome {
                reply,
                result,
                keep_recipients,
            })
            .collect();
        if stored.send(outcomes).await.is_err() {
            tracing::error!("stream publisher stopped; writer stopping");
            break;
        }
    }
    drop(stored);
    if publisher.await.is_err() {
        tracing::error!("stream publisher panicked");
    }
    tracing::debug!("stream writer drained and stopped");
}

/// The after-commit hook: publishes each new entry of each stored batch, in seq order,
/// then answers its submitter: a reply therefore always follows the commit.
async fn publish(
    mut batches: mpsc::Receiver<Vec<Outcome>>,
    broadcast: Broadcaster,
    reannounce: bool,
) {
    while let Some(outcomes) = batches.recv().await {
        for outcome in outcomes {
            let mut result = outcome.result;
            if let Ok(appended) = &mut result {
                if !appended.duplicate || reannounce {
                    // A sender needs only the entry for its ack: the recipients can go
                    // to the bus without a copy.
                    let recipients = if outcome.keep_recipients {
                        appended.recipients.clone()
                    } else {
                        std::mem::take(&mut appended.recipients)
                    };
                    // The submitter keeps the entry for its ack: one copy to serialize,
                    // once, for every recipient.
                    let (conversation, seq) = (appended.entry.conversation_id, appended.entry.seq);
                    let event = ServerEvent::MessageCreated {
                        message: wire::message(appended.entry.clone()),
                    };
                    broadcast
                        .send_entry(recipients, &event, conversation, seq)
                        .await;
                }
            }
            // The submitter may have gone away; the entry is stored either way.
            let _ = outcome.reply.send(result);
        }
    }
}
