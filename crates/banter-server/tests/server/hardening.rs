//! The server's own defences, as a client sees them: where a token is accepted, revoked
//! sessions that race an upgrade, the WebSocket closing handshake, bounds on what one
//! connection may have queued or ask for, HTTP header deadlines and connection bounds,
//! and the bounded password-hashing queue.

use crate::common::*;
use banter_client::{Client, ClientError, Connection, Session, SessionEvent};
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent, UserId};
use futures_util::future::join_all;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one raw HTTP/1.1 request (the head as given, then a blank line) and returns the
/// response head, or the error when the server closed the connection without one.
async fn raw_request(base_url: &str, head: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(base_url.trim_start_matches("http://")).await?;
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(b"\r\n").await?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf)).await??;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        if response.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// Waits until the server closes `stream` (EOF or reset), or fails after [`WAIT`].
async fn expect_server_hangs_up(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn rest_routes_take_the_token_only_from_authorization() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let token = alice.token().unwrap().to_string();
    let protocols = format!("banter.v1, banter.auth.{token}");
    let head = format!(
        "GET /api/v1/me HTTP/1.1\r\nHost: test\r\nSec-WebSocket-Protocol: {protocols}\r\nConnection: close\r\n"
    );
    let response = raw_request(&server.base_url, &head).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "a REST call with the token only in the subprotocol header is unauthorized: {response}"
    );
    let head = format!(
        "GET /api/v1/me HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n"
    );
    let response = raw_request(&server.base_url, &head).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // The upgrade still takes it from the subprotocol, as browsers need.
    let anonymous = server.client();
    let mut conn = anonymous
        .connect_with_headers(&[("Sec-WebSocket-Protocol", &protocols)])
        .await
        .expect("the upgrade accepts the auth subprotocol");
    assert_eq!(conn.user_id(), alice.me().await.unwrap().id);
    conn.send_frame(&ClientFrame::Ping { id: "p".into() })
        .await
        .unwrap();
    expect_event(&mut conn, |e| {
        matches!(e, ServerEvent::Pong { .. }).then_some(())
    })
    .await;
}

/// What became of one upgrade raced against its logout.
enum RaceOutcome {
    /// The upgrade was refused (401): the logout came first.
    Refused,
    /// The socket opened and was then closed with 4001.
    Closed,
    /// The socket opened and was still open after [`WAIT`].
    Survived,
}

/// Sends a logout and, `offset` later, an upgrade with the same token, over two
/// connections opened beforehand, and reports what became of the socket.
async fn race_upgrade_against_logout(address: &str, token: &str, offset: Duration) -> RaceOutcome {
    let mut logout = TcpStream::connect(address).await.unwrap();
    let mut upgrade = TcpStream::connect(address).await.unwrap();
    let logout_request = format!(
        "DELETE /api/v1/sessions/current HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let upgrade_request = format!(
        "GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: banter.v1\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    logout.write_all(logout_request.as_bytes()).await.unwrap();
    // The offsets sweep the moment the upgrade arrives across the logout's own work
    // (finer than the runtime's timer can sleep), so that some land in between its
    // check of the session and its kick.
    let sent = std::time::Instant::now();
    while sent.elapsed() < offset {
        std::hint::spin_loop();
    }
    upgrade.write_all(upgrade_request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if received.starts_with(b"HTTP/1.1 401") {
            return RaceOutcome::Refused;
        }
        // A server frame is not masked: 0x88 (close), the length, then the code 4001.
        if received
            .windows(4)
            .any(|w| w[0] == 0x88 && w[2..] == 4001u16.to_be_bytes())
        {
            return RaceOutcome::Closed;
        }
        match tokio::time::timeout_at(deadline, upgrade.read(&mut buf)).await {
            Err(_) => return RaceOutcome::Survived,
            Ok(Ok(0)) | Ok(Err(_)) => panic!(
                "the socket ended without a 4001 close frame: {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Races many sessions' upgrades against their own logouts. A socket that opens must
/// still be closed with 4001; one that stays open for [`WAIT`] survived its revoked
/// session. (Sessions come from the admin API: one password hash per round, not one
/// per session.) On several threads, so that the offsets do not stall the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_socket_never_outlives_a_logout_that_raced_its_upgrade() {
    const ROUNDS: usize = 8;
    const SESSIONS: usize = 250;
    /// The offsets run from 0 to SESSIONS × this.
    const OFFSET_STEP: Duration = Duration::from_micros(8);
    const ADMIN_TOKEN: &str = "an admin token of at least 32 characters";
    // Without an fsync per commit, logouts commit while upgrades are still in flight.
    let Some(server) = TestServer::start_with(|c| {
        c.admin_token = Some(banter_server::auth::AdminToken::new(ADMIN_TOKEN));
        c.durability = banter_store::Durability::Relaxed;
    })
    .await
    else {
        return;
    };
    let admin = banter_client::AdminClient::new(&server.base_url, ADMIN_TOKEN).unwrap();
    let address = server.base_url.trim_start_matches("http://").to_string();
    let (mut refused, mut closed, mut survived) = (0, 0, 0);
    for round in 0..ROUNDS {
        let names: Vec<String> = (0..SESSIONS).map(|i| format!("racer{round}x{i}")).collect();
        let users = admin.create_users(&names, PASSWORD, None).await.unwrap();
        let races = users.into_iter().enumerate().map(|(i, user)| {
            let address = address.clone();
            tokio::spawn(async move {
                race_upgrade_against_logout(&address, &user.token, OFFSET_STEP * i as u32).await
            })
        });
        for outcome in join_all(races).await {
            match outcome.expect("race task") {
                RaceOutcome::Refused => refused += 1,
                RaceOutcome::Closed => closed += 1,
                RaceOutcome::Survived => survived += 1,
            }
        }
    }
    assert!(
        closed > 0,
        "no upgrade won the race; the test shows nothing"
    );
    assert_eq!(
        survived, 0,
        "{survived} of {} sockets opened during their logout stayed open ({refused} upgrades were refused)",
        closed + survived
    );
}

/// Reads until the connection ends; returns the acks read and how it ended.
async fn acks_until_closed(conn: &mut Connection) -> (usize, ClientError) {
    let mut acks = 0;
    loop {
        match conn.next_event(WAIT).await {
            Ok(ServerEvent::Ack { .. }) => acks += 1,
            Ok(_) => continue,
            Err(err) => return (acks, err),
        }
    }
}

/// Pipelines `count` sends without reading anything.
async fn send_burst(conn: &mut Connection, conversation_id: ConversationId, count: usize) {
    for i in 0..count {
        let frame = ClientFrame::SendMessage {
            id: format!("s{i}"),
            conversation_id,
            client_msg_id: format!("burst-{i}"),
            text: format!("burst {i}"),
            attachment: None,
        };
        conn.send_frame(&frame).await.unwrap();
    }
}

/// Frames sent after the server decided to close: they reach it unread. A server that
/// drops such a socket makes the kernel reset it, destroying what the client had not
/// read yet. Errors are ignored: the connection may be gone already.
async fn keep_talking(conn: &mut Connection) {
    for i in 0..3 {
        let _ = conn
            .send_frame(&ClientFrame::Ping {
                id: format!("late{i}"),
            })
            .await;
    }
}

/// How many messages of `sender` the conversation holds.
async fn stored_count(client: &Client, conversation: ConversationId, sender: UserId) -> usize {
    client
        .messages_after(conversation, 0, 200)
        .await
        .unwrap()
        .messages
        .iter()
        .filter(|m| m.sender_id == sender)
        .count()
}

const BURST: usize = 40;

#[tokio::test]
async fn a_logout_closes_with_4001_after_every_ack_and_the_close_frame_arrive() {
    let Some(server) = TestServer::start_with(|c| c.limits.frames_per_second_max = 1000).await
    else {
        return;
    };
    let (mut alice, alice_profile) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut conn = alice.connect().await.unwrap();
    send_burst(&mut conn, conversation, BURST).await;
    alice.logout().await.unwrap();
    keep_talking(&mut conn).await;
    let (acks, ended) = acks_until_closed(&mut conn).await;
    assert_eq!(ended.close_code(), Some(4001), "{ended}");
    assert_eq!(
        acks,
        stored_count(&bob, conversation, alice_profile.id).await
    );
}

#[tokio::test]
async fn a_shutdown_closes_with_1001_after_every_ack_and_the_close_frame_arrive() {
    let Some(mut server) = TestServer::start_with(|c| c.limits.frames_per_second_max = 1000).await
    else {
        return;
    };
    let (alice, alice_profile) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut conn = alice.connect().await.unwrap();
    send_burst(&mut conn, conversation, BURST).await;
    // The shutdown starts first, so the frames sent meanwhile reach a closing connection.
    let ((), (acks, ended)) = tokio::join!(server.stop(), async {
        keep_talking(&mut conn).await;
        acks_until_closed(&mut conn).await
    });
    assert_eq!(ended.close_code(), Some(1001), "{ended}");
    server.restart().await;
    assert_eq!(
        acks,
        stored_count(&bob, conversation, alice_profile.id).await
    );
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_4008_after_its_acks_and_the_close_frame_arrive() {
    // A queue of two frames overflows as soon as the writer fans out a batch of sends.
    let Some(server) = TestServer::start_with(|c| {
        c.limits.outbound_queue_frames_max = 2;
        c.limits.frames_per_second_max = 1000;
    })
    .await
    else {
        return;
    };
    let (alice, alice_profile) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut conn = alice.connect().await.unwrap();
    send_burst(&mut conn, conversation, BURST).await;
    // Bob's burst overflows Alice's queue for certain; once Bob has his acks, the hub
    // has kicked her connection, so what she sends next reaches a closing connection.
    // (Bob's own queue overflows too; his session reconnects and resends.)
    let mut bob_session = Session::start(bob.clone()).await.unwrap();
    for i in 0..BURST {
        bob_session
            .queue_text(conversation, &format!("bob {i}"))
            .await
            .unwrap();
    }
    let mut bob_acks = 0;
    while bob_acks < BURST {
        if let SessionEvent::Acked(_) = bob_session.next_event(WAIT).await.unwrap() {
            bob_acks += 1;
        }
    }
    keep_talking(&mut conn).await;
    let (acks, ended) = acks_until_closed(&mut conn).await;
    assert_eq!(ended.close_code(), Some(4008), "{ended}");
    assert_eq!(
        acks,
        stored_count(&bob, conversation, alice_profile.id).await
    );
}

#[tokio::test]
async fn a_queue_full_in_bytes_closes_with_4008_and_the_session_resyncs_without_loss() {
    // Room for about two of these messages' frames, whatever the frame count.
    const TEXT_BYTES: usize = 8 * 1024;
    let Some(server) = TestServer::start_with(|c| {
        c.limits.outbound_queue_bytes_max = 2 * TEXT_BYTES + 1024;
        c.limits.frames_per_second_max = 1000;
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut alice_session = Session::start(alice).await.unwrap();
    let mut bob_session = Session::start(bob).await.unwrap();
    const SENDS: usize = 30;
    let text = "x".repeat(TEXT_BYTES);
    for _ in 0..SENDS {
        alice_session.queue_text(conversation, &text).await.unwrap();
    }
    let mut acked = 0;
    while acked < SENDS {
        if let SessionEvent::Acked(_) = alice_session.next_event(WAIT).await.unwrap() {
            acked += 1;
        }
    }
    let mut seqs = Vec::new();
    let mut reconnected = false;
    while seqs.len() < SENDS {
        match bob_session.next_event(WAIT).await.unwrap() {
            SessionEvent::Message(message) => seqs.push(message.seq),
            SessionEvent::Reconnected => reconnected = true,
            _ => {}
        }
    }
    assert!(reconnected, "the byte bound closed the connection (4008)");
    assert_eq!(seqs, (1..=SENDS as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_sync_reply_stops_at_its_byte_budget_and_says_there_is_more() {
    const TEXT_BYTES: usize = 10 * 1024;
    const BUDGET: usize = 32 * 1024;
    let Some(server) = TestServer::start_with(|c| {
        c.limits.sync_reply_bytes_max = BUDGET;
        c.limits.frames_per_second_max = 1000;
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut alice_session = Session::start(alice).await.unwrap();
    const SENDS: usize = 12;
    for i in 0..SENDS {
        let text = format!("{i:02}{}", "y".repeat(TEXT_BYTES));
        alice_session.queue_text(conversation, &text).await.unwrap();
    }
    let mut acked = 0;
    while acked < SENDS {
        if let SessionEvent::Acked(_) = alice_session.next_event(WAIT).await.unwrap() {
            acked += 1;
        }
    }

    let mut conn = bob.connect().await.unwrap();
    let mut after_seq = 0;
    let mut pages = 0;
    loop {
        let frame = ClientFrame::Sync {
            id: format!("sync{pages}"),
            conversation_id: conversation,
            after_seq,
            limit: Some(500),
        };
        conn.send_frame(&frame).await.unwrap();
        let (messages, has_more) = expect_event(&mut conn, |e| match e {
            ServerEvent::Synced {
                messages, has_more, ..
            } => Some((messages.clone(), *has_more)),
            _ => None,
        })
        .await;
        pages += 1;
        assert!(!messages.is_empty());
        assert!(
            messages.len() * TEXT_BYTES <= BUDGET,
            "a reply of {} entries of {TEXT_BYTES} bytes is over the budget",
            messages.len()
        );
        assert_eq!(messages[0].seq, after_seq + 1, "pages follow on");
        after_seq = messages.last().unwrap().seq;
        if !has_more {
            break;
        }
    }
    assert_eq!(after_seq, SENDS as i64, "every entry arrived");
    assert!(
        pages >= SENDS / 3,
        "the budget split the history into pages"
    );

    // The SDK's session pages the same way and gets everything.
    let mut bob_session = Session::start(bob).await.unwrap();
    let mut seqs = Vec::new();
    while seqs.len() < SENDS {
        if let SessionEvent::Message(message) = bob_session.next_event(WAIT).await.unwrap() {
            seqs.push(message.seq);
        }
    }
    assert_eq!(seqs, (1..=SENDS as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn silent_and_half_sent_requests_are_closed_after_the_header_timeout() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.http_header_timeout = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let address = server.base_url.trim_start_matches("http://").to_string();
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let mut half = TcpStream::connect(&address).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    // Kept alive after a complete request: the same deadline bounds the idle wait.
    let mut idle = TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    expect_server_hangs_up(&mut silent).await;
    expect_server_hangs_up(&mut half).await;
    expect_server_hangs_up(&mut idle).await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    server.client().health().await.expect("still serving");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused_and_its_connection_closed() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.http_body_timeout = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let address = server.base_url.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let started = tokio::time::Instant::now();
    stream
        .write_all(
            b"POST /api/v1/sessions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        response.extend_from_slice(&buf[..n]);
    }
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    expect_server_hangs_up(&mut stream).await;
}

#[tokio::test]
async fn at_the_http_connection_bound_a_new_connection_is_closed_at_once() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.http_connections_max = 2;
        c.limits.http_header_timeout = Duration::from_secs(2);
    })
    .await
    else {
        return;
    };
    let address = server.base_url.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        // A complete request and its answer: the connection is being served.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let refused = raw_request(&server.base_url, "GET /healthz HTTP/1.1\r\nHost: test\r\n").await;
    assert!(
        refused.as_ref().map_or(true, |r| r.is_empty()),
        "no response at the bound: {refused:?}"
    );
    // Once the held connections time out, new ones are served again.
    for stream in &mut held {
        expect_server_hangs_up(stream).await;
    }
    server.client().health().await.expect("served again");
}

#[tokio::test]
async fn password_checks_beyond_the_hashing_queue_get_503_with_retry_after() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.password_hashes_max = 1;
        c.limits.password_hash_queue_max = 0;
    })
    .await
    else {
        return;
    };
    server.user("alice").await;
    let body = format!(r#"{{"username":"alice","password":"{PASSWORD}"}}"#);
    let head = format!(
        "POST /api/v1/sessions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The body follows the head in `head`; raw_request adds one more CRLF, which the
    // server reads as the start of a next request on a closing connection and ignores.
    let responses = join_all((0..8).map(|_| raw_request(&server.base_url, &head))).await;
    let responses: Vec<String> = responses.into_iter().map(Result::unwrap).collect();
    let busy: Vec<&String> = responses
        .iter()
        .filter(|r| r.starts_with("HTTP/1.1 503"))
        .collect();
    assert!(
        responses.iter().any(|r| r.starts_with("HTTP/1.1 200")),
        "{responses:?}"
    );
    assert!(!busy.is_empty(), "{responses:?}");
    for response in busy {
        assert!(
            response.to_ascii_lowercase().contains("retry-after: 1"),
            "{response}"
        );
    }
    // The SDK sees the refusal as `shutting_down`.
    let attempts = join_all((0..8).map(|_| async {
        let mut client = server.client();
        client.login("alice", PASSWORD, "x").await.err()
    }))
    .await;
    assert!(attempts
        .iter()
        .flatten()
        .all(|err| err.code() == Some(ErrorCode::ShuttingDown) && err.status() == Some(503)));
}

#[tokio::test]
async fn a_busy_refusal_spends_no_login_budget() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.password_hashes_max = 1;
        c.limits.password_hash_queue_max = 0;
        c.limits.login_failures_per_address =
            banter_server::ratelimit::Rate::new(10, Duration::from_secs(900));
    })
    .await
    else {
        return;
    };
    server.user("alice").await;
    // Ten wrong passwords at once from one address: all fit its budget of ten, one is
    // hashed and the others are refused as busy.
    let attempts = join_all((0..10).map(|_| async {
        let mut client = server.client();
        client.login("alice", "wrong password", "x").await.err()
    }))
    .await;
    let codes: Vec<Option<ErrorCode>> = attempts
        .iter()
        .map(|e| e.as_ref().and_then(|e| e.code()))
        .collect();
    assert!(
        codes.contains(&Some(ErrorCode::ShuttingDown)),
        "some attempts are refused as busy: {codes:?}"
    );
    // Only the checked ones were charged, so the owner still gets in from that address.
    let mut owner = server.client();
    owner
        .login("alice", PASSWORD, "x")
        .await
        .expect("busy refusals left the address budget for the owner");
}
