//! The HTTP listener: an accept loop over hyper's HTTP/1 server, so that every connection
//! has bounds that `axum::serve` does not offer.
//!
//! - At most `http_connections_max` connections are served at once. A connection beyond
//!   it is accepted and closed at once, without a response: silent or half-open sockets
//!   cannot pile up until the process runs out of file descriptors, and a client at the
//!   bound learns it at once instead of waiting in the kernel's backlog.
//! - A request's header must arrive within `http_header_timeout`, counted from the
//!   connect or from the end of the previous response; so the same deadline bounds a
//!   silent connect, a slowly dripped header, and an idle keep-alive connection.
//! - A header larger than `http_header_bytes_max` gets `431` and the connection closes.
//! - A request's body must arrive within `http_body_timeout` of its header
//!   ([`body_deadline`]), so a body sent drop by drop holds nothing for long. An upload's
//!   body (`api::media::is_streamed_body`) may take longer, but must keep arriving: each
//!   piece within `http_body_timeout` of the last (and uploads are bounded in number).
//!
//! A WebSocket upgrade leaves this pool when it completes: from then on the socket is
//! held by the gateway under `connections_max`.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// After a failed `accept` (out of file descriptors, typically), wait this long before
/// the next, so that an exhausted process does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// At most one warning per this interval about connections refused at the bound.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The bounds of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct HttpBounds {
    pub connections_max: usize,
    pub header_timeout: Duration,
    pub header_bytes_max: usize,
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops accepting, lets
/// each connection finish its request in flight (idle ones close at once), and returns
/// when every HTTP connection has ended.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    bounds: HttpBounds,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(bounds.connections_max));
    let connections = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout)
        .max_buf_size(bounds.header_bytes_max);
    let mut refused = 0u64;
    let mut refusal_logged: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Dropping the stream closes it.
            refused += 1;
            if refusal_logged.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL) {
                tracing::warn!(
                    refused,
                    http_connections_max = bounds.connections_max,
                    "at the HTTP connection bound: closing new connections at once"
                );
                refusal_logged = Some(Instant::now());
                refused = 0;
            }
            continue;
        };
        // Chat frames are small and written back to back (a message, then the ack): with
        // Nagle's algorithm the second waits for the client's delayed ACK, ~40 ms.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        // Every request carries its connection's peer address, which rate limits key on
        // (`ratelimit::ClientAddr`).
        let service = app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let connection = http
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(error = %err, "HTTP connection ended with an error");
            }
        });
    }
    connections.close();
    connections.wait().await;
}

/// Wraps every request body so that reading it fails once `timeout` has passed since the
/// request arrived (for an upload: since the last piece of it arrived); the handler then
/// answers `400 invalid_input` (see `api::extract`).
pub fn body_deadline(
    timeout: Duration,
) -> impl Fn(axum::extract::Request) -> std::future::Ready<axum::extract::Request> + Clone {
    move |request: axum::extract::Request| {
        let idle = crate::api::media::is_streamed_body(request.method(), request.uri().path());
        std::future::ready(request.map(|body| {
            axum::body::Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep(timeout)),
                timeout,
                idle,
            })
        }))
    }
}

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: axum::body::Body,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    /// The deadline moves forward with every piece that arrives.
    idle: bool,
}

/// The error of a body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

impl hyper::body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            if self.idle {
                let next = tokio::time::Instant::now() + self.timeout;
                self.deadline.as_mut().reset(next);
            }
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(self.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// File descriptors kept for everything but client connections: standard streams, the
/// listener, the runtime's own, log and database files.
const RESERVED_DESCRIPTORS: u64 = 64;
/// Descriptors one database connection may hold (SQLite: the database, its WAL and
/// shared-memory files).
const DESCRIPTORS_PER_DATABASE_CONNECTION: u64 = 3;

/// Raises this process's soft limit on open files to its hard limit, so that it can hold
/// as many connections as the operator allowed it. Returns the soft limit in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// How many client connections (WebSocket and HTTP together) the open-files limit in
/// force leaves room for, given the database pool's size. `None` where there is no such
/// limit.
pub fn connection_capacity(database_connections_max: u32) -> Option<u64> {
    let (soft, _hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
    if soft == rlimit::INFINITY {
        return None;
    }
    let reserved = RESERVED_DESCRIPTORS
        + DESCRIPTORS_PER_DATABASE_CONNECTION * u64::from(database_connections_max);
    Some(soft.saturating_sub(reserved))
}

/// The connection bounds that fit `capacity` descriptors: the configured ones when they
/// fit, else smaller ones (a quarter for HTTP, the rest for WebSockets), so that the
/// process refuses connections cleanly instead of failing to accept them.
pub fn fit_bounds(websocket_max: usize, http_max: usize, capacity: Option<u64>) -> (usize, usize) {
    let Some(capacity) = capacity else {
        return (websocket_max, http_max);
    };
    let capacity = usize::try_from(capacity).unwrap_or(usize::MAX).max(2);
    if websocket_max.saturating_add(http_max) <= capacity {
        return (websocket_max, http_max);
    }
    let http = http_max.min(capacity / 4).max(1);
    let websocket = websocket_max.min(capacity - http).max(1);
    (websocket, http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_that_fit_are_kept_and_others_shrink_to_the_capacity() {
        assert_eq!(fit_bounds(10_000, 4096, None), (10_000, 4096));
        assert_eq!(fit_bounds(10_000, 4096, Some(1_000_000)), (10_000, 4096));
        assert_eq!(fit_bounds(10_000, 4096, Some(900)), (675, 225));
        assert_eq!(fit_bounds(100, 4096, Some(900)), (100, 225));
    }
}
