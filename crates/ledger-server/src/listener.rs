//! The HTTP listener: connections up to a cap, header-read and idle timeouts, and the peer's
//! address for the handlers (loopback-only queries, per-client rate limits).
//!
//! `axum::serve` has neither a connection cap nor timeouts: idle connections held the
//! descriptors until `/healthz` stopped answering. Here every connection holds a permit; one
//! over the cap is answered `503` at once and closed, and hyper's header-read timeout closes a
//! connection that sends no complete request head in time, on its first request and while it
//! idles between requests.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Bounds on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most; one more is answered 503 and closed.
    pub max_connections: usize,
    /// How long a connection may take to send a complete request head, and how long it may
    /// idle between requests.
    pub header_read_timeout: Duration,
    /// How long open requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Descriptors kept free of the connection cap for the stores, the log and the process.
const DESCRIPTORS_RESERVED: usize = 256;

impl ConnectionLimits {
    /// The cap, lowered to what the process's descriptor limit allows (a cap above it would
    /// let connections starve the stores of descriptors, and `accept` fail).
    pub fn effective_max_connections(&self) -> usize {
        match open_files_soft_limit() {
            Some(limit) if limit > DESCRIPTORS_RESERVED => {
                self.max_connections.min(limit - DESCRIPTORS_RESERVED).max(1)
            }
            _ => self.max_connections,
        }
    }
}

/// The soft `RLIMIT_NOFILE`, read from `/proc/self/limits` (Linux; `None` elsewhere).
fn open_files_soft_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish (up to
/// the grace period).
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = limits.effective_max_connections();
    if max_connections < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            effective = max_connections,
            "connection cap lowered to fit the open-files limit"
        );
    }
    let permits = Arc::new(Semaphore::new(max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of descriptors or a connection reset before it was taken: back off
                    // rather than spin, and keep serving the connections already open.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("ledger_http_connections_refused_total").increment(1);
            tokio::spawn(refuse_connection(stream));
            continue;
        };
        metrics::gauge!("ledger_http_connections_open").increment(1.0);
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.oneshot(request).await.unwrap_or_else(|never| match never {})) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A connection closed by a timeout or by its peer is not an error of the server.
            let _ = connection.await;
            metrics::gauge!("ledger_http_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("requests still open after the shutdown grace period; closing them");
        }
    }
    Ok(())
}

/// Answers a connection over the cap with a 503 (so a client sees why) and closes it.
async fn refuse_connection(mut stream: TcpStream) {
    // Read what the client sent first: closing a socket with unread input resets it, and the
    // client would see the reset instead of the answer.
    let mut request = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut request)).await;
    let body = r#"{"error":"Service Unavailable","reason":"too many open connections; retry shortly"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
