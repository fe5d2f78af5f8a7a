//! One device in a messaging scenario: a connection that receives everything its user
//! is sent and, if it is a sender, sends at its pace into one conversation. Direct and
//! group scenarios differ only in how they seed and wire devices together.
//!
//! A run has three phases, seen from a device: sending until `stop_at`; then waiting for
//! its outstanding acks and handing the sender's tally to the coordinator; then
//! receiving until the coordinator has published the last acked seq of every
//! conversation (the targets) and this device has reached them, or the drain deadline
//! passes, after which whatever is missing counts as lost.
//!
//! A device ends when its connection does, unless it runs with failover (`--failover`,
//! a [`Failover`]): then, like a client following docs/protocol.md §7.3–§7.6, it
//! reconnects to the next node of the list (round robin, with a short backoff, until the
//! drain deadline), resends every unacked send under its original `client_msg_id`, and
//! syncs each of its conversations from the last seq it holds. Its live pushes and sync
//! pages then go through the SDK's [`Cursors`], which drop an entry already held (by seq)
//! and hold one that arrives ahead of a gap until a sync fills the gap; so its log is the
//! stream as an application would show it, and the ledger checks that.

use super::{Pacing, Run};
use crate::fleet::Fleet;
use crate::ledger::{stamp_of, stamped_text, DeviceLog, Received, SendKey, SenderTally};
use crate::progress::Counters;
use crate::report::latency_histogram;
use banter_client::session::CLOSE_SESSION_REVOKED;
use banter_client::{ClientError, Connection, Cursors, Offered};
use banter_protocol::model::{Message, MessageContent};
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent, UserId};
use hdrhistogram::Histogram;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How often a waiting device looks at the coordinator's targets.
const POLL: Duration = Duration::from_millis(50);

/// Pause after a failed reconnect attempt before trying the next node; it doubles up to
/// [`REJOIN_BACKOFF_MAX`]. The first attempt after a loss goes out at once: the next
/// node is most likely up.
const REJOIN_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
/// Longest pause between reconnect attempts, so a node restarted a few seconds after a
/// kill is found within a second of listening again.
const REJOIN_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Entries asked for per `sync` page (the server's maximum).
const SYNC_PAGE: i64 = 500;
/// Request id prefix of the `sync` frames; never a bench send's `client_msg_id` (those
/// start with `b`).
const SYNC_REQUEST: &str = "sync";

/// The last acked seq of each conversation, and when to stop waiting for them.
pub type Targets = Option<(Arc<HashMap<ConversationId, i64>>, Instant)>;

pub struct Sender {
    /// This sender's number in the run; part of every `client_msg_id` it sends.
    pub index: u32,
    pub conversation: ConversationId,
    pub pacing: Pacing,
    /// When the first send goes out. In open loop the senders' first sends are spread over
    /// one interval, so that the server sees one send every 1/R s, not every sender's at
    /// the same moment once an interval.
    pub first_send_at: Instant,
    /// Sends at most this many, if set; the sending phase ends early when they are out.
    pub quota: Option<u32>,
    pub stop_at: Instant,
    /// After this, outstanding sends are given up (they count as lost).
    pub give_up_at: Instant,
    pub tallies: mpsc::UnboundedSender<SenderTally>,
}

pub struct Device {
    pub connection: Connection,
    /// What the device records. Made before the run's clock starts: its two histograms
    /// take over a hundred kilobytes each, and hundreds of devices making them at the
    /// moment the first sends go out stalled the bench itself for tens of milliseconds,
    /// counted as the server's latency.
    pub outcome: Outcome,
    pub sender: Option<Sender>,
    /// How to get back in when the connection is lost; without it, the device ends.
    pub failover: Option<Failover>,
}

/// Where a device reconnects (`--failover`), as the scenario wired it.
#[derive(Clone)]
pub struct Rejoin {
    pub fleet: Arc<Fleet>,
    pub token: String,
    /// The node (index into the fleet's URLs) the connection is on; a reconnect tries the
    /// next one, then the one after, round robin.
    pub node: usize,
}

/// A device's failover: where to reconnect, and until when.
pub struct Failover {
    pub rejoin: Rejoin,
    /// The run's drain deadline: reconnecting stops there (or at the coordinator's
    /// deadline for the last deliveries, if that is later), and the device fails.
    pub give_up_at: Instant,
}

pub struct Outcome {
    pub user: UserId,
    pub conversations: Vec<ConversationId>,
    pub log: DeviceLog,
    /// Send → ack, on senders.
    pub ack_latency: Histogram<u64>,
    /// Send → delivery, for messages of other users.
    pub e2e_latency: Histogram<u64>,
    /// Run-clock µs of the last delivery.
    pub last_delivery_us: u64,
    /// Why the connection ended early, if it did.
    pub failure: Option<String>,
    /// The first refusal the server sent, to explain a non-zero `refused`.
    pub refusal: Option<String>,
    /// With failover: connections opened again after a loss.
    pub reconnects: u64,
    /// With failover: unacked sends sent again (same `client_msg_id`) after a reconnect.
    pub resends: u64,
    /// With failover: entries this device got from a `sync` page rather than live.
    pub recovered: u64,
}

impl Outcome {
    /// `conversations`: the ones the device must hold in full at the end.
    pub fn new(user: UserId, conversations: Vec<ConversationId>) -> Outcome {
        Outcome {
            user,
            conversations,
            log: DeviceLog::default(),
            ack_latency: latency_histogram(),
            e2e_latency: latency_histogram(),
            last_delivery_us: 0,
            failure: None,
            refusal: None,
            reconnects: 0,
            resends: 0,
            recovered: 0,
        }
    }
}

pub async fn drive(device: Device, run: Run, mut targets: watch::Receiver<Targets>) -> Outcome {
    let Device {
        mut connection,
        mut outcome,
        mut sender,
        failover,
    } = device;
    let mut failover = failover.map(Rejoining::new);
    let clock = run.clock;
    let counters = &run.counters;
    let mut tally = sender.as_ref().map(|_| SenderTally::default());
    // Send time (run µs) of each unacked send, by its counter.
    let mut unacked: HashMap<u32, u64> = HashMap::new();
    let mut next_n: u32 = 0;
    let mut next_send_at = sender
        .as_ref()
        .map_or_else(Instant::now, |s| s.first_send_at);
    let sender_stop = sender.as_ref().map_or(next_send_at, |s| s.stop_at);

    loop {
        let now = Instant::now();
        // Set when the connection is lost and the device has failover: it reconnects at
        // the end of this turn.
        let mut lost: Option<ClientError> = None;
        if let Some(s) = &sender {
            let sending = now < s.stop_at && s.quota.is_none_or(|q| next_n < q);
            if sending {
                let due = |unacked: &HashMap<u32, u64>, next_send_at: Instant, n: u32| {
                    let paced = match s.pacing {
                        Pacing::Window(window) => unacked.len() < window,
                        Pacing::Rate { window_max, .. } => {
                            next_send_at <= now && unacked.len() < window_max
                        }
                    };
                    paced && s.quota.is_none_or(|q| n < q)
                };
                while due(&unacked, next_send_at, next_n) {
                    let key = SendKey {
                        sender: s.index,
                        n: next_n,
                    };
                    let sent_us = clock.now_us();
                    let frame = send_frame(key, s.conversation, sent_us, run.text_bytes);
                    match connection.send_frame(&frame).await {
                        Ok(()) => {}
                        // The send counts as made: it goes out again after the reconnect.
                        Err(err) if failover.is_some() => lost = Some(err),
                        Err(err) => {
                            outcome.failure = Some(format!("send failed: {err}"));
                            break;
                        }
                    }
                    unacked.insert(next_n, sent_us);
                    next_n += 1;
                    if let Some(t) = tally.as_mut() {
                        t.sent += 1;
                    }
                    Counters::add(&counters.sent, 1);
                    if let Pacing::Rate { interval, .. } = s.pacing {
                        next_send_at += interval;
                    }
                    if lost.is_some() {
                        break;
                    }
                }
            }
            let finished = !sending && (unacked.is_empty() || now >= s.give_up_at);
            if (finished || outcome.failure.is_some()) && tally.is_some() {
                let _ = s.tallies.send(tally.take().unwrap_or_default());
            }
        }
        if outcome.failure.is_some() {
            break;
        }
        let published = targets.borrow_and_update().clone();
        if let Some((last_seqs, give_up_at)) = published {
            let reached = outcome
                .conversations
                .iter()
                .all(|c| outcome.log.last_seq(*c) >= last_seqs.get(c).copied().unwrap_or(0));
            if (reached && tally.is_none()) || now >= give_up_at {
                break;
            }
        }

        if lost.is_none() {
            let mut wake = now + POLL;
            if let Some(s) = sender
                .as_ref()
                .filter(|_| tally.is_some() && now < sender_stop)
            {
                wake = wake.min(s.stop_at);
                if matches!(s.pacing, Pacing::Rate { .. }) {
                    wake = wake.min(next_send_at.max(now));
                }
            }
            match connection.next_event_until(wake).await {
                Ok(ServerEvent::Ack {
                    id,
                    conversation_id,
                    seq,
                    ..
                }) => {
                    let Some(key) = SendKey::parse(&id) else {
                        continue;
                    };
                    if let Some(sent_us) = unacked.remove(&key.n) {
                        let took_us = clock.since_us(sent_us).max(1);
                        let _ = outcome.ack_latency.record(took_us);
                        counters.ack_took(took_us);
                    }
                    if let Some(t) = tally.as_mut() {
                        t.acks.push((conversation_id, seq, key));
                        t.last_ack_us = clock.now_us();
                    }
                    Counters::add(&counters.acked, 1);
                }
                Ok(ServerEvent::MessageCreated { message }) => match failover.as_mut() {
                    None => deliver(&mut outcome, &message, true, &run),
                    Some(f) => {
                        if let Err(err) = f
                            .offer_live(&mut connection, message, &mut outcome, &run)
                            .await
                        {
                            lost = Some(err);
                        }
                    }
                },
                Ok(ServerEvent::Synced {
                    conversation_id,
                    messages,
                    has_more,
                    ..
                }) => {
                    // Only a failover device asks for pages.
                    if let Some(f) = failover.as_mut() {
                        let page = Page {
                            conversation: conversation_id,
                            messages,
                            has_more,
                        };
                        if let Err(err) = f.synced(&mut connection, page, &mut outcome, &run).await
                        {
                            lost = Some(err);
                        }
                    }
                }
                Ok(ServerEvent::Error { id, code, message }) => {
                    if failover.is_some() {
                        if code == ErrorCode::ShuttingDown {
                            // The node is going away (a graceful stop); the send stays
                            // unacked and goes out again after the reconnect that follows.
                            continue;
                        }
                        if id.as_deref().is_some_and(|id| id.starts_with(SYNC_REQUEST)) {
                            outcome.failure =
                                Some(format!("sync refused, {}: {message}", code.as_str()));
                            if let (Some(s), Some(t)) = (&sender, tally.take()) {
                                let _ = s.tallies.send(t);
                            }
                            break;
                        }
                    }
                    let key = id.as_deref().and_then(SendKey::parse);
                    if let Some(key) = key {
                        unacked.remove(&key.n);
                    }
                    if let Some(t) = tally.as_mut() {
                        t.refused += 1;
                    }
                    outcome
                        .refusal
                        .get_or_insert_with(|| format!("{}: {message}", code.as_str()));
                }
                Ok(_) | Err(ClientError::Timeout) => {}
                Err(err) if failover.is_some() => lost = Some(err),
                Err(err) => {
                    outcome.failure = Some(format!("connection lost: {err}"));
                    if let (Some(s), Some(t)) = (&sender, tally.take()) {
                        let _ = s.tallies.send(t);
                    }
                    break;
                }
            }
        }
        if let (Some(cause), Some(f)) = (lost, failover.as_mut()) {
            let resend = sender.as_ref().map(|s| Resend {
                sender: s.index,
                conversation: s.conversation,
                unacked: &unacked,
            });
            let recovered = f
                .recover(&mut connection, cause, resend, &targets, &mut outcome, &run)
                .await;
            if let Err(failure) = recovered {
                outcome.failure = Some(failure);
                if let (Some(s), Some(t)) = (&sender, tally.take()) {
                    let _ = s.tallies.send(t);
                }
                break;
            }
        }
        // A sender whose tally is in is a plain receiver from here on.
        if tally.is_none() {
            sender = None;
        }
    }
    let _ = connection.close().await;
    outcome
}

/// The `send_message` frame of one bench send: its key is both the request id and the
/// `client_msg_id`, and its text carries the time of the first send, so a resend is the
/// same message and its end-to-end latency counts from the first try.
fn send_frame(
    key: SendKey,
    conversation: ConversationId,
    sent_us: u64,
    text_bytes: usize,
) -> ClientFrame {
    let id = key.client_msg_id();
    ClientFrame::SendMessage {
        id: id.clone(),
        conversation_id: conversation,
        client_msg_id: id,
        text: stamped_text(sent_us, text_bytes),
        attachment: None,
    }
}

/// Adds one entry to the device's log. `live`: it came as a push (it has an end-to-end
/// latency if another user sent it); otherwise it came from a `sync` page.
fn deliver(outcome: &mut Outcome, message: &Message, live: bool, run: &Run) {
    let clock = run.clock;
    let latency_us = match &message.content {
        MessageContent::Text { text, .. } if live && message.sender_id != outcome.user => {
            stamp_of(text).map(|sent| clock.since_us(sent))
        }
        _ => None,
    };
    if let Some(us) = latency_us {
        let _ = outcome.e2e_latency.record(us.max(1));
    }
    outcome.log.push(
        message.conversation_id,
        Received {
            seq: message.seq,
            send: message.client_msg_id.as_deref().and_then(SendKey::parse),
            latency_us: latency_us.map(|us| us.min(u32::MAX as u64) as u32),
        },
    );
    outcome.last_delivery_us = clock.now_us();
    Counters::add(&run.counters.delivered, 1);
}

/// A sender's unacked sends, to go out again on a new connection.
struct Resend<'a> {
    sender: u32,
    conversation: ConversationId,
    /// Send time (run µs) by counter.
    unacked: &'a HashMap<u32, u64>,
}

/// One `synced` reply.
struct Page {
    conversation: ConversationId,
    messages: Vec<Message>,
    has_more: bool,
}

/// A failover device's state besides its connection: where to reconnect, and the
/// delivery rules that make live pushes and sync pages one stream per conversation.
struct Rejoining {
    failover: Failover,
    cursors: Cursors,
    /// Conversations with a `sync` in flight on the current connection.
    syncing: HashSet<ConversationId>,
}

impl Rejoining {
    fn new(failover: Failover) -> Rejoining {
        Rejoining {
            failover,
            cursors: Cursors::new(),
            syncing: HashSet::new(),
        }
    }

    /// A live push: delivered if it is the next seq (with whatever it makes contiguous),
    /// dropped if held already, held back with a sync if entries before it are missing
    /// (a node that died between storing an entry and announcing it leaves such a gap).
    async fn offer_live(
        &mut self,
        connection: &mut Connection,
        message: Message,
        outcome: &mut Outcome,
        run: &Run,
    ) -> Result<(), ClientError> {
        let conversation = message.conversation_id;
        match self.cursors.offer_live(message) {
            Offered::Ready(messages) => {
                for message in &messages {
                    deliver(outcome, message, true, run);
                }
                Ok(())
            }
            Offered::Duplicate => Ok(()),
            Offered::Gap { .. } => self.sync(connection, conversation).await,
        }
    }

    /// A `synced` page: what it holds past the cursor is delivered as recovered, then
    /// live entries it made contiguous; more pages are asked for while there are more,
    /// or while held entries still wait behind a gap.
    async fn synced(
        &mut self,
        connection: &mut Connection,
        page: Page,
        outcome: &mut Outcome,
        run: &Run,
    ) -> Result<(), ClientError> {
        let Page {
            conversation,
            messages,
            has_more,
        } = page;
        self.syncing.remove(&conversation);
        let page_last = messages.last().map(|m| m.seq);
        let empty = messages.is_empty();
        for message in self.cursors.apply_sync(conversation, messages) {
            // The page's entries come first, then held live ones, which are all later.
            let from_page = page_last.is_some_and(|last| message.seq <= last);
            if from_page {
                outcome.recovered += 1;
            }
            deliver(outcome, &message, !from_page, run);
        }
        if has_more && !empty {
            self.sync(connection, conversation).await
        } else if self.cursors.gap(conversation).is_some() {
            if empty {
                // Nothing to fill the gap with yet (as the SDK does): the held entries
                // are dropped and the next push ahead of the cursor asks again.
                self.cursors.forget_held(conversation);
                Ok(())
            } else {
                self.sync(connection, conversation).await
            }
        } else {
            Ok(())
        }
    }

    /// Asks for the page after the cursor of `conversation`, unless one is in flight.
    async fn sync(
        &mut self,
        connection: &mut Connection,
        conversation: ConversationId,
    ) -> Result<(), ClientError> {
        if !self.syncing.insert(conversation) {
            return Ok(());
        }
        connection
            .send_frame(&ClientFrame::Sync {
                id: format!("{SYNC_REQUEST}{}", conversation.0),
                conversation_id: conversation,
                after_seq: self.cursors.get(conversation),
                limit: Some(SYNC_PAGE),
            })
            .await
    }

    /// After a loss: reconnects, resends the unacked sends and syncs every conversation
    /// from its cursor, again on a new connection if this one is lost meanwhile. Fails
    /// with the reason when no node takes the device back before the deadline, or the
    /// session was revoked.
    async fn recover(
        &mut self,
        connection: &mut Connection,
        mut cause: ClientError,
        resend: Option<Resend<'_>>,
        targets: &watch::Receiver<Targets>,
        outcome: &mut Outcome,
        run: &Run,
    ) -> Result<(), String> {
        loop {
            *connection = self.reconnect(cause, targets).await?;
            outcome.reconnects += 1;
            match self
                .catch_up(connection, resend.as_ref(), outcome, run)
                .await
            {
                Ok(()) => return Ok(()),
                Err(err) => cause = err,
            }
        }
    }

    /// Opens a connection to the next node, then the one after, with a growing pause
    /// between failed attempts.
    async fn reconnect(
        &mut self,
        cause: ClientError,
        targets: &watch::Receiver<Targets>,
    ) -> Result<Connection, String> {
        if is_fatal(&cause) {
            return Err(format!("connection lost for good: {cause}"));
        }
        let fleet = self.failover.rejoin.fleet.clone();
        let mut backoff = REJOIN_BACKOFF_INITIAL;
        let mut attempts = 0u32;
        let mut last_error = String::new();
        loop {
            // The coordinator may publish a later deadline for the last deliveries.
            let published = targets.borrow().as_ref().map(|(_, at)| *at);
            let give_up_at = published.map_or(self.failover.give_up_at, |at| {
                at.max(self.failover.give_up_at)
            });
            if Instant::now() >= give_up_at {
                return Err(format!(
                    "connection lost ({cause}) and no node took the device back before the \
                     deadline ({attempts} attempts, last: {last_error})"
                ));
            }
            self.failover.rejoin.node = (self.failover.rejoin.node + 1) % fleet.nodes();
            attempts += 1;
            let node = self.failover.rejoin.node;
            let token = &self.failover.rejoin.token;
            match tokio::time::timeout_at(give_up_at, fleet.connect_to(node, token)).await {
                Ok(Ok(connection)) => return Ok(connection),
                Ok(Err(err)) => {
                    if err.downcast_ref::<ClientError>().is_some_and(is_fatal) {
                        return Err(format!("reconnect refused for good: {err:#}"));
                    }
                    last_error = format!("{err:#}");
                }
                Err(_) => last_error = "handshake timed out".to_owned(),
            }
            tokio::time::sleep(backoff.min(give_up_at.saturating_duration_since(Instant::now())))
                .await;
            backoff = (backoff * 2).min(REJOIN_BACKOFF_MAX);
        }
    }

    /// On a fresh connection: every unacked send again, oldest first, under its original
    /// `client_msg_id` (the server answers one it stored already with the original seq),
    /// then a sync of every conversation from the last seq held.
    async fn catch_up(
        &mut self,
        connection: &mut Connection,
        resend: Option<&Resend<'_>>,
        outcome: &mut Outcome,
        run: &Run,
    ) -> Result<(), ClientError> {
        self.syncing.clear();
        if let Some(resend) = resend {
            let mut unacked: Vec<(u32, u64)> =
                resend.unacked.iter().map(|(&n, &us)| (n, us)).collect();
            unacked.sort_unstable();
            for (n, sent_us) in unacked {
                let key = SendKey {
                    sender: resend.sender,
                    n,
                };
                let frame = send_frame(key, resend.conversation, sent_us, run.text_bytes);
                connection.send_frame(&frame).await?;
                outcome.resends += 1;
            }
        }
        for conversation in outcome.conversations.clone() {
            self.sync(connection, conversation).await?;
        }
        Ok(())
    }
}

/// A revoked session cannot be fixed by reconnecting.
fn is_fatal(err: &ClientError) -> bool {
    err.close_code() == Some(CLOSE_SESSION_REVOKED) || err.status() == Some(401)
}

/// One connection's part in a run, before it starts: whose it is, what it must hold,
/// and, for senders, `(sender index, conversation)`.
pub struct Wiring {
    pub connection: Connection,
    pub user: UserId,
    pub conversations: Vec<ConversationId>,
    pub sends: Option<(u32, ConversationId)>,
    /// With failover, where the device reconnects when its connection is lost.
    pub rejoin: Option<Rejoin>,
}

/// What a messaging run brought back, verified.
pub struct Played {
    pub verdict: crate::ledger::Verdict,
    /// What the server acked: the truth the devices were checked against.
    pub history: crate::ledger::History,
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub ack_latency: Histogram<u64>,
    pub e2e_latency: Histogram<u64>,
    pub outcomes: Vec<Outcome>,
    /// From the first send to the last ack.
    pub send_secs: f64,
    /// From the first send to the last delivery.
    pub deliver_secs: f64,
    /// The whole run, drain included, and the CPU time server and bench used in it.
    pub wall_secs: f64,
    pub server_cpu_secs: Option<f64>,
    pub bench_cpu_secs: f64,
    pub notes: Vec<String>,
    /// Whether the devices ran with failover, and what it took them, summed over devices.
    pub failover: bool,
    pub reconnects: u64,
    pub resends: u64,
    pub recovered: u64,
}

impl Played {
    /// The figures every messaging scenario reports: counts, rates, ack and end-to-end
    /// latency (as `ack_*` and `e2e_*`), and how the cores were shared.
    pub fn figures(&self, report: &mut crate::report::Report) {
        report.verdict = self.verdict;
        report.figure("sent", self.sent);
        report.figure("acked", self.acked);
        report.figure("delivered", self.delivered);
        report.rate("msgs_per_sec", self.acked, self.send_secs);
        report.rate("deliveries_per_sec", self.delivered, self.deliver_secs);
        report.latencies("ack_", &self.ack_latency);
        report.latencies("e2e_", &self.e2e_latency);
        if self.failover {
            report.figure("reconnects", self.reconnects);
            report.figure("resends", self.resends);
            report.figure("recovered_by_sync", self.recovered);
        }
        self.cpu_figures(report);
    }

    /// How the two processes shared the cores during the run, as figures.
    fn cpu_figures(&self, report: &mut crate::report::Report) {
        let round = |x: f64| (x * 100.0).round() / 100.0;
        report.figure("run_secs", round(self.wall_secs));
        if let Some(server) = self.server_cpu_secs {
            report.figure("server_cpu_secs", round(server));
        }
        report.figure("bench_cpu_secs", round(self.bench_cpu_secs));
    }
}

/// Runs the devices for `run.duration`, then drains and verifies.
pub async fn play(run: &Run, wiring: Vec<Wiring>, pacing: Pacing, quota: Option<u32>) -> Played {
    use crate::ledger::{DeviceUnderTest, History, Verdict};
    let (tallies_tx, mut tallies_rx) = mpsc::unbounded_channel();
    let (targets_tx, targets_rx) = watch::channel::<Targets>(None);
    let outcomes: Vec<Outcome> = wiring
        .iter()
        .map(|w| Outcome::new(w.user, w.conversations.clone()))
        .collect();
    let cpu = crate::server::CpuMark::now(&run.target.server_pids);
    let start = Instant::now();
    let start_us = run.clock.now_us();
    let stop_at = start + run.duration;
    let give_up_at = stop_at + run.drain;
    let senders = wiring.iter().filter(|w| w.sends.is_some()).count();
    let failover = wiring.iter().any(|w| w.rejoin.is_some());
    let mut senders_placed = 0;
    let mut first_send_at = || {
        senders_placed += 1;
        start + pacing.first_send_after(senders_placed - 1, senders)
    };
    let tasks: Vec<_> = wiring
        .into_iter()
        .zip(outcomes)
        .map(|(w, outcome)| {
            let device = Device {
                connection: w.connection,
                outcome,
                sender: w.sends.map(|(index, conversation)| Sender {
                    index,
                    conversation,
                    pacing,
                    first_send_at: first_send_at(),
                    quota,
                    stop_at,
                    give_up_at,
                    tallies: tallies_tx.clone(),
                }),
                failover: w.rejoin.map(|rejoin| Failover { rejoin, give_up_at }),
            };
            tokio::spawn(drive(device, run.clone(), targets_rx.clone()))
        })
        .collect();
    drop(tallies_tx);

    let mut notes = Vec::new();
    let mut tallies = Vec::with_capacity(senders);
    while tallies.len() < senders {
        match tokio::time::timeout_at(give_up_at + POLL * 4, tallies_rx.recv()).await {
            Ok(Some(tally)) => tallies.push(tally),
            _ => break,
        }
    }
    if tallies.len() < senders {
        notes.push(format!(
            "{} of {senders} senders never reported their acks",
            senders - tallies.len()
        ));
    }
    let mut verdict = Verdict::default();
    let history = History::from_tallies(&tallies, &mut verdict);
    let _ = targets_tx.send(Some((
        Arc::new(history.targets()),
        Instant::now() + run.drain,
    )));

    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(err) => notes.push(format!("a device task failed: {err}")),
        }
    }
    let mut ack_latency = latency_histogram();
    let mut e2e_latency = latency_histogram();
    let mut delivered = 0;
    let mut last_delivery_us = start_us;
    let mut failures = 0;
    let (mut reconnects, mut resends, mut recovered) = (0, 0, 0);
    for outcome in &outcomes {
        reconnects += outcome.reconnects;
        resends += outcome.resends;
        recovered += outcome.recovered;
        history.check(
            &DeviceUnderTest {
                log: &outcome.log,
                conversations: &outcome.conversations,
            },
            &mut verdict,
        );
        let _ = ack_latency.add(&outcome.ack_latency);
        let _ = e2e_latency.add(&outcome.e2e_latency);
        delivered += outcome
            .log
            .conversations
            .values()
            .map(|l| l.len() as u64)
            .sum::<u64>();
        last_delivery_us = last_delivery_us.max(outcome.last_delivery_us);
        if let Some(failure) = &outcome.failure {
            failures += 1;
            if failures == 1 {
                notes.push(format!("a connection ended early: {failure}"));
            }
        }
    }
    if failures > 0 {
        notes.push(format!("{failures} connections ended early"));
    }
    if failover {
        notes.push(format!(
            "failover: {reconnects} reconnects, {resends} sends sent again, {recovered} \
             entries recovered by sync"
        ));
    }
    if let Some(refusal) = outcomes.iter().find_map(|o| o.refusal.as_ref()) {
        notes.push(format!("the server refused sends, first: {refusal}"));
    }
    let (server_cpu_secs, bench_cpu_secs) = cpu.since(&run.target.server_pids);
    let acked = history.len() as u64;
    let last_ack_us = tallies
        .iter()
        .map(|t| t.last_ack_us)
        .max()
        .unwrap_or(start_us);
    Played {
        verdict,
        history,
        sent: tallies.iter().map(|t| t.sent).sum(),
        acked,
        delivered,
        ack_latency,
        e2e_latency,
        outcomes,
        send_secs: last_ack_us.saturating_sub(start_us) as f64 / 1e6,
        deliver_secs: last_delivery_us.saturating_sub(start_us) as f64 / 1e6,
        wall_secs: start.elapsed().as_secs_f64(),
        server_cpu_secs,
        bench_cpu_secs,
        notes,
        failover,
        reconnects,
        resends,
        recovered,
    }
}
