//! One broker connection: framing, correlation ids, and version negotiation from ApiVersions.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::ClientError;
use crate::security::ClientSecurity;

/// Largest response the client accepts.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// A byte stream to a broker: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A connection to one broker.
pub struct Connection {
    addr: String,
    stream: Box<dyn Stream>,
    next_correlation: i32,
    client_id: String,
    versions: HashMap<i16, (i16, i16)>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects over PLAINTEXT and learns the broker's API versions.
    pub async fn connect(addr: &str, client_id: &str) -> Result<Connection, ClientError> {
        Self::connect_with(addr, client_id, None, &ClientSecurity::plaintext()).await
    }

    /// Connects with `security` (TLS, then SASL after ApiVersions).
    pub async fn connect_secure(
        addr: &str,
        client_id: &str,
        security: &ClientSecurity,
    ) -> Result<Connection, ClientError> {
        Self::connect_with(addr, client_id, None, security).await
    }

    /// [`Connection::connect`] with the socket's receive buffer (`SO_RCVBUF`) set to
    /// `receive_buffer_bytes` before connecting (Kafka's `*.socket.receive.buffer.bytes`;
    /// `None`: the OS default, with its auto-tuning).
    pub async fn connect_with(
        addr: &str,
        client_id: &str,
        receive_buffer_bytes: Option<u32>,
        security: &ClientSecurity,
    ) -> Result<Connection, ClientError> {
        let io = |source| ClientError::Io {
            addr: addr.to_string(),
            source,
        };
        let stream = match receive_buffer_bytes {
            None => TcpStream::connect(addr).await.map_err(io)?,
            Some(bytes) => {
                let mut last = std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the address resolves to nothing",
                );
                let mut connected = None;
                for a in tokio::net::lookup_host(addr).await.map_err(io)? {
                    let socket = if a.is_ipv4() {
                        tokio::net::TcpSocket::new_v4()
                    } else {
                        tokio::net::TcpSocket::new_v6()
                    }
                    .map_err(io)?;
                    socket.set_recv_buffer_size(bytes).map_err(io)?;
                    match socket.connect(a).await {
                        Ok(s) => {
                            connected = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                connected.ok_or_else(|| io(last))?
            }
        };
        stream.set_nodelay(true).map_err(io)?;
        let stream: Box<dyn Stream> = match &security.tls {
            None => Box::new(stream),
            Some(tls) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| ClientError::Config(format!("server name {host:?}: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(tls))
                    .connect(name, stream)
                    .await
                    .map_err(|e| ClientError::Io {
                        addr: addr.to_string(),
                        source: e,
                    })?;
                Box::new(tls)
            }
        };
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            next_correlation: 1,
            client_id: client_id.to_string(),
            versions: HashMap::new(),
        };
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("odradek-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp = conn.send(&req, 3).await?;
        ClientError::check(resp.error_code, None)?;
        conn.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Some(login) = &security.sasl {
            crate::sasl::authenticate(&mut conn, login).await?;
        }
        Ok(conn)
    }

    /// The broker's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The highest version both sides speak, up to `ours`.
    pub fn version(&self, key: ApiKey, ours: i16) -> Result<i16, ClientError> {
        let (min, max) =
            self.versions.get(&(key as i16)).copied().ok_or_else(|| {
                ClientError::Protocol(format!("the broker does not serve {key:?}"))
            })?;
        let v = ours.min(max);
        if v < min.max(key.valid_versions().min) {
            return Err(ClientError::Protocol(format!(
                "no common version of {key:?} (broker {min}..={max}, client ..={ours})"
            )));
        }
        Ok(v)
    }

    /// Sends a request and reads its response.
    pub async fn send<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let correlation = self.write(req, version).await?;
        self.receive::<R>(correlation, version).await
    }

    /// Writes a request without waiting for its response; read it later with
    /// [`Connection::receive`], in the order the requests were written (pipelining).
    pub async fn send_pipelined<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<i32, ClientError> {
        self.write(req, version).await
    }

    /// Reads the response to the oldest pipelined request, which must be `correlation`.
    pub async fn receive<R: Request>(
        &mut self,
        correlation: i32,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let mut body = self
            .response_body(correlation, R::Response::header_version(version))
            .await?;
        R::Response::decode(&mut body, version)
            .map_err(|e| ClientError::Protocol(format!("bad response: {e}")))
    }

    /// Reads the next response frame, which must answer `correlation`, and returns its body.
    async fn response_body(
        &mut self,
        correlation: i32,
        header_version: i16,
    ) -> Result<Bytes, ClientError> {
        let mut body = self.read_frame().await?;
        let header = ResponseHeader::decode(&mut body, header_version)
            .map_err(|e| ClientError::Protocol(format!("bad response header: {e}")))?;
        if header.correlation_id != correlation {
            return Err(ClientError::Protocol(format!(
                "response {} for request {correlation}",
                header.correlation_id
            )));
        }
        Ok(body)
    }

    /// Sends `req` at `version`, newer than the codec crate's: it is encoded at `codec_version`
    /// and `newer` makes the newer body of it; the response's body is made older by `older` and
    /// decoded at `codec_version` (see `odradek_common::share_v2`).
    pub async fn send_newer<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        codec_version: i16,
        newer: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
        older: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
    ) -> Result<R::Response, ClientError> {
        let mut body = BytesMut::new();
        req.encode(&mut body, codec_version)
            .map_err(|e| ClientError::Protocol(format!("cannot encode: {e}")))?;
        let body = newer(&body).map_err(ClientError::Protocol)?;
        let correlation = self
            .write_body(R::KEY, version, R::header_version(version), &body)
            .await?;
        let frame = self
            .response_body(correlation, R::Response::header_version(version))
            .await?;
        let mut body = Bytes::from(older(&frame).map_err(ClientError::Protocol)?);
        R::Response::decode(&mut body, codec_version)
            .map_err(|e| ClientError::Protocol(format!("bad response: {e}")))
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub async fn send_no_response<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<(), ClientError> {
        self.write(req, version).await.map(|_| ())
    }

    async fn write<R: Request>(&mut self, req: &R, version: i16) -> Result<i32, ClientError> {
        let mut body = BytesMut::new();
        req.encode(&mut body, version)
            .map_err(|e| ClientError::Protocol(format!("cannot encode: {e}")))?;
        self.write_body(R::KEY, version, R::header_version(version), &body)
            .await
    }

    /// Writes a request frame: its header, then `body`.
    async fn write_body(
        &mut self,
        key: i16,
        version: i16,
        header_version: i16,
        body: &[u8],
    ) -> Result<i32, ClientError> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let mut buf = BytesMut::with_capacity(body.len() + 64);
        buf.put_i32(0);
        let header = RequestHeader::default()
            .with_request_api_key(key)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        header
            .encode(&mut buf, header_version)
            .map_err(|e| ClientError::Protocol(format!("cannot encode: {e}")))?;
        buf.put_slice(body);
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        let addr = self.addr.clone();
        self.stream
            .write_all(&buf)
            .await
            .map_err(|source| ClientError::Io { addr, source })?;
        Ok(correlation)
    }

    async fn read_frame(&mut self) -> Result<Bytes, ClientError> {
        let addr = self.addr.clone();
        let io = |source| ClientError::Io {
            addr: addr.clone(),
            source,
        };
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.map_err(io)?;
        let size = i32::from_be_bytes(size);
        if size < 0 || size as usize > MAX_RESPONSE_BYTES {
            return Err(ClientError::Protocol(format!(
                "response size {size} out of range"
            )));
        }
        // Read into spare capacity (no zero-filling), at most this frame's bytes.
        let mut buf = BytesMut::with_capacity(size as usize);
        let mut frame = (&mut self.stream).take(size as u64);
        while buf.len() < size as usize {
            if frame.read_buf(&mut buf).await.map_err(io)? == 0 {
                return Err(ClientError::Protocol(
                    "connection closed mid-response".into(),
                ));
            }
        }
        Ok(buf.freeze())
    }
}
