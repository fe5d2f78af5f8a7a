//! One device in a messaging scenario: a connection that receives everything its user
//! is sent and, if it is a sender, sends at its pace into one conversation. Direct and
//! group scenarios differ only in how they seed and wire devices together.
//!
//! A run has three phases, seen from a device: sending until `stop_at`; then waiting for
//! its outstanding acks and handing the sender's tally to the coordinator; then
//! receiving until the coordinator has published the last acked seq of every
//! conversation (the targets) and this device has reached them, or the drain deadline
//! passes, after which whatever is missing counts as lost.

use super::{Pacing, Run};
use crate::ledger::{stamp_of, stamped_text, DeviceLog, Received, SendKey, SenderTally};
use crate::progress::Counters;
use crate::report::latency_histogram;
use banter_client::{ClientError, Connection};
use banter_protocol::model::MessageContent;
use banter_protocol::{ClientFrame, ConversationId, ServerEvent, UserId};
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How often a waiting device looks at the coordinator's targets.
const POLL: Duration = Duration::from_millis(50);

/// The last acked seq of each conversation, and when to stop waiting for them.
pub type Targets = Option<(Arc<HashMap<ConversationId, i64>>, Instant)>;

pub struct Sender {
    /// This sender's number in the run; part of every `client_msg_id` it sends.
    pub index: u32,
    pub conversation: ConversationId,
    pub pacing: Pacing,
    /// Sends at most this many, if set; the sending phase ends early when they are out.
    pub quota: Option<u32>,
    pub stop_at: Instant,
    /// After this, outstanding sends are given up (they count as lost).
    pub give_up_at: Instant,
    pub tallies: mpsc::UnboundedSender<SenderTally>,
}

pub struct Device {
    pub connection: Connection,
    pub user: UserId,
    /// The conversations this device must hold in full at the end.
    pub conversations: Vec<ConversationId>,
    pub sender: Option<Sender>,
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
}

pub async fn drive(device: Device, run: Run, mut targets: watch::Receiver<Targets>) -> Outcome {
    let Device {
        mut connection,
        user,
        conversations,
        mut sender,
    } = device;
    let mut outcome = Outcome {
        user,
        conversations,
        log: DeviceLog::default(),
        ack_latency: latency_histogram(),
        e2e_latency: latency_histogram(),
        last_delivery_us: 0,
        failure: None,
        refusal: None,
    };
    let clock = run.clock;
    let counters = &run.counters;
    let mut tally = sender.as_ref().map(|_| SenderTally::default());
    // Send time (run µs) of each unacked send, by its counter.
    let mut unacked: HashMap<u32, u64> = HashMap::new();
    let mut next_n: u32 = 0;
    let mut next_send_at = Instant::now();
    let sender_stop = sender.as_ref().map_or(next_send_at, |s| s.stop_at);

    loop {
        let now = Instant::now();
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
                    let id = key.client_msg_id();
                    let sent_us = clock.now_us();
                    let frame = ClientFrame::SendMessage {
                        id: id.clone(),
                        conversation_id: s.conversation,
                        client_msg_id: id,
                        text: stamped_text(sent_us, run.text_bytes),
                        attachment: None,
                    };
                    if let Err(err) = connection.send_frame(&frame).await {
                        outcome.failure = Some(format!("send failed: {err}"));
                        break;
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
                    let _ = outcome.ack_latency.record(clock.since_us(sent_us).max(1));
                }
                if let Some(t) = tally.as_mut() {
                    t.acks.push((conversation_id, seq, key));
                    t.last_ack_us = clock.now_us();
                }
                Counters::add(&counters.acked, 1);
            }
            Ok(ServerEvent::MessageCreated { message }) => {
                let latency_us = match &message.content {
                    MessageContent::Text { text, .. } if message.sender_id != user => {
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
                Counters::add(&counters.delivered, 1);
            }
            Ok(ServerEvent::Error { id, code, message }) => {
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
            Err(err) => {
                outcome.failure = Some(format!("connection lost: {err}"));
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

/// One connection's part in a run, before it starts: whose it is, what it must hold,
/// and, for senders, `(sender index, conversation)`.
pub struct Wiring {
    pub connection: Connection,
    pub user: UserId,
    pub conversations: Vec<ConversationId>,
    pub sends: Option<(u32, ConversationId)>,
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
    let cpu = crate::server::CpuMark::now(&run.target.server_pids);
    let start = Instant::now();
    let start_us = run.clock.now_us();
    let stop_at = start + run.duration;
    let give_up_at = stop_at + run.drain;
    let senders = wiring.iter().filter(|w| w.sends.is_some()).count();
    let tasks: Vec<_> = wiring
        .into_iter()
        .map(|w| {
            let device = Device {
                connection: w.connection,
                user: w.user,
                conversations: w.conversations,
                sender: w.sends.map(|(index, conversation)| Sender {
                    index,
                    conversation,
                    pacing,
                    quota,
                    stop_at,
                    give_up_at,
                    tallies: tallies_tx.clone(),
                }),
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
    for outcome in &outcomes {
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
    }
}
