//! A lean NATS client connection for load generation: URL and credentials,
//! the INFO/CONNECT/PING handshake, batched writes, and reads parsed with the
//! project's resumable `server_ops` parser.
//!
//! Owns one socket and its read buffer. It must not measure or report anything
//! (the workload modules do) and never panics on what a server sends: every
//! surprise becomes a `ConnError`.

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use natrium_proto::server_ops::{MsgView, ServerOp, ServerOpError, ServerParser};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long a connect, a handshake or a flush may take before the run fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything that can go wrong talking to a server.
#[derive(Debug, Error)]
pub enum ConnError {
    #[error("invalid server URL {0:?} (expected nats://[user:pass@|token@]host:port)")]
    BadUrl(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("timed out after {secs} s waiting for {what} from {addr}")]
    Timeout {
        what: &'static str,
        addr: String,
        secs: u64,
    },
    #[error("server {0} closed the connection")]
    Closed(String),
    #[error("server {addr} refused the connection: -ERR '{text}'")]
    Refused { addr: String, text: String },
    #[error("server {addr} sent -ERR '{text}'")]
    Server { addr: String, text: String },
    #[error("i/o error with {addr}: {source}")]
    Io { addr: String, source: io::Error },
    #[error("protocol error from {addr}: {source}")]
    Protocol { addr: String, source: ServerOpError },
}

/// Where to connect and with which credentials (CONNECT fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub addr: String,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
}

impl Endpoint {
    /// Parses `nats://[user:pass@|token@]host[:port]` (also `tcp://` or bare).
    pub fn parse(url: &str) -> Result<Endpoint, ConnError> {
        let bad = || ConnError::BadUrl(url.to_string());
        let rest = url
            .strip_prefix("nats://")
            .or_else(|| url.strip_prefix("tcp://"))
            .unwrap_or(url);
        let (auth, host) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let host = host.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(bad());
        }
        let addr = match host.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => host.to_string(),
            Some(_) => return Err(bad()),
            None => format!("{host}:4222"),
        };
        let mut ep = Endpoint {
            url: url.to_string(),
            addr,
            ..Default::default()
        };
        match auth.map(|a| a.split_once(':')) {
            Some(Some((u, p))) => {
                ep.user = Some(u.to_string());
                ep.pass = Some(p.to_string());
            }
            Some(None) => ep.token = auth.map(str::to_string),
            None => {}
        }
        Ok(ep)
    }

    /// The CONNECT line (plus a PING) this endpoint's credentials call for.
    fn connect_line(&self, name: &str) -> Vec<u8> {
        let mut obj = serde_json::json!({
            "verbose": false, "pedantic": false, "echo": true, "lang": "rust",
            "version": env!("CARGO_PKG_VERSION"), "protocol": 1, "headers": false,
            "name": name,
        });
        for (k, v) in [
            ("user", &self.user),
            ("pass", &self.pass),
            ("auth_token", &self.token),
        ] {
            if let Some(v) = v {
                obj[k] = serde_json::Value::String(v.clone());
            }
        }
        format!("CONNECT {obj}\r\nPING\r\n").into_bytes()
    }
}

/// One connection: socket, read buffer and parser state.
pub struct Conn {
    sock: TcpStream,
    buf: BytesMut,
    parser: ServerParser,
    pongs: u64,
    pongs_owed: usize,
    pub addr: String,
}

impl Conn {
    /// Connects, reads INFO, sends CONNECT + PING and waits for the PONG.
    pub async fn connect(ep: &Endpoint, name: &str) -> Result<Conn, ConnError> {
        let addr = ep.addr.clone();
        let sock = match timeout(IO_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(ConnError::Connect { addr, source }),
            Err(_) => return Err(Self::timeout_err("the TCP connection", &addr)),
        };
        let _ = sock.set_nodelay(true);
        let mut c = Conn {
            sock,
            buf: BytesMut::with_capacity(256 * 1024),
            parser: ServerParser::default(),
            pongs: 0,
            pongs_owed: 0,
            addr,
        };
        match timeout(IO_TIMEOUT, c.handshake(ep, name)).await {
            Ok(r) => r.map(|_| c),
            Err(_) => Err(Self::timeout_err("INFO/PONG", &ep.addr)),
        }
    }

    async fn handshake(&mut self, ep: &Endpoint, name: &str) -> Result<(), ConnError> {
        let mut saw_info = false;
        while !saw_info {
            self.fill().await?;
            let mut off = 0;
            while let Some((op, n)) =
                self.parser
                    .next_op(&self.buf[off..])
                    .map_err(|source| ConnError::Protocol {
                        addr: self.addr.clone(),
                        source,
                    })?
            {
                off += n;
                match op {
                    ServerOp::Info(_) => {
                        saw_info = true;
                        break;
                    }
                    ServerOp::Err(t) => {
                        return Err(ConnError::Refused {
                            addr: self.addr.clone(),
                            text: String::from_utf8_lossy(t).into_owned(),
                        })
                    }
                    _ => {}
                }
            }
            self.buf.advance(off);
        }
        self.write_all(&ep.connect_line(name)).await?;
        let target = self.pongs + 1;
        while self.pongs < target {
            match self.read_some(&mut |_| {}).await {
                Err(ConnError::Server { addr, text }) => {
                    return Err(ConnError::Refused { addr, text })
                }
                Err(ConnError::Closed(addr)) => {
                    return Err(ConnError::Refused {
                        addr,
                        text: "closed during handshake".into(),
                    })
                }
                r => r?,
            }
        }
        Ok(())
    }

    fn timeout_err(what: &'static str, addr: &str) -> ConnError {
        ConnError::Timeout {
            what,
            addr: addr.to_string(),
            secs: IO_TIMEOUT.as_secs(),
        }
    }

    fn io_err(&self, source: io::Error) -> ConnError {
        match source.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof => ConnError::Closed(self.addr.clone()),
            _ => ConnError::Io {
                addr: self.addr.clone(),
                source,
            },
        }
    }

    /// Writes one batch with one call; PONGs owed to the server go first.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.pay_pongs().await?;
        self.sock.write_all(bytes).await.map_err(|e| self.io_err(e))
    }

    async fn pay_pongs(&mut self) -> Result<(), ConnError> {
        while self.pongs_owed > 0 {
            self.pongs_owed -= 1;
            self.sock
                .write_all(b"PONG\r\n")
                .await
                .map_err(|e| self.io_err(e))?;
        }
        Ok(())
    }

    async fn fill(&mut self) -> Result<(), ConnError> {
        let want = self.parser.bytes_needed().unwrap_or(0).max(64 * 1024);
        if self.buf.capacity() - self.buf.len() < want / 2 {
            self.buf.reserve(want);
        }
        match self.sock.read_buf(&mut self.buf).await {
            Ok(0) => Err(ConnError::Closed(self.addr.clone())),
            Ok(_) => Ok(()),
            Err(e) => Err(self.io_err(e)),
        }
    }

    /// Waits for bytes, then hands every complete MSG to `f`; answers PINGs,
    /// counts PONGs, turns `-ERR` into an error.
    pub async fn read_some(&mut self, f: &mut impl FnMut(&MsgView<'_>)) -> Result<(), ConnError> {
        self.fill().await?;
        self.process(f)?;
        self.pay_pongs().await
    }

    /// Like `read_some` but never waits: drains what the socket already holds
    /// (server PINGs, errors, a close) between batches of a publisher.
    pub async fn poll(&mut self) -> Result<(), ConnError> {
        loop {
            self.buf.reserve(4096);
            match self.sock.try_read_buf(&mut self.buf) {
                Ok(0) => return Err(ConnError::Closed(self.addr.clone())),
                Ok(_) => self.process(&mut |_| {})?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(self.io_err(e)),
            }
        }
        self.pay_pongs().await
    }

    fn process(&mut self, f: &mut impl FnMut(&MsgView<'_>)) -> Result<(), ConnError> {
        let mut off = 0;
        loop {
            let step = self.parser.next_op(&self.buf[off..]);
            let (op, n) = match step {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(source) => {
                    return Err(ConnError::Protocol {
                        addr: self.addr.clone(),
                        source,
                    })
                }
            };
            off += n;
            match op {
                ServerOp::Msg(m) => f(&m),
                ServerOp::Ping => self.pongs_owed += 1,
                ServerOp::Pong => self.pongs += 1,
                ServerOp::Info(_) | ServerOp::Ok => {}
                ServerOp::Err(t) => {
                    return Err(ConnError::Server {
                        addr: self.addr.clone(),
                        text: String::from_utf8_lossy(t).into_owned(),
                    })
                }
            }
        }
        self.buf.advance(off);
        Ok(())
    }

    /// PING and wait for its PONG: everything sent before was processed.
    /// Messages arriving meanwhile go to `f`.
    pub async fn flush_with(
        &mut self,
        wait: Duration,
        f: &mut impl FnMut(&MsgView<'_>),
    ) -> Result<(), ConnError> {
        self.write_all(b"PING\r\n").await?;
        let target = self.pongs + 1;
        let addr = self.addr.clone();
        timeout(wait, async {
            while self.pongs < target {
                self.read_some(f).await?;
            }
            Ok(())
        })
        .await
        .map_err(|_| ConnError::Timeout {
            what: "PONG",
            addr,
            secs: wait.as_secs(),
        })?
    }

    /// `flush_with` for connections that expect no messages.
    pub async fn flush(&mut self) -> Result<(), ConnError> {
        self.flush_with(IO_TIMEOUT, &mut |_| {}).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_credentials() {
        let e = Endpoint::parse("nats://bob:secret@127.0.0.1:4333").unwrap();
        assert_eq!(e.addr, "127.0.0.1:4333");
        assert_eq!(e.user.as_deref(), Some("bob"));
        assert_eq!(e.pass.as_deref(), Some("secret"));
        let e = Endpoint::parse("tok@localhost").unwrap();
        assert_eq!(e.addr, "localhost:4222");
        assert_eq!(e.token.as_deref(), Some("tok"));
        assert!(Endpoint::parse("nats://host:99999").is_err());
        assert!(Endpoint::parse("nats://").is_err());
    }
}
