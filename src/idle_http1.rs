//! HTTP/1.1 over an accepted connection, with hyper's buffers released
//! while the connection is idle.
//!
//! hyper keeps a read buffer and a write buffer of 8 KiB each for as long
//! as it serves a connection, requests or not. An edge holds far more idle
//! keep-alive connections than busy ones, so between requests the
//! connection is taken back from hyper: once a response has been written
//! and flushed and the client has sent nothing more, the next read hyper
//! makes ends its connection as a clean end of input (the TLS stream itself
//! is left open), hyper's state is dropped, and the connection waits for
//! its next bytes with no HTTP state at all. When they arrive, a new hyper
//! connection serves them. While parked, a connection costs the TLS stream
//! and the [`ConnectionInfo`](crate::ConnectionInfo).
//!
//! A connection is never parked once it was upgraded (a `101` answer, or a
//! `CONNECT` request): the upgraded stream belongs to the application. A
//! parked connection idle for longer than hyper's header-read timeout (30
//! s, hyper's default, which closes idle keep-alive connections) is closed
//! as hyper would have closed it. Pipelined requests hyper already read
//! are served before parking; a pipelined request hyper had read only part
//! of when the client paused ends the connection (hyper reports it
//! incomplete), which clients treat as a closed keep-alive connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::acceptor::MtlsStream;

/// How long a parked connection may wait for its next request: hyper's
/// default header-read timeout, which is what closes an idle keep-alive
/// connection hyper serves.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `service` over HTTP/1.1 on `stream`, parking the connection
/// between requests when `release_idle` is set (hyper serves it throughout
/// otherwise).
///
/// Not an `async fn`: the stream moves into its shared place before the
/// future exists, so the future (boxed, the task holds a pointer) does not
/// keep a dead copy of it for the connection's lifetime.
pub(crate) fn serve<S, B>(
    stream: MtlsStream<TcpStream>,
    service: S,
    release_idle: bool,
) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new());
    if !release_idle {
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        return Box::pin(async move {
            let _ = connection.await;
        });
    }
    let shared = Arc::new(Mutex::new(Parkable {
        stream,
        in_flight: 0,
        fresh: false,
        flushed: true,
        parked: false,
        pinned: false,
    }));
    Box::pin(park_between_requests(builder, shared, service))
}

/// Serves requests with hyper while there are some, and waits with no HTTP
/// state in between.
async fn park_between_requests<S, B>(
    builder: hyper::server::conn::http1::Builder,
    shared: Arc<Mutex<Parkable>>,
    service: S,
) where
    S: Service<http::Request<Incoming>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let io = ParkableIo {
            shared: shared.clone(),
        };
        let tracked = Tracked {
            inner: service.clone(),
            shared: shared.clone(),
        };
        // Boxed: hyper's state lives in its own allocation, freed while
        // the connection is parked.
        let served = Box::pin(
            builder
                .serve_connection(TokioIo::new(io), tracked)
                .with_upgrades(),
        )
        .await;
        let parked = std::mem::take(&mut lock(&shared).parked);
        if !parked || served.is_err() {
            // hyper closed the connection (the client's end of input, an
            // error, `Connection: close`), or a partly read pipelined
            // request was lost with hyper's buffer.
            return;
        }
        tracing::trace!("HTTP/1.1 connection idle, hyper's buffers released");
        let readable = std::future::poll_fn(|cx| {
            let guard = lock(&shared);
            guard.stream.stream.get_ref().0.poll_read_ready(cx)
        });
        match tokio::time::timeout(IDLE_TIMEOUT, readable).await {
            Ok(Ok(())) => {}
            // Idle too long, or the socket failed: close, as hyper would.
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

fn lock(shared: &Mutex<Parkable>) -> MutexGuard<'_, Parkable> {
    // Nothing panics while holding the lock but the stream's own methods;
    // the connection's state is still consistent then.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection hyper serves now and then, and what is known of its state.
struct Parkable {
    stream: MtlsStream<TcpStream>,
    /// Requests whose response has not been written completely.
    in_flight: usize,
    /// Bytes were handed to hyper since the last request began: hyper may
    /// hold part of the next request.
    fresh: bool,
    /// The last response was flushed (or none was written).
    flushed: bool,
    /// This end of input was ours: the connection parks, it does not close.
    parked: bool,
    /// Upgraded: never parked again.
    pinned: bool,
}

impl Parkable {
    fn idle(&self) -> bool {
        self.in_flight == 0 && !self.fresh && self.flushed && !self.pinned
    }
}

/// The I/O hyper sees: the connection, with a clean end of input once it
/// went idle.
struct ParkableIo {
    shared: Arc<Mutex<Parkable>>,
}

impl AsyncRead for ParkableIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut conn = lock(&self.shared);
        if conn.parked {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut conn.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    conn.fresh = true;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if conn.idle() => {
                // Nothing to read between requests: hyper ends this
                // connection; the stream waits for the next request.
                conn.parked = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for ParkableIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut conn = lock(&self.shared);
        Pin::new(&mut conn.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut conn = lock(&self.shared);
        Pin::new(&mut conn.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        lock(&self.shared).stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut conn = lock(&self.shared);
        let flushed = Pin::new(&mut conn.stream).poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) && conn.in_flight == 0 && !conn.flushed {
            conn.flushed = true;
            // hyper reads again only when woken: let it find the
            // connection idle now rather than at the client's next bytes.
            cx.waker().wake_by_ref();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut conn = lock(&self.shared);
        if conn.parked {
            // The end of input was ours: the connection stays open.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut conn.stream).poll_shutdown(cx)
    }
}

/// The application's service, counting the requests in flight.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    shared: Arc<Mutex<Parkable>>,
}

/// A request in flight until dropped (with its response body, or with the
/// response future when there is none).
struct InFlight {
    shared: Arc<Mutex<Parkable>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut conn = lock(&self.shared);
        conn.in_flight -= 1;
        if conn.in_flight == 0 {
            conn.flushed = false;
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<Incoming>> for Tracked<S>
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: Body + Unpin + Send + 'static,
{
    type Response = http::Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        {
            let mut conn = lock(&self.shared);
            conn.in_flight += 1;
            conn.fresh = false;
            if request.method() == http::Method::CONNECT {
                conn.pinned = true;
            }
        }
        let guard = InFlight {
            shared: self.shared.clone(),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                lock(&guard.shared).pinned = true;
            }
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _guard: guard,
            }))
        })
    }
}

/// A response body that ends its request's time in flight when dropped.
struct TrackedBody<B> {
    inner: B,
    _guard: InFlight,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
