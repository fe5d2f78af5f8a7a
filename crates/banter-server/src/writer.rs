//! The message writer: group commit for sends.
//!
//! Connections submit sends to one bounded queue. A single task takes everything that has
//! queued up (up to `write_batch_max`) and appends it in ONE store transaction, so a burst
//! of N sends costs one commit and one fsync instead of N. When the commit returns, the
//! batch goes to the publisher task, which publishes each new message to the bus, in seq
//! order, and only then replies to the senders: an ack always means "durable". The
//! writer meanwhile commits the next batch.
//!
//! On shutdown the queue is closed and the task drains what was already accepted before
//! it exits.

use crate::fanout::{Bus, Delivery};
use banter_protocol::ServerEvent;
use banter_store::{Appended, NewMessage, SendPolicy, Store, StoreResult};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

struct Job {
    send: NewMessage,
    reply: oneshot::Sender<StoreResult<Appended>>,
}

/// Submits sends to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

/// The writer has stopped (the server is shutting down).
#[derive(Debug)]
pub struct WriterClosed;

impl Writer {
    pub fn spawn(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        policy: SendPolicy,
        batch_max: usize,
        queue_max: usize,
    ) -> (Writer, JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(queue_max);
        let task = tokio::spawn(run(rx, store, bus, policy, batch_max));
        (Writer { queue }, task)
    }

    /// Queues a send; waits only if the queue is full. The receiver resolves once the
    /// send is committed (or refused).
    pub async fn submit(
        &self,
        send: NewMessage,
    ) -> Result<oneshot::Receiver<StoreResult<Appended>>, WriterClosed> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(Job { send, reply })
            .await
            .map_err(|_| WriterClosed)?;
        Ok(rx)
    }
}

/// Committed batches waiting to be published; beyond it the writer waits before it
/// commits the next batch, so a slow fan-out pushes back instead of piling up.
const PUBLISH_QUEUE_BATCHES: usize = 2;

/// A committed batch: the store's answers and the senders waiting for them.
type Committed = (
    Vec<oneshot::Sender<StoreResult<Appended>>>,
    Vec<StoreResult<Appended>>,
);

async fn run(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    policy: SendPolicy,
    batch_max: usize,
) {
    // Publishing (serializing each message and offering it to the hub) and answering the
    // senders happen in a task of their own, so the next batch is already committing
    // while this one fans out. One task, fed in commit order, keeps the order.
    let (committed, to_publish) = mpsc::channel::<Committed>(PUBLISH_QUEUE_BATCHES);
    let publisher = tokio::spawn(publish(to_publish, bus));
    let mut jobs: Vec<Job> = Vec::with_capacity(batch_max);
    // `recv_many` returns whatever is queued (at least one) without waiting for more:
    // batches grow by themselves while a commit is in flight and stay at one when idle.
    while rx.recv_many(&mut jobs, batch_max).await > 0 {
        let (sends, replies): (Vec<NewMessage>, Vec<_>) =
            jobs.drain(..).map(|j| (j.send, j.reply)).unzip();
        let results = store.append_messages(&sends, policy).await;
        debug_assert_eq!(results.len(), replies.len());
        tracing::trace!(batch = sends.len(), "group commit");
        if committed.send((replies, results)).await.is_err() {
            tracing::error!("message publisher stopped; writer stopping");
            break;
        }
    }
    drop(committed);
    if publisher.await.is_err() {
        tracing::error!("message publisher panicked");
    }
    tracing::debug!("message writer drained and stopped");
}

/// Publishes each new message of each committed batch, in seq order, then answers its
/// sender: an ack therefore always follows the commit.
async fn publish(mut batches: mpsc::Receiver<Committed>, bus: Arc<dyn Bus>) {
    while let Some((replies, results)) = batches.recv().await {
        for (reply, mut result) in replies.into_iter().zip(results) {
            if let Ok(appended) = &mut result {
                if !appended.duplicate {
                    let event = ServerEvent::MessageCreated {
                        message: appended.message.clone(),
                    };
                    // The sender's ack needs only the message; the recipients go to the bus.
                    let recipients = std::mem::take(&mut appended.recipients);
                    bus.publish(Delivery::new(recipients, &event));
                }
            }
            // The sender may have gone away; the message is stored either way.
            let _ = reply.send(result);
        }
    }
}
