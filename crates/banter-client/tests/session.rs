//! The SDK against a small scripted server in this process: just enough of the Banter
//! protocol (hello, send/ack with client-id dedupe, sync, one conversation, the
//! conversation list) to check the session's promises without the real server:
//! in-order exactly-once delivery, gap filling, resend with the same client id after a
//! dropped connection, and what it does with each close code. The real server's
//! behaviour is tested by its own suite, which drives it through this SDK.

use banter_client::protocol::model::{
    ConversationKind, ConversationSummary, Message, MessageContent, Role,
};
use banter_client::protocol::{
    ClientFrame, ConversationId, ErrorBody, ErrorCode, MessageId, ServerEvent, UserId,
};
use banter_client::{Client, ClientError, Session, SessionEvent};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role as WsRole};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

const TOKEN: &str = "test-token";
const ALICE: UserId = UserId(1);
const BOB: UserId = UserId(2);
const CONV: ConversationId = ConversationId(10);
const WAIT: Duration = Duration::from_secs(5);
/// Bound on one request head the mock server reads.
const HEAD_BYTES_MAX: usize = 16 * 1024;
/// Bound on the commands queued for one mock connection.
const COMMANDS_MAX: usize = 256;

enum Command {
    /// An event, already serialized (once, for every connection).
    Event(String),
    Close(u16),
}

#[derive(Default)]
struct State {
    /// The one conversation's stream; seq = index + 1.
    messages: Vec<Message>,
    /// client_msg_id -> the message it created.
    by_client_id: HashMap<String, Message>,
    /// Whether new messages are pushed to connections as `message_created`.
    quiet: bool,
    /// Sends to store but not acknowledge: the connection is cut instead.
    sends_to_cut: u32,
    connections: Vec<mpsc::Sender<Command>>,
    connects: u32,
}

#[derive(Clone)]
struct MockServer {
    url: String,
    state: Arc<Mutex<State>>,
}

impl MockServer {
    async fn start() -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let server = MockServer {
            url,
            state: Arc::default(),
        };
        let accepting = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = accepting.clone();
                tokio::spawn(async move { server.serve(stream).await });
            }
        });
        server
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("mock state")
    }

    fn client(&self) -> Client {
        Client::new(&self.url).expect("url").with_token(TOKEN)
    }

    /// Bob posts `text`; pushed live unless the server is quiet.
    fn post_from_bob(&self, text: &str) -> Message {
        self.store(BOB, None, text)
    }

    fn store(&self, sender: UserId, client_msg_id: Option<&str>, text: &str) -> Message {
        let content = MessageContent::Text {
            text: text.to_owned(),
            recalled: false,
        };
        self.store_with(sender, client_msg_id, content)
    }

    fn store_content(&self, sender: UserId, content: MessageContent) -> Message {
        self.store_with(sender, None, content)
    }

    fn store_with(
        &self,
        sender: UserId,
        client_msg_id: Option<&str>,
        content: MessageContent,
    ) -> Message {
        let mut state = self.state();
        let seq = state.messages.len() as i64 + 1;
        let message = Message {
            id: MessageId(100 + seq),
            conversation_id: CONV,
            seq,
            sender_id: sender,
            client_msg_id: client_msg_id.map(str::to_owned),
            created_at_ms: seq,
            content,
        };
        state.messages.push(message.clone());
        if let Some(id) = client_msg_id {
            state.by_client_id.insert(id.to_owned(), message.clone());
        }
        if !state.quiet {
            let event = serde_json::to_string(&ServerEvent::MessageCreated {
                message: message.clone(),
            })
            .expect("serializes");
            state
                .connections
                .retain(|tx| tx.try_send(Command::Event(event.clone())).is_ok());
        }
        message
    }

    fn close_all(&self, code: u16) {
        let mut state = self.state();
        for tx in state.connections.drain(..) {
            let _ = tx.try_send(Command::Close(code));
        }
    }

    async fn serve(&self, mut stream: TcpStream) {
        let Some(head) = read_head(&mut stream).await else {
            return;
        };
        let mut lines = head.lines();
        let path = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .unwrap_or_default()
            .to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let authorized = headers.get("authorization") == Some(&format!("Bearer {TOKEN}"));
        if !authorized {
            let body = ErrorBody {
                code: ErrorCode::Unauthorized,
                message: "no valid token".to_owned(),
            };
            respond(&mut stream, "401 Unauthorized", &body).await;
            return;
        }
        match path.as_str() {
            "/ws" => {
                let key = headers
                    .get("sec-websocket-key")
                    .cloned()
                    .unwrap_or_default();
                let response = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: banter.v1\r\n\r\n",
                    derive_accept_key(key.as_bytes())
                );
                if stream.write_all(response.as_bytes()).await.is_ok() {
                    let ws = WebSocketStream::from_raw_socket(stream, WsRole::Server, None).await;
                    self.run_socket(ws).await;
                }
            }
            "/api/v1/conversations" => {
                let summary = self.summary();
                respond(&mut stream, "200 OK", &vec![summary]).await;
            }
            _ => {
                let body = ErrorBody {
                    code: ErrorCode::NotFound,
                    message: "no such route".to_owned(),
                };
                respond(&mut stream, "404 Not Found", &body).await;
            }
        }
    }

    fn summary(&self) -> ConversationSummary {
        let state = self.state();
        ConversationSummary {
            id: CONV,
            kind: ConversationKind::Direct,
            name: None,
            avatar_url: None,
            peer: None,
            peer_online: Some(true),
            my_role: Role::Member,
            member_count: 2,
            last_seq: state.messages.len() as i64,
            read_seq: 0,
            unread_count: 0,
            last_message: state.messages.last().cloned(),
            last_activity_ms: 0,
        }
    }

    async fn run_socket(&self, mut ws: WebSocketStream<TcpStream>) {
        let (tx, mut rx) = mpsc::channel(COMMANDS_MAX);
        {
            let mut state = self.state();
            state.connections.push(tx);
            state.connects += 1;
        }
        let hello = ServerEvent::Hello {
            protocol_version: 1,
            user_id: ALICE,
            heartbeat_interval_secs: 30,
            message_bytes_max: 16 * 1024,
            frame_bytes_max: 64 * 1024,
            recall_window_secs: 120,
            typing_interval_ms: 2000,
            frames_per_second_max: 100,
            file_bytes_max: 100 * 1024 * 1024,
            voice_duration_ms_max: 600_000,
        };
        let snapshot = ServerEvent::PresenceSnapshot {
            online_user_ids: vec![BOB],
        };
        for event in [hello, snapshot] {
            if ws.send(text(&event)).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                command = rx.recv() => match command {
                    Some(Command::Event(event)) => {
                        if ws.send(WsMessage::text(event)).await.is_err() {
                            return;
                        }
                    }
                    Some(Command::Close(code)) => {
                        let frame = CloseFrame { code: code.into(), reason: "bye".into() };
                        let _ = ws.close(Some(frame)).await;
                        return;
                    }
                    None => return,
                },
                incoming = ws.next() => match incoming {
                    Some(Ok(WsMessage::Text(frame))) => {
                        let frame: ClientFrame = serde_json::from_str(frame.as_str()).expect("valid frame");
                        match self.answer(frame) {
                            Some(reply) => {
                                if ws.send(text(&reply)).await.is_err() {
                                    return;
                                }
                            }
                            // Cut: drop the socket without a close frame.
                            None => return,
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                },
            }
        }
    }

    /// The reply to one frame, or `None` to cut the connection instead.
    fn answer(&self, frame: ClientFrame) -> Option<ServerEvent> {
        match frame {
            ClientFrame::SendMessage {
                id,
                client_msg_id,
                text,
                ..
            } => {
                let existing = self.state().by_client_id.get(&client_msg_id).cloned();
                let message = match existing {
                    Some(message) => message,
                    None => self.store(ALICE, Some(&client_msg_id), &text),
                };
                {
                    let mut state = self.state();
                    if state.sends_to_cut > 0 {
                        state.sends_to_cut -= 1;
                        return None;
                    }
                }
                Some(ServerEvent::Ack {
                    id,
                    conversation_id: CONV,
                    client_msg_id: Some(client_msg_id),
                    message_id: message.id,
                    seq: message.seq,
                    created_at_ms: message.created_at_ms,
                })
            }
            ClientFrame::Sync {
                id,
                after_seq,
                limit,
                ..
            } => {
                let state = self.state();
                let limit = limit.unwrap_or(50) as usize;
                let after: Vec<Message> = state
                    .messages
                    .iter()
                    .filter(|m| m.seq > after_seq)
                    .cloned()
                    .collect();
                Some(ServerEvent::Synced {
                    id,
                    conversation_id: CONV,
                    has_more: after.len() > limit,
                    messages: after.into_iter().take(limit).collect(),
                })
            }
            ClientFrame::MarkRead { id, .. } => Some(ServerEvent::Done { id }),
            ClientFrame::Ping { id } => Some(ServerEvent::Pong { id }),
            // Only the newest message may be recalled; older ones are "too late".
            ClientFrame::RecallMessage { id, message_id, .. } => {
                let newest = self.state().messages.last().map(|m| m.id);
                if newest != Some(message_id) {
                    return Some(ServerEvent::Error {
                        id: Some(id),
                        code: ErrorCode::RecallWindowExpired,
                        message: "too late".to_owned(),
                    });
                }
                let recall = self.store_content(
                    ALICE,
                    MessageContent::Recall {
                        target_id: message_id,
                    },
                );
                Some(ServerEvent::Ack {
                    id,
                    conversation_id: CONV,
                    client_msg_id: None,
                    message_id: recall.id,
                    seq: recall.seq,
                    created_at_ms: recall.created_at_ms,
                })
            }
            ClientFrame::Typing { .. } => Some(ServerEvent::TypingStarted {
                conversation_id: CONV,
                user_id: ALICE,
            }),
        }
    }
}

async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= HEAD_BYTES_MAX {
            return None;
        }
        head.push(stream.read_u8().await.ok()?);
    }
    String::from_utf8(head).ok()
}

async fn respond<T: serde::Serialize>(stream: &mut TcpStream, status: &str, body: &T) {
    let body = serde_json::to_string(body).expect("serializes");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

fn text(event: &ServerEvent) -> WsMessage {
    WsMessage::text(serde_json::to_string(event).expect("serializes"))
}

fn text_of(message: &Message) -> &str {
    match &message.content {
        MessageContent::Text { text, .. } => text,
        other => panic!("expected a text, got {other:?}"),
    }
}

async fn next_texts(session: &mut Session, count: usize) -> Vec<(i64, String)> {
    let mut texts = Vec::new();
    for _ in 0..count {
        let message = session.next_message(WAIT).await.expect("a message");
        texts.push((message.seq, text_of(&message).to_owned()));
    }
    texts
}

fn numbered(items: &[(i64, &str)]) -> Vec<(i64, String)> {
    items.iter().map(|(s, t)| (*s, (*t).to_owned())).collect()
}

#[tokio::test]
async fn start_delivers_history_then_live_messages() {
    let server = MockServer::start().await;
    server.post_from_bob("one");
    server.post_from_bob("two");
    let mut session = Session::start(server.client()).await.expect("start");
    assert_eq!(session.user_id(), ALICE);
    assert_eq!(
        next_texts(&mut session, 2).await,
        numbered(&[(1, "one"), (2, "two")])
    );
    server.post_from_bob("three");
    assert_eq!(next_texts(&mut session, 1).await, numbered(&[(3, "three")]));
    assert_eq!(session.cursor(CONV), 3);
}

#[tokio::test]
async fn skip_history_starts_at_the_present() {
    let server = MockServer::start().await;
    server.post_from_bob("old");
    let options = banter_client::SessionOptions {
        skip_history: true,
        ..Default::default()
    };
    let mut session = Session::start_with(server.client(), options)
        .await
        .expect("start");
    assert_eq!(session.cursor(CONV), 1);
    server.post_from_bob("new");
    assert_eq!(next_texts(&mut session, 1).await, numbered(&[(2, "new")]));
}

#[tokio::test]
async fn own_send_is_acked_and_delivered_once() {
    let server = MockServer::start().await;
    let mut session = Session::start(server.client()).await.expect("start");
    let ack = session.send_text(CONV, "hi").await.expect("ack");
    assert_eq!(ack.seq, 1);
    server.post_from_bob("reply");
    // Exactly once: the echo of our own send, then bob's reply, nothing in between.
    assert_eq!(
        next_texts(&mut session, 2).await,
        numbered(&[(1, "hi"), (2, "reply")])
    );
}

#[tokio::test]
async fn same_client_id_twice_returns_the_same_ack() {
    let server = MockServer::start().await;
    let mut session = Session::start(server.client()).await.expect("start");
    let first = session
        .send_text_with_id(CONV, "fixed-id", "hi")
        .await
        .expect("ack");
    let second = session
        .send_text_with_id(CONV, "fixed-id", "hi")
        .await
        .expect("ack");
    assert_eq!(first, second);
    assert_eq!(server.state().messages.len(), 1);
}

#[tokio::test]
async fn a_gap_in_live_messages_is_filled_by_sync_in_order() {
    let server = MockServer::start().await;
    let mut session = Session::start(server.client()).await.expect("start");
    server.state().quiet = true;
    server.post_from_bob("missed 1");
    server.post_from_bob("missed 2");
    server.state().quiet = false;
    server.post_from_bob("live 3");
    assert_eq!(
        next_texts(&mut session, 3).await,
        numbered(&[(1, "missed 1"), (2, "missed 2"), (3, "live 3")])
    );
    server.post_from_bob("live 4");
    assert_eq!(
        next_texts(&mut session, 1).await,
        numbered(&[(4, "live 4")])
    );
}

#[tokio::test]
async fn reconnect_catches_up_by_seq() {
    let server = MockServer::start().await;
    let mut session = Session::start(server.client()).await.expect("start");
    server.post_from_bob("before");
    assert_eq!(
        next_texts(&mut session, 1).await,
        numbered(&[(1, "before")])
    );
    session.disconnect();
    server.post_from_bob("while away 1");
    server.post_from_bob("while away 2");
    session.reconnect().await.expect("reconnect");
    server.post_from_bob("after");
    assert_eq!(
        next_texts(&mut session, 3).await,
        numbered(&[(2, "while away 1"), (3, "while away 2"), (4, "after")])
    );
    assert_eq!(server.state().connects, 2);
}

#[tokio::test]
async fn a_send_cut_off_before_its_ack_is_resent_with_the_same_client_id() {
    let server = MockServer::start().await;
    let mut session = Session::start(server.client()).await.expect("start");
    server.state().sends_to_cut = 1;
    let ack = session.send_text(CONV, "survives").await.expect("ack");
    assert_eq!(ack.seq, 1);
    assert_eq!(server.state().messages.len(), 1, "stored once");
    assert_eq!(server.state().connects, 2);
    let mut reconnected = false;
    let message = loop {
        match session.next_event(WAIT).await.expect("an event") {
            SessionEvent::Reconnected => reconnected = true,
            SessionEvent::Message(message) => break message,
            _ => {}
        }
    };
    assert!(reconnected, "the application hears of the reconnect");
    assert_eq!((message.seq, text_of(&message)), (1, "survives"));
    server.post_from_bob("next");
    assert_eq!(next_texts(&mut session, 1).await, numbered(&[(2, "next")]));
}

#[tokio::test]
async fn sends_queued_offline_go_out_on_reconnect() {
    let server = MockServer::start().await;
    let mut session = Session::start(server.client()).await.expect("start");
    session.disconnect();
    let first = session.queue_text(CONV, "a").await.expect("queued");
    let second = session.queue_text(CONV, "b").await.expect("queued");
    assert_eq!(session.unacked(), 2);
    session.reconnect().await.expect("reconnect");
    let mut acked = Vec::new();
    let mut texts = Vec::new();
    while acked.len() < 2 || texts.len() < 2 {
        match session.next_event(WAIT).await.expect("an event") {
            SessionEvent::Acked(ack) => acked.push(ack.client_msg_id.expect("send ack")),
            SessionEvent::Message(message) => texts.push(text_of(&message).to_owned()),
            _ => {}
        }
    }
    assert_eq!(acked, vec![first, second]);
    assert_eq!(texts, vec!["a", "b"]);
    assert_eq!(session.unacked(), 0);
}

#[tokio::test]
async fn a_slow_consumer_close_reconnects_and_resyncs() {
    let server = MockServer::start().await;
    let mut session = Session::start(server.client()).await.expect("start");
    server.state().quiet = true;
    server.post_from_bob("dropped by the slow queue");
    server.close_all(4008);
    assert_eq!(
        next_texts(&mut session, 1).await,
        numbered(&[(1, "dropped by the slow queue")])
    );
    assert_eq!(server.state().connects, 2);
}

#[tokio::test]
async fn a_revoked_session_is_not_reconnected() {
    let server = MockServer::start().await;
    let mut session = Session::start(server.client()).await.expect("start");
    server.close_all(4001);
    let err = loop {
        match session.next_event(WAIT).await {
            Ok(_) => continue,
            Err(err) => break err,
        }
    };
    assert_eq!(err.close_code(), Some(4001), "{err}");
    assert_eq!(server.state().connects, 1);
}

#[tokio::test]
async fn requests_get_their_replies() {
    let server = MockServer::start().await;
    let mut session = Session::start(server.client()).await.expect("start");
    session.mark_read(CONV, 0).await.expect("done");
    session.ping().await.expect("pong");
    let first = session.send_text(CONV, "first").await.expect("ack");
    let second = session.send_text(CONV, "second").await.expect("ack");
    let err = session
        .recall(CONV, first.message_id)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some(ErrorCode::RecallWindowExpired));
    let recall = session.recall(CONV, second.message_id).await.expect("ack");
    assert_eq!((recall.seq, recall.client_msg_id), (3, None));
    let recall_entry = loop {
        let message = session.next_message(WAIT).await.expect("a message");
        if message.seq == 3 {
            break message.content;
        }
    };
    assert_eq!(
        recall_entry,
        MessageContent::Recall {
            target_id: second.message_id
        }
    );
    session.typing(CONV).await.expect("sent");
    let typing = loop {
        if let SessionEvent::Server(event @ ServerEvent::TypingStarted { .. }) =
            session.next_event(WAIT).await.expect("an event")
        {
            break event;
        }
    };
    assert_eq!(
        typing,
        ServerEvent::TypingStarted {
            conversation_id: CONV,
            user_id: ALICE
        }
    );
}

#[tokio::test]
async fn connection_without_token_is_refused_with_401() {
    let server = MockServer::start().await;
    let anonymous = Client::new(&server.url).expect("url");
    let err = anonymous.connect().await.expect_err("refused");
    assert_eq!(err.status(), Some(401), "{err}");
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized));
}

#[tokio::test]
async fn raw_connection_reports_the_close_code() {
    let server = MockServer::start().await;
    let mut conn = server.client().connect().await.expect("connect");
    assert_eq!(conn.hello().user_id, ALICE);
    assert_eq!(conn.hello().heartbeat_interval, Duration::from_secs(30));
    let snapshot = conn.next_event(WAIT).await.expect("presence");
    assert!(matches!(snapshot, ServerEvent::PresenceSnapshot { .. }));
    server.close_all(1001);
    let err = conn.next_event(WAIT).await.expect_err("closed");
    assert!(
        matches!(
            err,
            ClientError::Closed {
                code: Some(1001),
                ..
            }
        ),
        "{err}"
    );
    let again = conn.next_event(WAIT).await.expect_err("still closed");
    assert_eq!(again.close_code(), Some(1001));
}
