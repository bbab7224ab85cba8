//! Kafka framing: a 4-byte big-endian length, then that many bytes.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};

/// Why a connection's byte stream cannot be framed; the connection closes.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is negative or above `socket.request.max.bytes`.
    #[error("frame length {length} is outside [0, {max}]")]
    BadLength {
        /// The announced length.
        length: i32,
        /// The configured limit.
        max: usize,
    },
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed inside a frame ({read} of {expected} bytes)")]
    Truncated {
        /// Bytes received.
        read: usize,
        /// Bytes announced.
        expected: usize,
    },
    /// Reading or writing the socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// No frame began within `connections.max.idle.ms`.
    #[error("no request for {} ms (connections.max.idle.ms)", .0.as_millis())]
    Idle(Duration),
    /// A frame began but did not arrive whole within
    /// `socket.request.read.timeout.ms`.
    #[error(
        "a request frame did not arrive whole within {} ms of its first byte (socket.request.read.timeout.ms)",
        .0.as_millis()
    )]
    TooSlow(Duration),
}

/// Checks a frame's length prefix against the limit.
pub fn frame_length(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let length = i32::from_be_bytes(prefix);
    match usize::try_from(length) {
        Ok(len) if len <= max => Ok(len),
        _ => Err(FrameError::BadLength { length, max }),
    }
}

/// Reads one frame. `Ok(None)` is a clean close between frames. Memory
/// grows with the bytes actually received, not with the announced length.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    match read_frame_length(reader, max).await? {
        Some(length) => read_frame_body(reader, length).await.map(Some),
        None => Ok(None),
    }
}

/// Reads and checks a frame's length prefix. `Ok(None)` is a clean close
/// between frames.
pub(crate) async fn read_frame_length<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<usize>, FrameError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = match reader.read(&mut prefix[got..]).await {
            Ok(n) => n,
            // A TLS peer gone between frames without close_notify
            // (librdkafka closes so): a close, not a damaged frame.
            Err(e) if got == 0 && e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated {
                read: got,
                expected: 4,
            });
        }
        got += n;
    }
    frame_length(prefix, max).map(Some)
}

/// Reads a frame's `length` bytes after its prefix. Memory grows with the
/// bytes actually received (in steps of at most 1 MiB), not with the
/// announced length.
pub(crate) async fn read_frame_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    length: usize,
) -> Result<Bytes, FrameError> {
    let mut frame = BytesMut::with_capacity(length.min(64 * 1024));
    while frame.len() < length {
        if frame.capacity() == frame.len() {
            frame.reserve((length - frame.len()).min(1 << 20));
        }
        let want = length - frame.len();
        let n = (&mut *reader)
            .take(want as u64)
            .read_buf(&mut frame)
            .await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                read: frame.len(),
                expected: length,
            });
        }
    }
    Ok(frame.freeze())
}

// The connection loop composes the same steps around the wait for
// `queued.max.request.bytes` (`connection::read_request_frame`); this whole
// form is what the deadline tests below exercise.
#[cfg(test)]
/// Reads one frame as [`read_frame`] does, within time limits: its first
/// byte must come within `idle`, and the whole frame within `whole` of
/// that byte.
pub(crate) async fn read_frame_within<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    idle: Duration,
    whole: Duration,
) -> Result<Option<Bytes>, FrameError> {
    if !frame_begins(reader, idle).await? {
        return Ok(None);
    }
    tokio::time::timeout(whole, read_frame(reader, max))
        .await
        .map_err(|_| FrameError::TooSlow(whole))?
}

/// Waits up to `idle` for the first byte of the next frame (left in the
/// reader's buffer): `Ok(false)` when the peer closed instead.
pub(crate) async fn frame_begins<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    idle: Duration,
) -> Result<bool, FrameError> {
    match tokio::time::timeout(idle, reader.fill_buf()).await {
        Err(_) => Err(FrameError::Idle(idle)),
        Ok(Ok([])) => Ok(false),
        Ok(Ok(_)) => Ok(true),
        // A TLS peer gone between frames without close_notify: a close.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Ok(Err(e)) => Err(e.into()),
    }
}

/// Writes one complete frame (length prefix included, see
/// `request::encode_response`).
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &[u8],
) -> Result<(), FrameError> {
    writer.write_all(frame).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked() {
        assert!(frame_length(10i32.to_be_bytes(), 100).is_ok());
        assert!(frame_length((-1i32).to_be_bytes(), 100).is_err());
        assert!(frame_length(101i32.to_be_bytes(), 100).is_err());
    }

    #[tokio::test]
    async fn truncated_frames_are_errors() {
        let mut input: &[u8] = &[0, 0, 0, 10, 1, 2, 3];
        assert!(matches!(
            read_frame(&mut input, 100).await,
            Err(FrameError::Truncated { .. })
        ));
        let mut input: &[u8] = &[];
        assert!(matches!(read_frame(&mut input, 100).await, Ok(None)));
        let mut input: &[u8] = &[0, 0, 0, 2, 7, 8];
        assert!(matches!(read_frame(&mut input, 100).await, Ok(Some(b)) if b[..] == [7, 8]));
    }

    /// A TLS client that closes without close_notify between frames has
    /// closed; inside a frame it cut the frame short.
    #[tokio::test]
    async fn a_tls_close_without_notify_between_frames_is_a_close() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        let cut = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        let mut between = tokio::io::AsyncReadExt::chain(&mut server, EofError(Some(cut)));
        assert!(matches!(read_frame(&mut between, 100).await, Ok(None)));
        let cut = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        let mut inside = tokio::io::AsyncReadExt::chain(&[0u8, 0][..], EofError(Some(cut)));
        assert!(read_frame(&mut inside, 100).await.is_err());
    }

    /// The first byte of a frame must come within the idle time, and the
    /// rest within the frame's time after it; a frame that does is read.
    #[tokio::test]
    async fn frames_are_read_within_their_deadlines() {
        use tokio::io::{AsyncWriteExt, BufReader};
        let (idle, whole) = (Duration::from_millis(100), Duration::from_millis(300));
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = BufReader::new(server);
        let started = std::time::Instant::now();
        assert!(matches!(
            read_frame_within(&mut reader, 100, idle, whole).await,
            Err(FrameError::Idle(_))
        ));
        assert!(started.elapsed() >= idle);

        // Slowloris: a byte now and then, never the whole frame.
        let drip = tokio::spawn(async move {
            for byte in [0u8, 0, 0, 10, 1, 2, 3, 4, 5] {
                if client.write_all(&[byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            client
        });
        let started = std::time::Instant::now();
        assert!(matches!(
            read_frame_within(&mut reader, 100, idle, whole).await,
            Err(FrameError::TooSlow(_))
        ));
        let took = started.elapsed();
        assert!(took >= whole && took < whole * 3, "{took:?}");
        drop(reader);
        let _ = drip.await;

        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = BufReader::new(server);
        client.write_all(&[0, 0, 0, 2, 7, 8]).await.unwrap();
        drop(client);
        assert!(matches!(
            read_frame_within(&mut reader, 100, idle, whole).await,
            Ok(Some(b)) if b[..] == [7, 8]
        ));
        assert!(matches!(
            read_frame_within(&mut reader, 100, idle, whole).await,
            Ok(None)
        ));
    }

    /// A reader whose first read fails with the error it holds.
    struct EofError(Option<std::io::Error>);

    impl AsyncRead for EofError {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(match self.0.take() {
                Some(e) => Err(e),
                None => Ok(()),
            })
        }
    }
}
