//! [`Session`]: a logged-in user's resilient connection. It reconnects when the
//! connection drops, resends unacknowledged messages with their original
//! `client_msg_id`, catches up on what it missed by seq, and hands the application each
//! message exactly once, in seq order per conversation.
//!
//! Design: a single owner, no background task. The session reads the socket only while
//! one of its `&mut self` methods is awaited, so every state change happens inside a
//! call the application made, in the order it made them. What arrives while the
//! application waits for something else (an ack, say) is queued and handed out by
//! [`Session::next_event`]. The price is the one of any reader: an application that
//! stops calling the session for three heartbeat intervals is disconnected by the
//! server, and its next call reconnects and catches up.
//!
//! Cancelling a call (dropping its future) leaves the session consistent: queued events
//! and unacknowledged sends stay, and a reply that arrives later is dropped, or, for a
//! send, reported as [`SessionEvent::Acked`].

use crate::client::Client;
use crate::connection::{Connection, Hello};
use crate::cursor::{Cursors, Offered};
use crate::error::{ClientError, Result};
use banter_protocol::model::Message;
use banter_protocol::{
    ClientFrame, ConversationId, ErrorCode, MessageId, RequestId, ServerEvent, UserId,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// The close code of a revoked or expired session: reconnecting cannot help.
pub const CLOSE_SESSION_REVOKED: u16 = 4001;

/// First pause between reconnect attempts; it doubles up to [`RECONNECT_BACKOFF_MAX`].
const RECONNECT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Longest pause between reconnect attempts.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Pause before resending sends the server refused for a transient reason (the user's
/// message rate, `internal`, `shutting_down`); a second refills at least one send at any
/// rate the server allows.
const TRANSIENT_RESEND_DELAY: Duration = Duration::from_secs(1);
/// Transient refusals of one send after which it fails instead of going out again: a
/// server refusing it for this long is broken, not busy.
const TRANSIENT_RESENDS_MAX: u32 = 5;

/// How a [`Session`] behaves. `SessionOptions::default()` suits tests and interactive clients.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// How long a request (send, recall, mark read, ping) may wait for its reply,
    /// reconnects included.
    pub request_timeout: Duration,
    /// Entries asked for per `sync` frame.
    pub sync_page_limit: u32,
    /// Connection attempts per reconnect before the error is returned to the caller.
    pub reconnect_attempts_max: u32,
    /// Sends that may wait for their ack at once; one more is [`ClientError::TooManyPending`].
    pub pending_sends_max: usize,
    /// Events that may wait for [`Session::next_event`]. While this many are queued, the
    /// session stops reading the socket, and calls that must read (a send waiting for
    /// its ack) fail with [`ClientError::Backlog`] until the application takes some.
    pub events_buffered_max: usize,
    /// Where delivery starts. The default, all cursors at 0, delivers every
    /// conversation's whole visible history first, oldest first.
    pub cursors: Cursors,
    /// Start at the present instead: each conversation the user is in at start-up
    /// begins at its current `last_seq`, so only newer entries are delivered.
    /// (Conversations joined later are still delivered from their beginning.)
    pub skip_history: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            request_timeout: Duration::from_secs(10),
            sync_page_limit: 100,
            reconnect_attempts_max: 5,
            pending_sends_max: 1024,
            events_buffered_max: 65_536,
            cursors: Cursors::new(),
            skip_history: false,
        }
    }
}

/// The server's confirmation that an entry is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub conversation_id: ConversationId,
    /// The send's client id; `None` for a recall.
    pub client_msg_id: Option<String>,
    pub message_id: MessageId,
    pub seq: i64,
    pub created_at_ms: i64,
}

/// What [`Session::next_event`] hands the application, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A stream entry (text, recall or system notice), exactly once and in seq order
    /// within its conversation, whether it arrived live or by sync. Includes the
    /// user's own sends.
    Message(Message),
    /// A send made with [`Session::queue_text`] (or one whose caller gave up waiting)
    /// is durable.
    Acked(Ack),
    /// The server refused a send made with [`Session::queue_text`]; it is not retried.
    /// (A send refused for a transient reason, `rate_limited`, `internal` or
    /// `shutting_down`, is not reported at once: the session resends it after a pause, and
    /// reports it only after its fifth transient refusal.)
    SendFailed {
        conversation_id: ConversationId,
        client_msg_id: String,
        code: ErrorCode,
        message: String,
    },
    /// The connection dropped and a new one is up; missed messages follow as `Message`s.
    /// Not emitted for [`Session::reconnect`], whose caller knows.
    Reconnected,
    /// Any other server event (typing, presence, read pointers, friends, conversations
    /// joined or left, errors not tied to a request), as it arrived.
    Server(ServerEvent),
}

/// A send not yet acknowledged.
#[derive(Debug, Clone)]
struct PendingSend {
    conversation_id: ConversationId,
    client_msg_id: String,
    text: String,
    /// Transient refusals so far (see [`TRANSIENT_RESENDS_MAX`]).
    transient_refusals: u32,
}

/// What a request id on the current connection was for.
#[derive(Debug, Clone)]
enum Inflight {
    Send {
        conversation_id: ConversationId,
        client_msg_id: String,
    },
    Sync(ConversationId),
    /// A request a method is (or was) waiting on: mark read, recall, ping.
    Call,
}

/// The reply a method is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    Send(ConversationId, String),
    Call(RequestId),
}

#[derive(Debug)]
enum Reply {
    Ack(Ack),
    Done,
    Pong,
    Rejected { code: ErrorCode, message: String },
}

/// A resilient, logged-in connection. See the [module docs](self).
///
/// ```no_run
/// # async fn demo(conversation: banter_protocol::ConversationId) -> banter_client::Result<()> {
/// use banter_client::{Client, Session, SessionEvent};
/// use std::time::Duration;
/// let mut client = Client::new("http://127.0.0.1:8080")?;
/// client.login("alice", "correct horse", "laptop").await?;
/// let mut session = Session::start(client).await?;
/// let ack = session.send_text(conversation, "hi").await?;
/// loop {
///     match session.next_event(Duration::from_secs(30)).await? {
///         SessionEvent::Message(message) => println!("{}: {:?}", message.seq, message.content),
///         _ => {}
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Session {
    client: Client,
    options: SessionOptions,
    /// `None` after a loss or [`Session::disconnect`]; the next call that reads reconnects.
    conn: Option<Connection>,
    /// Whether `conn` has been caught up (sends resent, syncs started). False only if
    /// a reconnect was cancelled half-way; the next call that reads reconnects again.
    caught_up: bool,
    hello: Hello,
    /// Whether `conn` is `None` because the connection failed (the application hears
    /// of the reconnect) rather than because it asked.
    lost: bool,
    cursors: Cursors,
    /// Events for the application, oldest first.
    ready: VecDeque<SessionEvent>,
    /// Unacknowledged sends, oldest first; resent in this order after a reconnect.
    pending: Vec<PendingSend>,
    /// Pending sends the server refused as over the user's message rate, by
    /// (conversation, client id), to resend on this connection at `resend_at`.
    held: Vec<(ConversationId, String)>,
    resend_at: Option<Instant>,
    /// Requests on the current connection still awaiting their reply.
    inflight: HashMap<RequestId, Inflight>,
    /// Conversations with a `sync` in flight on the current connection.
    syncing: HashSet<ConversationId>,
    waiting: Option<Waiting>,
    reply: Option<Reply>,
    next_request: u64,
}

impl Session {
    /// Connects with a logged-in client and starts delivering from the beginning of
    /// every conversation (see [`SessionOptions`] to start elsewhere).
    pub async fn start(client: Client) -> Result<Session> {
        Session::start_with(client, SessionOptions::default()).await
    }

    /// Connects with a logged-in client and the given options. A failure to connect
    /// is returned at once, without retrying.
    pub async fn start_with(client: Client, mut options: SessionOptions) -> Result<Session> {
        let conn = client.connect().await?;
        let hello = conn.hello().clone();
        let cursors = std::mem::take(&mut options.cursors);
        let skip_history = options.skip_history;
        let mut session = Session {
            client,
            options,
            conn: Some(conn),
            caught_up: false,
            hello,
            lost: false,
            cursors,
            ready: VecDeque::new(),
            pending: Vec::new(),
            held: Vec::new(),
            resend_at: None,
            inflight: HashMap::new(),
            syncing: HashSet::new(),
            waiting: None,
            reply: None,
            next_request: 0,
        };
        session.catch_up(skip_history).await?;
        Ok(session)
    }

    /// The client the session uses, for REST calls as the same user.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The user the session is logged in as.
    pub fn user_id(&self) -> UserId {
        self.hello.user_id
    }

    /// The latest connection's `hello`.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The highest seq of `conversation` delivered (or queued for delivery) contiguously.
    pub fn cursor(&self, conversation: ConversationId) -> i64 {
        self.cursors.get(conversation)
    }

    /// All cursors, e.g. to save them and later resume with [`SessionOptions::cursors`].
    pub fn cursors(&self) -> &Cursors {
        &self.cursors
    }

    /// How many sends are waiting for their ack.
    pub fn unacked(&self) -> usize {
        self.pending.len()
    }

    /// Whether a connection is up (as far as the session knows without reading).
    pub fn is_connected(&self) -> bool {
        self.usable() && self.conn.as_ref().is_some_and(|c| !c.is_closed())
    }

    /// The next event, waiting at most `timeout` (a zero timeout only takes what has
    /// already arrived). Reconnects and catches up if the connection dropped, which may
    /// take longer than `timeout`; gives up with the connection error after
    /// [`SessionOptions::reconnect_attempts_max`] attempts, or at once when the session
    /// was revoked (close code 4001, or HTTP 401 on reconnect).
    pub async fn next_event(&mut self, timeout: Duration) -> Result<SessionEvent> {
        let deadline = Instant::now() + timeout;
        self.waiting = None;
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(event);
            }
            self.pump_or_recover(deadline).await?;
            if Instant::now() >= deadline && self.ready.is_empty() {
                return Err(ClientError::Timeout);
            }
        }
    }

    /// The next [`SessionEvent::Message`], dropping any other events before it.
    pub async fn next_message(&mut self, timeout: Duration) -> Result<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let SessionEvent::Message(message) = self.next_event(remaining).await? {
                return Ok(message);
            }
        }
    }

    /// Takes every queued event without reading the socket.
    pub fn take_events(&mut self) -> Vec<SessionEvent> {
        self.ready.drain(..).collect()
    }

    /// Sends a text message with a fresh client id and waits for its ack. If the
    /// connection drops meanwhile, the session reconnects and resends it with the same
    /// client id, so it is stored once. On [`ClientError::Timeout`] the send stays
    /// queued; a later ack is reported as [`SessionEvent::Acked`].
    pub async fn send_text(&mut self, conversation: ConversationId, text: &str) -> Result<Ack> {
        let client_msg_id = new_client_msg_id();
        self.send_text_with_id(conversation, &client_msg_id, text)
            .await
    }

    /// [`Session::send_text`] with the caller's client id. Sending an id the server has
    /// seen in this conversation returns the original ack and stores nothing new.
    pub async fn send_text_with_id(
        &mut self,
        conversation: ConversationId,
        client_msg_id: &str,
        text: &str,
    ) -> Result<Ack> {
        let deadline = Instant::now() + self.options.request_timeout;
        let already_pending = self
            .pending
            .iter()
            .any(|p| p.conversation_id == conversation && p.client_msg_id == client_msg_id);
        if !already_pending {
            self.enqueue(conversation, client_msg_id, text).await?;
        }
        let waiting = Waiting::Send(conversation, client_msg_id.to_owned());
        match self.wait_reply(waiting, deadline).await? {
            None => Err(not_connected()),
            Some(Reply::Ack(ack)) => Ok(ack),
            Some(Reply::Rejected { code, message }) => Err(ClientError::Rejected { code, message }),
            Some(other) => Err(unexpected(&other)),
        }
    }

    /// Sends a text message without waiting: returns its fresh client id at once. The
    /// outcome arrives later as [`SessionEvent::Acked`] or [`SessionEvent::SendFailed`].
    /// If no connection is up, the send waits for the next (re)connect.
    pub async fn queue_text(&mut self, conversation: ConversationId, text: &str) -> Result<String> {
        let client_msg_id = new_client_msg_id();
        self.enqueue(conversation, &client_msg_id, text).await?;
        Ok(client_msg_id)
    }

    /// [`Session::queue_text`] with the caller's client id.
    pub async fn queue_text_with_id(
        &mut self,
        conversation: ConversationId,
        client_msg_id: &str,
        text: &str,
    ) -> Result<()> {
        self.enqueue(conversation, client_msg_id, text).await
    }

    /// Recalls a message and waits for the ack of the recall entry. Not retried: if the
    /// connection drops before the reply, this returns [`ClientError::Closed`] (and the
    /// session reconnects), since the recall may or may not have happened.
    pub async fn recall(
        &mut self,
        conversation: ConversationId,
        message_id: MessageId,
    ) -> Result<Ack> {
        let frame = move |id| ClientFrame::RecallMessage {
            id,
            conversation_id: conversation,
            message_id,
        };
        match self.call(frame, false).await? {
            Reply::Ack(ack) => Ok(ack),
            Reply::Rejected { code, message } => Err(ClientError::Rejected { code, message }),
            other => Err(unexpected(&other)),
        }
    }

    /// Moves the user's read pointer in `conversation` forward to `seq`, and waits until
    /// the server confirms. Retried across a reconnect (it is idempotent).
    pub async fn mark_read(&mut self, conversation: ConversationId, seq: i64) -> Result<()> {
        let frame = move |id| ClientFrame::MarkRead {
            id,
            conversation_id: conversation,
            seq,
        };
        match self.call(frame, true).await? {
            Reply::Done => Ok(()),
            Reply::Rejected { code, message } => Err(ClientError::Rejected { code, message }),
            other => Err(unexpected(&other)),
        }
    }

    /// Tells the other members the user is typing. Fire and forget: no reply, not
    /// retried, and the server drops it silently when sent too often.
    pub async fn typing(&mut self, conversation: ConversationId) -> Result<()> {
        if !self.usable() {
            self.recover(None).await?;
        }
        let frame = ClientFrame::Typing {
            conversation_id: conversation,
        };
        match self.send_frame(&frame).await {
            Err(err) if err.is_connection_lost() => self.recover(Some(err)).await,
            other => other,
        }
    }

    /// Round trip of an application-level `ping`.
    pub async fn ping(&mut self) -> Result<Duration> {
        let started = Instant::now();
        match self.call(|id| ClientFrame::Ping { id }, true).await? {
            Reply::Pong => Ok(started.elapsed()),
            Reply::Rejected { code, message } => Err(ClientError::Rejected { code, message }),
            other => Err(unexpected(&other)),
        }
    }

    /// Drops the connection without a close handshake (as a network failure would) and
    /// reconnects: unacknowledged sends are resent and missed messages are synced.
    /// Gives up with the connection error after the configured attempts.
    pub async fn reconnect(&mut self) -> Result<()> {
        self.conn = None;
        self.lost = false;
        self.recover(None).await
    }

    /// Drops the connection without a close handshake and stays offline until the next
    /// call that needs the connection (or [`Session::reconnect`]). Sends queued
    /// meanwhile go out on reconnect.
    pub fn disconnect(&mut self) {
        self.conn = None;
        self.lost = false;
    }

    /// Closes the connection cleanly (close code 1000).
    pub async fn close(mut self) -> Result<()> {
        match self.conn.take() {
            Some(conn) => conn.close().await,
            None => Ok(()),
        }
    }

    // ----- requests -----

    /// Adds a send to the unacknowledged ones and sends it if a connection is up.
    async fn enqueue(
        &mut self,
        conversation: ConversationId,
        client_msg_id: &str,
        text: &str,
    ) -> Result<()> {
        if self.pending.len() >= self.options.pending_sends_max {
            return Err(ClientError::TooManyPending {
                max: self.options.pending_sends_max,
            });
        }
        let send = PendingSend {
            conversation_id: conversation,
            client_msg_id: client_msg_id.to_owned(),
            text: text.to_owned(),
            transient_refusals: 0,
        };
        self.pending.push(send.clone());
        if self.usable() {
            // A failure here is a lost connection: the send stays pending and goes out
            // again on the reconnect that the next reading call makes.
            if let Err(err) = self.transmit(&send).await {
                if !err.is_connection_lost() {
                    self.pending.pop();
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Sends one pending send on the current connection under a new request id.
    async fn transmit(&mut self, send: &PendingSend) -> Result<()> {
        let id = self.next_request_id();
        self.inflight.insert(
            id.clone(),
            Inflight::Send {
                conversation_id: send.conversation_id,
                client_msg_id: send.client_msg_id.clone(),
            },
        );
        let frame = ClientFrame::SendMessage {
            id,
            conversation_id: send.conversation_id,
            client_msg_id: send.client_msg_id.clone(),
            text: send.text.clone(),
            attachment: None,
        };
        self.send_frame(&frame).await
    }

    /// Sends a request and waits for its reply. With `retry`, a connection lost before
    /// the reply means the request is sent again on the new connection; without, the
    /// call fails with [`ClientError::Closed`] (the session reconnects).
    async fn call(
        &mut self,
        frame: impl Fn(RequestId) -> ClientFrame,
        retry: bool,
    ) -> Result<Reply> {
        let deadline = Instant::now() + self.options.request_timeout;
        loop {
            if !self.usable() {
                self.recover(None).await?;
            }
            let id = self.next_request_id();
            self.inflight.insert(id.clone(), Inflight::Call);
            let reply = match self.send_frame(&frame(id.clone())).await {
                Ok(()) => self.wait_reply(Waiting::Call(id), deadline).await?,
                Err(err) if err.is_connection_lost() => {
                    // The next turn (or the next call) reconnects.
                    self.conn = None;
                    self.lost = true;
                    None
                }
                Err(err) => return Err(err),
            };
            match reply {
                Some(reply) => return Ok(reply),
                None if retry && Instant::now() < deadline => continue,
                None => {
                    return Err(ClientError::Closed {
                        code: None,
                        reason: "connection lost before the reply".to_owned(),
                    })
                }
            }
        }
    }

    /// Reads until the reply `waiting` names arrives. For a send, a lost connection is
    /// handled here: the reconnect resends it. For a call, a reconnect means the reply
    /// will never come, and this returns `None` for [`Session::call`] to decide.
    async fn wait_reply(&mut self, waiting: Waiting, deadline: Instant) -> Result<Option<Reply>> {
        let is_call = matches!(waiting, Waiting::Call(_));
        self.waiting = Some(waiting);
        self.reply = None;
        let result = loop {
            if let Some(reply) = self.reply.take() {
                break Ok(Some(reply));
            }
            if Instant::now() >= deadline {
                break Err(ClientError::Timeout);
            }
            if self.ready.len() >= self.options.events_buffered_max {
                break Err(ClientError::Backlog {
                    events: self.ready.len(),
                });
            }
            match self.pump_or_recover(deadline).await {
                Ok(true) if is_call => break Ok(None),
                Ok(_) => {}
                Err(err) => break Err(err),
            }
        };
        self.waiting = None;
        result
    }

    // ----- reading and dispatching -----

    /// Reads and handles one event, reconnecting first if there is no connection, and
    /// after a loss. Returns whether it reconnected.
    async fn pump_or_recover(&mut self, deadline: Instant) -> Result<bool> {
        if !self.usable() {
            self.recover(None).await?;
            return Ok(true);
        }
        match self.pump(deadline).await {
            Ok(()) => Ok(false),
            Err(err) if err.is_connection_lost() => {
                self.recover(Some(err)).await?;
                Ok(true)
            }
            Err(err) => Err(err),
        }
    }

    /// Reads one event from the connection and handles it; or, when sends held back for
    /// the message rate are due before `deadline`, resends them instead.
    async fn pump(&mut self, deadline: Instant) -> Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(not_connected());
        };
        let until = self.resend_at.map_or(deadline, |at| at.min(deadline));
        match conn.next_event_until(until).await {
            Ok(event) => self.dispatch(event).await,
            Err(ClientError::Timeout) if until < deadline => self.resend_held().await,
            Err(err) => Err(err),
        }
    }

    /// Resends the sends refused for the message rate, oldest first.
    async fn resend_held(&mut self) -> Result<()> {
        self.resend_at = None;
        for (conversation_id, client_msg_id) in std::mem::take(&mut self.held) {
            let send = self
                .pending
                .iter()
                .find(|p| p.conversation_id == conversation_id && p.client_msg_id == client_msg_id)
                .cloned();
            if let Some(send) = send {
                self.transmit(&send).await?;
            }
        }
        Ok(())
    }

    async fn dispatch(&mut self, event: ServerEvent) -> Result<()> {
        match event {
            ServerEvent::Ack {
                id,
                conversation_id,
                client_msg_id,
                message_id,
                seq,
                created_at_ms,
            } => {
                let ack = Ack {
                    conversation_id,
                    client_msg_id,
                    message_id,
                    seq,
                    created_at_ms,
                };
                match self.inflight.remove(&id) {
                    Some(Inflight::Send {
                        conversation_id,
                        client_msg_id,
                    }) => {
                        self.pending.retain(|p| {
                            p.conversation_id != conversation_id || p.client_msg_id != client_msg_id
                        });
                        let waiting = Waiting::Send(conversation_id, client_msg_id);
                        if self.waiting.as_ref() == Some(&waiting) {
                            self.reply = Some(Reply::Ack(ack));
                        } else {
                            self.ready.push_back(SessionEvent::Acked(ack));
                        }
                    }
                    Some(Inflight::Call) => self.answer_call(id, Reply::Ack(ack)),
                    Some(Inflight::Sync(_)) | None => {
                        tracing::debug!(%id, "ack for no request of this connection; dropped");
                    }
                }
            }
            ServerEvent::Done { id } => self.reply_to_call(id, Reply::Done),
            ServerEvent::Pong { id } => self.reply_to_call(id, Reply::Pong),
            ServerEvent::Error {
                id: Some(id),
                code,
                message,
            } if self.inflight.contains_key(&id) => self.request_failed(id, code, message),
            ServerEvent::Synced {
                id,
                conversation_id,
                messages,
                has_more,
            } => self.synced(id, conversation_id, messages, has_more).await?,
            ServerEvent::MessageCreated { message } => {
                let conversation = message.conversation_id;
                match self.cursors.offer_live(message) {
                    Offered::Duplicate => {}
                    Offered::Ready(messages) => self.deliver(messages),
                    Offered::Gap { .. } => self.sync_unless_syncing(conversation).await?,
                }
            }
            ServerEvent::ConversationJoined { conversation } => {
                let id = conversation.id;
                let behind = conversation.last_seq > self.cursors.get(id);
                self.ready
                    .push_back(SessionEvent::Server(ServerEvent::ConversationJoined {
                        conversation,
                    }));
                if behind {
                    self.sync_unless_syncing(id).await?;
                }
            }
            ServerEvent::Hello { .. } => {
                tracing::debug!("hello after the first frame; ignored");
            }
            other => self.ready.push_back(SessionEvent::Server(other)),
        }
        Ok(())
    }

    /// A reply that only a call gets (`done`, `pong`).
    fn reply_to_call(&mut self, id: RequestId, reply: Reply) {
        if matches!(self.inflight.remove(&id), Some(Inflight::Call)) {
            self.answer_call(id, reply);
        }
    }

    /// Hands the reply of call `id` (already removed from `inflight`) to its waiter.
    fn answer_call(&mut self, id: RequestId, reply: Reply) {
        if self.waiting == Some(Waiting::Call(id)) {
            self.reply = Some(reply);
        }
        // Otherwise its caller gave up waiting: nobody is left to tell.
    }

    /// Counts a refusal of a pending send; true if it is transient and the send has not
    /// used up its resends.
    fn may_resend(
        &mut self,
        conversation_id: ConversationId,
        client_msg_id: &str,
        code: ErrorCode,
    ) -> bool {
        let transient = matches!(
            code,
            ErrorCode::RateLimited | ErrorCode::Internal | ErrorCode::ShuttingDown
        );
        let Some(pending) = self
            .pending
            .iter_mut()
            .find(|p| p.conversation_id == conversation_id && p.client_msg_id == client_msg_id)
        else {
            return false;
        };
        pending.transient_refusals += 1;
        transient && pending.transient_refusals <= TRANSIENT_RESENDS_MAX
    }

    fn request_failed(&mut self, id: RequestId, code: ErrorCode, message: String) {
        match self.inflight.remove(&id) {
            // Refused for now (the user's message rate, a server failure, a shutdown): not
            // stored, so it stays pending and goes out again after a pause, with the same
            // client id (docs/protocol.md §7.3), a bounded number of times.
            Some(Inflight::Send {
                conversation_id,
                client_msg_id,
            }) if self.may_resend(conversation_id, &client_msg_id, code) => {
                self.held.push((conversation_id, client_msg_id));
                self.resend_at
                    .get_or_insert_with(|| Instant::now() + TRANSIENT_RESEND_DELAY);
            }
            Some(Inflight::Send {
                conversation_id,
                client_msg_id,
            }) => {
                self.pending.retain(|p| {
                    p.conversation_id != conversation_id || p.client_msg_id != client_msg_id
                });
                let waiting = Waiting::Send(conversation_id, client_msg_id.clone());
                if self.waiting.as_ref() == Some(&waiting) {
                    self.reply = Some(Reply::Rejected { code, message });
                } else {
                    self.ready.push_back(SessionEvent::SendFailed {
                        conversation_id,
                        client_msg_id,
                        code,
                        message,
                    });
                }
            }
            Some(Inflight::Sync(conversation)) => {
                self.syncing.remove(&conversation);
                // A conversation the user has left answers not_found; that is expected.
                if code != ErrorCode::NotFound {
                    self.ready
                        .push_back(SessionEvent::Server(ServerEvent::Error {
                            id: Some(id),
                            code,
                            message,
                        }));
                }
            }
            Some(Inflight::Call) => self.answer_call(id, Reply::Rejected { code, message }),
            None => {}
        }
    }

    async fn synced(
        &mut self,
        id: RequestId,
        conversation: ConversationId,
        messages: Vec<Message>,
        has_more: bool,
    ) -> Result<()> {
        match self.inflight.remove(&id) {
            Some(Inflight::Sync(c)) if c == conversation => {}
            _ => {
                tracing::debug!(%id, "synced for no sync of this connection; dropped");
                return Ok(());
            }
        }
        self.syncing.remove(&conversation);
        let empty = messages.is_empty();
        let ready = self.cursors.apply_sync(conversation, messages);
        self.deliver(ready);
        if has_more && !empty {
            self.sync(conversation).await?;
        } else if self.cursors.gap(conversation).is_some() {
            // Held messages arrived after this page was read: ask again. But an empty
            // final page means the server has nothing to fill the gap with yet; rather
            // than ask forever, drop the held messages: a later sync brings them.
            if empty {
                tracing::debug!(%conversation, "sync cannot fill the gap yet; held messages dropped");
                self.cursors.forget_held(conversation);
            } else {
                self.sync(conversation).await?;
            }
        }
        Ok(())
    }

    fn deliver(&mut self, messages: Vec<Message>) {
        self.ready
            .extend(messages.into_iter().map(SessionEvent::Message));
    }

    async fn sync_unless_syncing(&mut self, conversation: ConversationId) -> Result<()> {
        if self.syncing.contains(&conversation) {
            Ok(())
        } else {
            self.sync(conversation).await
        }
    }

    /// Asks for the page after the cursor of `conversation`.
    async fn sync(&mut self, conversation: ConversationId) -> Result<()> {
        let id = self.next_request_id();
        self.inflight
            .insert(id.clone(), Inflight::Sync(conversation));
        self.syncing.insert(conversation);
        let frame = ClientFrame::Sync {
            id,
            conversation_id: conversation,
            after_seq: self.cursors.get(conversation),
            limit: Some(i64::from(self.options.sync_page_limit)),
        };
        self.send_frame(&frame).await
    }

    async fn send_frame(&mut self, frame: &ClientFrame) -> Result<()> {
        match self.conn.as_mut() {
            Some(conn) => conn.send_frame(frame).await,
            None => Err(not_connected()),
        }
    }

    // ----- reconnecting -----

    /// Reconnects with a capped backoff, unless `cause` (the error that lost the
    /// connection) says it cannot help: the session was revoked. Announces the
    /// reconnect with [`SessionEvent::Reconnected`] if the connection was lost rather
    /// than dropped on request.
    async fn recover(&mut self, cause: Option<ClientError>) -> Result<()> {
        self.conn = None;
        if let Some(cause) = cause {
            self.lost = true;
            if is_fatal(&cause) {
                return Err(cause);
            }
            tracing::debug!(error = %cause, "connection lost; reconnecting");
        }
        let mut backoff = RECONNECT_BACKOFF_INITIAL;
        let mut last_error = not_connected();
        for attempt in 0..self.options.reconnect_attempts_max {
            if attempt > 0 {
                sleep(backoff).await;
                backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
            }
            match self.connect_and_catch_up().await {
                Ok(()) => {
                    if std::mem::take(&mut self.lost) {
                        self.ready.push_back(SessionEvent::Reconnected);
                    }
                    return Ok(());
                }
                Err(err) if is_fatal(&err) => {
                    self.conn = None;
                    return Err(err);
                }
                Err(err) => {
                    tracing::debug!(attempt, error = %err, "reconnect failed");
                    self.conn = None;
                    last_error = err;
                }
            }
        }
        Err(last_error)
    }

    async fn connect_and_catch_up(&mut self) -> Result<()> {
        let conn = self.client.connect().await?;
        self.hello = conn.hello().clone();
        self.conn = Some(conn);
        self.catch_up(false).await
    }

    /// Whether there is a connection that was caught up after it was made.
    fn usable(&self) -> bool {
        self.conn.is_some() && self.caught_up
    }

    /// On a fresh connection: forgets the old connection's requests, resends every
    /// unacknowledged send, and syncs each conversation whose `last_seq` is past its
    /// cursor. The conversation list is read after connecting, so that anything newer
    /// arrives live. Syncs continue page by page as events are read.
    async fn catch_up(&mut self, skip_history: bool) -> Result<()> {
        self.caught_up = false;
        self.inflight.clear();
        self.syncing.clear();
        // Every pending send goes out again below, the held ones included.
        self.held.clear();
        self.resend_at = None;
        for send in self.pending.clone() {
            self.transmit(&send).await?;
        }
        let conversations = self.client.conversations().await?;
        for summary in conversations {
            if skip_history {
                self.cursors.advance_to(summary.id, summary.last_seq);
            } else if summary.last_seq > self.cursors.get(summary.id) {
                self.sync(summary.id).await?;
            }
        }
        self.caught_up = true;
        Ok(())
    }

    fn next_request_id(&mut self) -> RequestId {
        self.next_request += 1;
        format!("s{}", self.next_request)
    }
}

/// A revoked or expired session cannot be fixed by reconnecting.
fn is_fatal(err: &ClientError) -> bool {
    err.close_code() == Some(CLOSE_SESSION_REVOKED)
        || err.status() == Some(401)
        || err.code() == Some(ErrorCode::Unauthorized)
}

fn not_connected() -> ClientError {
    ClientError::Closed {
        code: None,
        reason: "not connected".to_owned(),
    }
}

fn unexpected(reply: &Reply) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {reply:?}"))
}

/// A fresh client message id: a UUID v4, as the protocol asks.
pub fn new_client_msg_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Applications (the load generator) move sessions into spawned tasks.
    #[allow(dead_code)]
    fn session_and_its_futures_are_send(mut session: Session) {
        assert_send(&session);
        assert_send(&session.next_event(Duration::ZERO));
        assert_send(&session.send_text(ConversationId(1), "hi"));
        assert_send(&session.recall(ConversationId(1), MessageId(1)));
        assert_send(&session.mark_read(ConversationId(1), 1));
        assert_send(&session.reconnect());
        assert_send(&Session::start(
            Client::new("http://localhost:1").expect("url"),
        ));
    }
}
