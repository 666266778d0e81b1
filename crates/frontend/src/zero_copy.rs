//! Responses that carry file ranges instead of bytes: zero-copy fetch.
//!
//! A Fetch response's records are whole batches of a segment file. Rather than copy them into
//! memory, into the encoded response and into the socket, the handler attaches each range
//! ([`Attachments::attach`]) and puts the stand-in it gets back in the response's `records`
//! field. The stand-in has the range's length, so the `kafka-protocol` encoder writes the right
//! length prefixes and sizes, but its bytes are never read: the encoder's `put_slice` of a
//! stand-in becomes a hole in the encoded frame ([`encode`]), and the writer fills each hole
//! from the file. On a plaintext TCP connection it does so with `sendfile(2)`: the bytes go
//! from the page cache to the socket without entering the broker's memory. Other streams (TLS)
//! read the range into memory once and write it.
//!
//! Cold data (not in the page cache) is never read on an async worker: before sending a range
//! the writer asks the page cache, without waiting, for the range's first and last byte
//! (`preadv2` with `RWF_NOWAIT`); if either is missing, the range is read on tokio's blocking
//! pool and written from memory.
//!
//! Stand-ins are slices of one read-only anonymous mapping reserved once (`MAP_NORESERVE`, no
//! page ever touched, so it costs address space only); a stand-in is recognised by its
//! address. A range too long for the mapping is not attached (the caller copies it).

#![allow(unsafe_code)]

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::OnceLock;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A byte range of an open file, kept open by its owner for as long as the range is held.
pub struct FileRange {
    owner: Box<dyn AsFd + Send + Sync>,
    position: u64,
    len: usize,
}

impl FileRange {
    /// `len` bytes at `position` of `owner`'s file (a segment slice, which keeps its file open
    /// even if the log deletes it meanwhile).
    pub fn new(owner: impl AsFd + Send + Sync + 'static, position: u64, len: usize) -> Self {
        Self {
            owner: Box::new(owner),
            position,
            len,
        }
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.owner.as_fd()
    }

    /// Reads the range into memory (a short file is an error: the frame announced `len`).
    fn read(&self) -> io::Result<Bytes> {
        let mut buf = BytesMut::with_capacity(self.len);
        while buf.len() < self.len {
            let at = buf.len();
            let spare = buf.spare_capacity_mut();
            // SAFETY: the kernel writes at most `spare.len()` bytes into the spare capacity,
            // which is valid for writes; `fd` is open for the call.
            let n = unsafe {
                libc::pread(
                    self.fd().as_raw_fd(),
                    spare.as_mut_ptr().cast(),
                    spare.len(),
                    (self.position + at as u64) as libc::off_t,
                )
            };
            match n {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file range shorter than its response announced",
                    ))
                }
                n if n < 0 => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                // SAFETY: the kernel initialised `n` more bytes.
                n => unsafe { buf.set_len(at + n as usize) },
            }
        }
        Ok(buf.freeze())
    }

    /// Whether the range's first and last byte are in the page cache (asked without waiting).
    fn is_cached(&self) -> bool {
        if self.len == 0 {
            return true;
        }
        let last = self.position + self.len as u64 - 1;
        page_cached(self.fd(), self.position) && page_cached(self.fd(), last)
    }
}

impl std::fmt::Debug for FileRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRange")
            .field("fd", &self.fd().as_raw_fd())
            .field("position", &self.position)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn page_cached(fd: BorrowedFd<'_>, position: u64) -> bool {
    let mut byte = 0u8;
    let iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    // SAFETY: one iovec of one byte pointing at a live local; `fd` is open for the call.
    let n = unsafe {
        libc::preadv2(
            fd.as_raw_fd(),
            &iov,
            1,
            position as libc::off_t,
            libc::RWF_NOWAIT,
        )
    };
    n == 1
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn page_cached(_fd: BorrowedFd<'_>, _position: u64) -> bool {
    // Without a way to ask, treat every range as cold: read on the blocking pool.
    false
}

/// The file ranges a response refers to, in the order their stand-ins appear in it.
#[derive(Debug, Default)]
pub struct Attachments {
    ranges: Vec<FileRange>,
}

impl Attachments {
    /// Attaches `range`; returns the stand-in to put in the response where its bytes go, or
    /// gives the range back when it cannot be attached (too long), for the caller to copy.
    pub fn attach(&mut self, range: FileRange) -> Result<Bytes, FileRange> {
        let Some(stand_in) = stand_in(range.len) else {
            return Err(range);
        };
        self.ranges.push(range);
        Ok(stand_in)
    }

    /// Whether nothing is attached.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Puts the attached ranges' bytes in place of their stand-ins in `response`, for a
    /// caller that wants the response itself rather than a frame (an in-process client).
    pub async fn copy_into(self, response: &mut ResponseKind) -> io::Result<()> {
        let ResponseKind::Fetch(fetch) = response else {
            return Ok(());
        };
        let mut ranges = self.ranges.into_iter();
        let records = fetch
            .responses
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
            .filter_map(|p| p.records.as_mut());
        for records in records {
            if !is_stand_in(records) {
                continue;
            }
            match ranges.next() {
                Some(range) if range.len == records.len() => *records = read_range(range).await?,
                _ => {
                    return Err(io::Error::other(
                        "a records stand-in without its file range",
                    ))
                }
            }
        }
        Ok(())
    }
}

/// The longest range a stand-in can stand for (a records field is at most `i32::MAX` bytes).
const STAND_IN_BYTES: usize = i32::MAX as usize;

/// The reserved mapping stand-ins are sliced from (`None` if it could not be mapped).
fn stand_ins() -> Option<&'static [u8]> {
    static REGION: OnceLock<Option<usize>> = OnceLock::new();
    let start = *REGION.get_or_init(|| {
        // SAFETY: a private anonymous read-only mapping with no file; never unmapped.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STAND_IN_BYTES,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        (p != libc::MAP_FAILED).then_some(p as usize)
    });
    // SAFETY: the mapping is readable (zero pages), `STAND_IN_BYTES` long and lives for the
    // rest of the process.
    start.map(|s| unsafe { std::slice::from_raw_parts(s as *const u8, STAND_IN_BYTES) })
}

fn stand_in(len: usize) -> Option<Bytes> {
    if len == 0 || len > STAND_IN_BYTES {
        return None;
    }
    stand_ins().map(|r| Bytes::from_static(&r[..len]))
}

fn is_stand_in(s: &[u8]) -> bool {
    !s.is_empty() && stand_ins().is_some_and(|r| std::ptr::eq(s.as_ptr(), r.as_ptr()))
}

/// A piece of an encoded frame: bytes, or a file range to send in their place.
#[derive(Debug)]
pub(crate) enum Piece {
    Bytes(Bytes),
    File(FileRange),
}

/// The encoder's buffer: bytes, with a hole where each stand-in was put.
struct HoleyBuf {
    buf: BytesMut,
    /// (offset in `buf`, range), in order.
    holes: Vec<(usize, FileRange)>,
    attached: std::vec::IntoIter<FileRange>,
    error: Option<String>,
}

// SAFETY: every method forwards to `BytesMut`, whose implementation upholds the contract;
// `put_slice` of a stand-in writes nothing and advances nothing, as if given an empty slice.
unsafe impl BufMut for HoleyBuf {
    fn remaining_mut(&self) -> usize {
        self.buf.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's guarantee, passed on.
        unsafe { self.buf.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.buf.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if !is_stand_in(src) {
            self.buf.extend_from_slice(src);
            return;
        }
        match self.attached.next() {
            Some(range) if range.len == src.len() => self.holes.push((self.buf.len(), range)),
            _ => {
                self.error
                    .get_or_insert_with(|| "a records stand-in without its file range".into());
            }
        }
    }
}

impl ByteBufMut for HoleyBuf {
    fn offset(&self) -> usize {
        self.buf.offset()
    }

    fn seek(&mut self, offset: usize) {
        self.buf.seek(offset)
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        self.buf.range(r)
    }
}

/// Encodes a response frame (size, header, body) whose body may hold stand-ins for
/// `attachments`: the frame's pieces, in order. Ranges whose stand-ins the response no longer
/// holds (a throttled fetch answers no records) are dropped.
pub(crate) fn encode(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
    attachments: Attachments,
) -> Result<Vec<Piece>, String> {
    let mut out = HoleyBuf {
        buf: BytesMut::new(),
        holes: Vec::new(),
        attached: attachments.ranges.into_iter(),
        error: None,
    };
    out.buf.put_i32(0); // size, filled below
                        // ApiVersions responses always use header v0, whatever the request version.
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, header_version)
        .map_err(|e| format!("header: {e}"))?;
    // Only a Fetch response carries records; any other is encoded as usual, a version newer
    // than the codec crate's as the older one with the new fields put in.
    let codec_version = crate::newer::codec_version(api_key, version);
    match response {
        ResponseKind::Fetch(fetch) => fetch.encode(&mut out, version),
        other => match crate::newer::older_response(other) {
            Some((older, lock_timeout_ms)) => {
                let mut body = BytesMut::new();
                older
                    .encode(&mut body, codec_version)
                    .map_err(|e| e.to_string())?;
                if version >= 2 {
                    let body = crate::newer::newer_share_acknowledge_body(&body, lock_timeout_ms)?;
                    out.buf.put_slice(&body);
                } else {
                    out.buf.put_slice(&body);
                }
                Ok(())
            }
            None => other.encode(&mut out.buf, codec_version),
        },
    }
    .map_err(|e| e.to_string())?;
    if let Some(e) = out.error {
        return Err(e);
    }
    let holes: usize = out.holes.iter().map(|(_, r)| r.len).sum();
    let size =
        i32::try_from(out.buf.len() + holes - 4).map_err(|_| "response over 2 GiB".to_string())?;
    out.buf[..4].copy_from_slice(&size.to_be_bytes());
    let mut buf = out.buf;
    let mut pieces = Vec::with_capacity(2 * out.holes.len() + 1);
    let mut at = 0;
    for (offset, range) in out.holes {
        let head = buf.split_to(offset - at);
        at = offset;
        if !head.is_empty() {
            pieces.push(Piece::Bytes(head.freeze()));
        }
        pieces.push(Piece::File(range));
    }
    if !buf.is_empty() {
        pieces.push(Piece::Bytes(buf.freeze()));
    }
    Ok(pieces)
}

/// Where a connection's responses go: bytes, and file ranges (with zero copy where it can).
pub(crate) trait ResponseWriter: Send + 'static {
    /// Writes all of `bytes`.
    fn write_bytes(&mut self, bytes: &[u8]) -> impl Future<Output = io::Result<()>> + Send;

    /// Writes all of `range`'s bytes.
    fn write_file(&mut self, range: FileRange) -> impl Future<Output = io::Result<()>> + Send;

    /// Flushes and shuts the writing side down.
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

/// A range read into memory: at once when cached, on the blocking pool when cold.
async fn read_range(range: FileRange) -> io::Result<Bytes> {
    if range.is_cached() {
        return range.read();
    }
    tokio::task::spawn_blocking(move || range.read())
        .await
        .map_err(io::Error::other)?
}

/// Any stream: file ranges are read into memory and written (TLS encrypts them anyway).
pub(crate) struct Copying<W>(pub(crate) W);

impl<W: AsyncWrite + Unpin + Send + 'static> ResponseWriter for Copying<W> {
    async fn write_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes).await
    }

    async fn write_file(&mut self, range: FileRange) -> io::Result<()> {
        let bytes = read_range(range).await?;
        self.0.write_all(&bytes).await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

/// A plaintext TCP connection: file ranges go out with `sendfile(2)` (Linux; elsewhere copied).
pub(crate) struct Sendfile(pub(crate) tokio::net::tcp::OwnedWriteHalf);

impl ResponseWriter for Sendfile {
    async fn write_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes).await
    }

    async fn write_file(&mut self, range: FileRange) -> io::Result<()> {
        if !cfg!(target_os = "linux") || !range.is_cached() {
            let bytes = read_range(range).await?;
            return self.0.write_all(&bytes).await;
        }
        let socket: &tokio::net::TcpStream = self.0.as_ref();
        let mut position = range.position;
        let mut left = range.len;
        while left > 0 {
            socket.writable().await?;
            let sent = socket.try_io(tokio::io::Interest::WRITABLE, || {
                send_file(socket.as_raw_fd(), range.fd(), position, left)
            });
            match sent {
                Ok(0) => {
                    // The file is shorter than the frame announced (truncated meanwhile): the
                    // frame cannot be completed, so the connection must end.
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file range shorter than its response announced",
                    ));
                }
                Ok(n) => {
                    position += n as u64;
                    left -= n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

#[cfg(target_os = "linux")]
fn send_file(socket: i32, file: BorrowedFd<'_>, position: u64, len: usize) -> io::Result<usize> {
    let mut offset = position as libc::off_t;
    // SAFETY: both descriptors are open for the call; `offset` is a live local the kernel
    // advances (the file's own position is untouched).
    let n = unsafe { libc::sendfile(socket, file.as_raw_fd(), &mut offset, len) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(not(target_os = "linux"))]
fn send_file(
    _socket: i32,
    _file: BorrowedFd<'_>,
    _position: u64,
    _len: usize,
) -> io::Result<usize> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "sendfile"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> std::fs::File {
        let mut f = tempfile::tempfile().expect("test");
        f.write_all(bytes).expect("test");
        f
    }

    fn response(records: Vec<Bytes>) -> ResponseKind {
        let partitions = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_records(Some(r))
            })
            .collect();
        ResponseKind::Fetch(FetchResponse::default().with_responses(
            vec![FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(partitions)],
        ))
    }

    /// The frame with each range's bytes put in its hole.
    fn assemble(pieces: Vec<Piece>) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(&b),
                Piece::File(r) => out.extend_from_slice(&r.read().expect("test")),
            }
        }
        out
    }

    #[test]
    fn a_frame_with_file_ranges_is_the_frame_with_their_bytes() {
        let file = std::sync::Arc::new(file_with(b"..hello....world!"));
        for version in [4, 11, 12, 16] {
            let mut attachments = Attachments::default();
            let a = attachments
                .attach(FileRange::new(std::sync::Arc::clone(&file), 2, 5))
                .expect("test");
            let b = attachments
                .attach(FileRange::new(std::sync::Arc::clone(&file), 11, 6))
                .expect("test");
            let holey = response(vec![a, Bytes::from_static(b"inline"), b]);
            let pieces = encode(ApiKey::Fetch, version, 7, &holey, attachments).expect("test");
            assert_eq!(
                pieces
                    .iter()
                    .filter(|p| matches!(p, Piece::File(_)))
                    .count(),
                2
            );
            let copied = response(vec![
                Bytes::from_static(b"hello"),
                Bytes::from_static(b"inline"),
                Bytes::from_static(b"world!"),
            ]);
            let expected = encode(ApiKey::Fetch, version, 7, &copied, Attachments::default())
                .map(assemble)
                .expect("test");
            let frame = assemble(pieces);
            assert_eq!(frame, expected, "version {version}");
            // And it decodes to the records.
            let mut body = Bytes::from(frame[4..].to_vec());
            let header_version = ApiKey::Fetch.response_header_version(version);
            ResponseHeader::decode(&mut body, header_version).expect("test");
            let decoded = FetchResponse::decode(&mut body, version).expect("test");
            let records: Vec<_> = decoded.responses[0]
                .partitions
                .iter()
                .map(|p| p.records.clone().expect("test"))
                .collect();
            assert_eq!(records, [&b"hello"[..], b"inline", b"world!"]);
        }
    }

    #[test]
    fn ranges_whose_stand_ins_were_taken_out_are_dropped() {
        let file = std::sync::Arc::new(file_with(b"hello"));
        let mut attachments = Attachments::default();
        let _ = attachments
            .attach(FileRange::new(file, 0, 5))
            .expect("test");
        // A throttled fetch answers no records.
        let pieces = encode(
            ApiKey::Fetch,
            12,
            1,
            &response(vec![Bytes::new()]),
            attachments,
        )
        .expect("test");
        assert!(pieces.iter().all(|p| matches!(p, Piece::Bytes(_))));
    }

    #[test]
    fn a_stand_in_whose_range_does_not_match_is_an_error() {
        let file = std::sync::Arc::new(file_with(b"hello"));
        let mut other = Attachments::default();
        let stand_in = other.attach(FileRange::new(file, 0, 5)).expect("test");
        let err = encode(
            ApiKey::Fetch,
            12,
            1,
            &response(vec![stand_in]),
            Attachments::default(),
        )
        .expect_err("fails");
        assert!(err.contains("stand-in"), "{err}");
    }

    #[tokio::test]
    async fn sendfile_and_copying_writers_send_the_same_bytes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test");
        let addr = listener.local_addr().expect("test");
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let file = std::sync::Arc::new(file_with(&content));
        let client = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("test");
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut got)
                .await
                .expect("test");
            got
        });
        let (server, _) = listener.accept().await.expect("test");
        let (_read, write) = server.into_split();
        let range = || FileRange::new(std::sync::Arc::clone(&file), 1000, 2_500_000);
        let mut zero_copy = Sendfile(write);
        zero_copy.write_bytes(b"head").await.expect("test");
        zero_copy.write_file(range()).await.expect("test");
        let mut copying = Copying(Vec::new());
        copying.write_file(range()).await.expect("test");
        zero_copy.shutdown().await.expect("test");
        drop(zero_copy);
        let got = client.await.expect("test");
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..], &content[1000..2_501_000]);
        assert_eq!(copying.0, &content[1000..2_501_000]);
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_range_ends_the_write_with_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test");
        let addr = listener.local_addr().expect("test");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("test");
        let (server, _) = listener.accept().await.expect("test");
        let file = std::sync::Arc::new(file_with(b"short"));
        let (_read, write) = server.into_split();
        let err = Sendfile(write)
            .write_file(FileRange::new(file, 0, 100))
            .await
            .expect_err("fails");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
