//! [`Connection`]: one raw WebSocket to the server, speaking [`ClientFrame`]s up and
//! [`ServerEvent`]s down, with nothing remembered across connections.
//!
//! The connection reads only while its owner awaits [`Connection::next_event`]; server
//! pings are answered during those reads. An owner that stops reading for three
//! heartbeat intervals will find the connection closed by the server, which is the
//! point of heartbeats. For cursors, resends and reconnects, use [`Session`](crate::Session).

use crate::client::{api_error, Client};
use crate::error::{ClientError, Result};
use banter_protocol::{ClientFrame, ErrorCode, ServerEvent, UserId, SUBPROTOCOL};
use futures_util::{SinkExt, StreamExt};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{
    HeaderName, HeaderValue, AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How many heartbeat intervals without any frame from the server mean the connection
/// is dead. The server applies the same rule to us.
const SILENT_HEARTBEATS_MAX: u32 = 3;

/// How long to wait for the server's half of the close handshake before dropping the socket.
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// Initial read buffer of a connection; see [`socket_config`].
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// What the server said in its `hello`, the first frame on every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub protocol_version: u32,
    /// The user this connection is authenticated as.
    pub user_id: UserId,
    /// The server pings at this interval.
    pub heartbeat_interval: Duration,
    /// Largest text message accepted, in bytes of UTF-8.
    pub message_bytes_max: usize,
    /// Largest frame accepted, in bytes.
    pub frame_bytes_max: usize,
    /// How long after sending a user may recall their own message.
    pub recall_window: Duration,
    /// At most one `typing` per conversation is forwarded per this interval.
    pub typing_interval: Duration,
    /// Text frames per second the connection may send (burst twice that).
    pub frames_per_second_max: u32,
    /// Largest upload accepted, in bytes.
    pub file_bytes_max: u64,
    /// Longest voice message accepted.
    pub voice_duration_max: Duration,
}

/// One authenticated WebSocket, past its `hello`. Made by [`Client::connect`].
#[derive(Debug)]
pub struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    hello: Hello,
    /// How long one outgoing frame may take to be written.
    write_timeout: Duration,
    /// Set once the connection has ended; every later call reports it again.
    closed: Option<(Option<u16>, String)>,
}

impl Connection {
    /// Upgrades with the client's token and subprotocol (plus `headers`, which replace
    /// same-named ones), then waits for `hello`; both within the client's timeout. With
    /// `source`, the TCP connection leaves from that local address (a load generator
    /// spreads many connections over 127.0.0.0/8 so ephemeral ports are no limit).
    pub(crate) async fn open(
        client: &Client,
        headers: &[(&str, &str)],
        source: Option<IpAddr>,
    ) -> Result<Connection> {
        let mut request = client.ws_url().into_client_request()?;
        let request_headers = request.headers_mut();
        if let Some(token) = client.token() {
            request_headers.insert(AUTHORIZATION, header_value(&format!("Bearer {token}"))?);
        }
        request_headers.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ClientError::Protocol(format!("bad header name {name:?}: {e}")))?;
            request_headers.insert(name, header_value(value)?);
        }

        let deadline = Instant::now() + client.timeout();
        let upgrade = async {
            let stream = connect_tcp(request.uri(), source).await?;
            tokio_tungstenite::client_async_with_config(
                request,
                MaybeTlsStream::Plain(stream),
                Some(socket_config()),
            )
            .await
            .map_err(upgrade_error)
        };
        let (ws, _response) = timeout_at(deadline, upgrade).await??;
        let mut connection = Connection {
            ws,
            // Replaced by the real hello below; a connection is never handed out before.
            hello: Hello {
                protocol_version: 0,
                user_id: UserId(0),
                heartbeat_interval: Duration::ZERO,
                message_bytes_max: 0,
                frame_bytes_max: 0,
                recall_window: Duration::ZERO,
                typing_interval: Duration::ZERO,
                frames_per_second_max: 0,
                file_bytes_max: 0,
                voice_duration_max: Duration::ZERO,
            },
            write_timeout: client.timeout(),
            closed: None,
        };
        match connection.next_event_until(deadline).await? {
            ServerEvent::Hello {
                protocol_version,
                user_id,
                heartbeat_interval_secs,
                message_bytes_max,
                frame_bytes_max,
                recall_window_secs,
                typing_interval_ms,
                frames_per_second_max,
                file_bytes_max,
                voice_duration_ms_max,
            } => {
                connection.hello = Hello {
                    protocol_version,
                    user_id,
                    heartbeat_interval: Duration::from_secs(heartbeat_interval_secs),
                    message_bytes_max,
                    frame_bytes_max,
                    recall_window: Duration::from_secs(recall_window_secs),
                    typing_interval: Duration::from_millis(typing_interval_ms),
                    frames_per_second_max,
                    file_bytes_max,
                    voice_duration_max: Duration::from_millis(voice_duration_ms_max),
                };
                Ok(connection)
            }
            other => Err(ClientError::Protocol(format!(
                "expected hello as the first frame, got {other:?}"
            ))),
        }
    }

    /// The server's `hello`.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The user this connection is authenticated as.
    pub fn user_id(&self) -> UserId {
        self.hello.user_id
    }

    /// Whether the connection has ended (a later call would return [`ClientError::Closed`]).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Sends one frame as JSON text.
    pub async fn send_frame(&mut self, frame: &ClientFrame) -> Result<()> {
        let text = serde_json::to_string(frame)
            .map_err(|e| ClientError::Protocol(format!("frame does not serialize: {e}")))?;
        self.send_raw_text(&text).await
    }

    /// Sends `text` as one text frame, as is: tests use it to send invalid frames.
    pub async fn send_raw_text(&mut self, text: &str) -> Result<()> {
        self.check_open()?;
        match timeout(self.write_timeout, self.ws.send(Message::text(text))).await? {
            Ok(()) => Ok(()),
            Err(err) => Err(self.fail(err)),
        }
    }

    /// The next event from the server, waiting at most `timeout`. Pings are answered
    /// and skipped. When the server closes the connection this returns
    /// [`ClientError::Closed`] with its close code, and so does every later call. A
    /// server silent for three heartbeat intervals counts as closed without a code.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<ServerEvent> {
        self.next_event_until(Instant::now() + timeout).await
    }

    /// [`Connection::next_event`] with an absolute deadline.
    pub async fn next_event_until(&mut self, deadline: Instant) -> Result<ServerEvent> {
        self.check_open()?;
        loop {
            // Each read may wait until the deadline, or until the server has been silent
            // too long, whichever comes first.
            let silence_max = self.hello.heartbeat_interval * SILENT_HEARTBEATS_MAX;
            let silence_deadline = Instant::now() + silence_max;
            let watch_silence = !silence_max.is_zero() && silence_deadline < deadline;
            let wait_until = if watch_silence {
                silence_deadline
            } else {
                deadline
            };
            let item = match timeout_at(wait_until, self.ws.next()).await {
                Ok(item) => item,
                Err(_) if watch_silence => {
                    return Err(self.set_closed(
                        None,
                        format!("no frame from the server for {}s", silence_max.as_secs()),
                    ))
                }
                Err(_) => return Err(ClientError::Timeout),
            };
            match item {
                None => return Err(self.set_closed(None, "connection ended without a close frame")),
                Some(Err(err)) => return Err(self.fail(err)),
                Some(Ok(Message::Text(text))) => match serde_json::from_str(text.as_str()) {
                    Ok(event) => return Ok(event),
                    Err(e) if is_unknown_event_type(&e) => {
                        // A newer server's event: the protocol says to ignore it.
                        tracing::debug!(error = %e, "skipping a server event of unknown type");
                        continue;
                    }
                    Err(e) => {
                        return Err(ClientError::Protocol(format!(
                            "server frame does not parse: {e}: {text}"
                        )))
                    }
                },
                Some(Ok(Message::Close(frame))) => {
                    // Best effort: write our half of the close handshake, which the
                    // library has queued; the connection is over whether it goes out or not.
                    let _ = timeout(CLOSE_HANDSHAKE_TIMEOUT, self.ws.flush()).await;
                    let (code, reason) = match frame {
                        Some(frame) => (Some(u16::from(frame.code)), frame.reason.to_string()),
                        None => (None, String::new()),
                    };
                    return Err(self.set_closed(code, reason));
                }
                Some(Ok(Message::Binary(_))) => {
                    return Err(ClientError::Protocol(
                        "server sent a binary frame; the protocol is JSON text".to_owned(),
                    ))
                }
                // Pings are answered by the library on the next read or write.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            }
        }
    }

    /// Closes the connection with code 1000 and waits (briefly) for the server's reply.
    pub async fn close(mut self) -> Result<()> {
        if self.closed.is_some() {
            return Ok(());
        }
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        match timeout(self.write_timeout, self.ws.close(Some(frame))).await? {
            Ok(()) => {}
            Err(err) => {
                return match self.fail(err) {
                    ClientError::Closed { .. } => Ok(()),
                    other => Err(other),
                }
            }
        }
        // Drain until the server answers the close (or hangs up); anything else is moot now.
        let drain = async {
            while let Some(Ok(message)) = self.ws.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = timeout(CLOSE_HANDSHAKE_TIMEOUT, drain).await;
        Ok(())
    }

    fn check_open(&self) -> Result<()> {
        match &self.closed {
            Some((code, reason)) => Err(ClientError::Closed {
                code: *code,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn set_closed(&mut self, code: Option<u16>, reason: impl Into<String>) -> ClientError {
        let reason = reason.into();
        self.closed = Some((code, reason.clone()));
        ClientError::Closed { code, reason }
    }

    /// Records a WebSocket error: the connection is unusable after any of them. Errors
    /// that just mean "the peer went away" become [`ClientError::Closed`].
    fn fail(&mut self, err: tungstenite::Error) -> ClientError {
        use tungstenite::error::ProtocolError;
        let reason = err.to_string();
        match err {
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Io(_)
            | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                self.set_closed(None, reason)
            }
            other => {
                self.closed = Some((None, reason));
                ClientError::from(other)
            }
        }
    }
}

/// Buffers sized for chat frames rather than the library's 128 KiB defaults, so that a
/// process can hold many connections; larger frames still grow the buffer as needed.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES)
}

/// Opens the TCP connection for `uri` (plain `ws://` only: the SDK is built without TLS),
/// optionally from the local address `source`. Nagle is off: frames are small and latency
/// matters more than packet count.
async fn connect_tcp(
    uri: &tokio_tungstenite::tungstenite::http::Uri,
    source: Option<IpAddr>,
) -> Result<TcpStream> {
    if uri.scheme_str() != Some("ws") {
        return Err(ClientError::Protocol(format!(
            "only ws:// URLs are supported (the SDK has no TLS), got {uri}"
        )));
    }
    let host = uri.host().unwrap_or("localhost").trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(80);
    let mut last_error = None;
    for address in tokio::net::lookup_host((host, port)).await? {
        let socket = if address.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(source) = source {
            socket.bind(SocketAddr::new(source, 0))?;
        }
        match socket.connect(address).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error
        .unwrap_or_else(|| std::io::Error::other(format!("{host} resolves to no address")))
        .into())
}

fn header_value(value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value)
        .map_err(|e| ClientError::Protocol(format!("bad header value: {e}")))
}

/// A refused upgrade (401 for a bad token, 403 for a foreign origin, 503 while shutting
/// down) becomes [`ClientError::Api`]. The handshake may not have read the whole body,
/// so when it is not a complete [`ErrorBody`] the code is inferred from the status.
fn upgrade_error(err: tungstenite::Error) -> ClientError {
    match err {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            let retry_after_secs = crate::client::retry_after_secs(response.headers());
            match api_error(status, retry_after_secs, body) {
                api @ ClientError::Api { .. } => api,
                _ => ClientError::Api {
                    status,
                    code: code_for_status(status),
                    message: format!("WebSocket upgrade refused with HTTP {status}"),
                    retry_after_secs,
                },
            }
        }
        other => ClientError::from(other),
    }
}

/// The error code the protocol pairs with an HTTP status, for bodies that went missing.
fn code_for_status(status: u16) -> ErrorCode {
    match status {
        400 => ErrorCode::InvalidInput,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::TooLarge,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::ShuttingDown,
        _ => ErrorCode::Internal,
    }
}

/// Whether a frame failed to parse only because its `type` is one this SDK does not know
/// (serde names it an "unknown variant"): an event added by a newer server, which clients
/// skip, as opposed to a known event with broken fields, which is a protocol error.
fn is_unknown_event_type(err: &serde_json::Error) -> bool {
    err.is_data() && err.to_string().starts_with("unknown variant")
}

#[cfg(test)]
mod tests {
    use super::*;
    use banter_protocol::ErrorBody;
    use tokio_tungstenite::tungstenite::http::Response;

    #[test]
    fn refused_upgrade_with_body_keeps_its_code() {
        let body = serde_json::to_vec(&ErrorBody {
            code: ErrorCode::Unauthorized,
            message: "token revoked".to_owned(),
        })
        .expect("serializes");
        let response = Response::builder()
            .status(401)
            .body(Some(body))
            .expect("valid response");
        let err = upgrade_error(tungstenite::Error::Http(response));
        assert_eq!(err.status(), Some(401));
        assert_eq!(err.code(), Some(ErrorCode::Unauthorized));
    }

    #[test]
    fn refused_upgrade_without_body_infers_the_code() {
        let response = Response::builder()
            .status(403)
            .body(None)
            .expect("valid response");
        let err = upgrade_error(tungstenite::Error::Http(response));
        assert_eq!(err.status(), Some(403));
        assert_eq!(err.code(), Some(ErrorCode::Forbidden));
    }

    fn parse_error(text: &str) -> serde_json::Error {
        serde_json::from_str::<ServerEvent>(text).unwrap_err()
    }

    #[test]
    fn only_unknown_event_types_are_skippable() {
        assert!(is_unknown_event_type(&parse_error(
            r#"{"type":"sticker_sent","id":1}"#
        )));
        assert!(!is_unknown_event_type(&parse_error(r#"{"type":"pong"}"#)));
        assert!(!is_unknown_event_type(&parse_error(
            r#"{"type":"pong","id":5}"#
        )));
        assert!(!is_unknown_event_type(&parse_error("not json")));
    }
}
