//! The resumable, zero-copy parser for what a SERVER sends: INFO, MSG, HMSG,
//! PING, PONG, +OK and -ERR. Clients (the load generator, tests) use it.
//!
//! Owns client-side framing only. It never copies a payload: each op borrows
//! from the caller's buffer and reports how many bytes it took, so the caller
//! drops them once the whole batch is handled. It must not touch sockets or any
//! server state, and it is independent of the server-side `parser` except for
//! the shared size parser.
//!
//! Resumable: a line or payload cut anywhere by a read is completed by the next
//! call on the same (grown) buffer; a MSG line already parsed is not parsed again
//! while its payload arrives, and the part of a line already scanned for `\n` is
//! not scanned again.

use std::ops::Range;

use thiserror::Error;

use super::parser::{is_blank_byte as is_blank, parse_size, skip_blanks, split_args};

/// Why the bytes a server sent cannot be framed; the connection is unusable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ServerOpError {
    #[error("unknown server operation {0:?}")]
    UnknownOp(String),
    #[error("malformed {op} arguments: {line:?}")]
    BadArgs { op: &'static str, line: String },
    #[error("server control line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("message payload not followed by CRLF")]
    BadPayloadEnd,
}

/// One delivered message (MSG or HMSG), borrowed from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgView<'a> {
    pub subject: &'a [u8],
    pub sid: &'a [u8],
    pub reply: Option<&'a [u8]>,
    /// The header block (HMSG only), through its blank line.
    pub headers: Option<&'a [u8]>,
    /// The payload without headers and without the trailing CRLF.
    pub payload: &'a [u8],
}

/// One server op, borrowed from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp<'a> {
    /// The JSON after `INFO`.
    Info(&'a [u8]),
    Msg(MsgView<'a>),
    Ping,
    Pong,
    Ok,
    /// The text of `-ERR '<text>'`, quotes removed.
    Err(&'a [u8]),
}

/// A parsed MSG/HMSG control line, kept while its payload arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    subject: Range<usize>,
    sid: Range<usize>,
    reply: Option<Range<usize>>,
    hdr_len: Option<usize>,
    payload_start: usize,
    total_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Line { scanned: usize },
    Payload { head: Head },
}

/// Client-side parser state: where it stopped in the caller's buffer.
#[derive(Debug, Clone)]
pub struct ServerParser {
    state: State,
    max_control_line: usize,
}

impl Default for ServerParser {
    fn default() -> Self {
        Self::new(64 * 1024)
    }
}

impl ServerParser {
    /// `max_control_line` bounds INFO lines too, so keep it generous.
    pub fn new(max_control_line: usize) -> Self {
        ServerParser {
            state: State::Line { scanned: 0 },
            max_control_line,
        }
    }

    /// Bytes the buffer must hold before the pending MSG completes, when known:
    /// lets a reader grow its buffer once for a large payload.
    pub fn bytes_needed(&self) -> Option<usize> {
        match &self.state {
            State::Payload { head } => Some(head.payload_start + head.total_len + 2),
            State::Line { .. } => None,
        }
    }

    /// Parses the next complete op at the start of `buf`, returning it with the
    /// number of bytes it spans, or `Ok(None)` when more bytes are needed. The
    /// caller must call again with a buffer that starts at the same byte (plus
    /// whatever arrived since) after `None`, and after `Some((_, n))` with one
    /// that starts `n` bytes later.
    pub fn next_op<'a>(
        &mut self,
        buf: &'a [u8],
    ) -> Result<Option<(ServerOp<'a>, usize)>, ServerOpError> {
        loop {
            match &self.state {
                State::Payload { head } => {
                    let end = head.payload_start + head.total_len;
                    if buf.len() < end + 2 {
                        return Ok(None);
                    }
                    if buf.get(end..end + 2) != Some(b"\r\n".as_slice()) {
                        return Err(ServerOpError::BadPayloadEnd);
                    }
                    let head = head.clone();
                    self.state = State::Line { scanned: 0 };
                    let body = at(buf, head.payload_start..end)?;
                    let (headers, payload) = match head.hdr_len {
                        Some(h) => match body.split_at_checked(h) {
                            Some((hdr, payload)) => (Some(hdr), payload),
                            None => return Err(ServerOpError::BadPayloadEnd),
                        },
                        None => (None, body),
                    };
                    let msg = MsgView {
                        subject: at(buf, head.subject)?,
                        sid: at(buf, head.sid)?,
                        reply: head.reply.map(|r| at(buf, r)).transpose()?,
                        headers,
                        payload,
                    };
                    return Ok(Some((ServerOp::Msg(msg), end + 2)));
                }
                State::Line { scanned } => {
                    let scanned = *scanned;
                    let Some(nl) = memchr::memchr(b'\n', buf.get(scanned..).unwrap_or_default())
                    else {
                        if buf.len() > self.max_control_line {
                            return Err(ServerOpError::LineTooLong(self.max_control_line));
                        }
                        self.state = State::Line { scanned: buf.len() };
                        return Ok(None);
                    };
                    let nl = scanned + nl;
                    let line_end = if nl > 0 && buf.get(nl - 1) == Some(&b'\r') {
                        nl - 1
                    } else {
                        nl
                    };
                    self.state = State::Line { scanned: 0 };
                    if let Some(op) = self.control(buf, line_end, nl + 1)? {
                        return Ok(Some((op, nl + 1)));
                    }
                    // A MSG head: loop to take its payload.
                }
            }
        }
    }

    /// Handles one control line `buf[..end]`; `None` means a MSG head was stored.
    fn control<'a>(
        &mut self,
        buf: &'a [u8],
        end: usize,
        next: usize,
    ) -> Result<Option<ServerOp<'a>>, ServerOpError> {
        let line = at(buf, 0..end)?;
        let name_end = line.iter().position(|b| is_blank(*b)).unwrap_or(line.len());
        let name = line.get(..name_end).unwrap_or_default();
        let args = line.get(skip_blanks(line, name_end)..).unwrap_or_default();
        let rest = skip_blanks(line, name_end);
        let upper = |s: &[u8]| -> [u8; 5] {
            let mut u = [0u8; 5];
            for (d, c) in u.iter_mut().zip(s) {
                *d = c.to_ascii_uppercase();
            }
            u
        };
        if name.len() > 5 {
            return Err(unknown(line));
        }
        match &upper(name) {
            b"MSG\0\0" => self.msg_head(line, rest, next, false).map(|_| None),
            b"HMSG\0" => self.msg_head(line, rest, next, true).map(|_| None),
            b"PING\0" => Ok(Some(ServerOp::Ping)),
            b"PONG\0" => Ok(Some(ServerOp::Pong)),
            b"+OK\0\0" => Ok(Some(ServerOp::Ok)),
            b"INFO\0" => Ok(Some(ServerOp::Info(args))),
            b"-ERR\0" => {
                let text = trim_end(args);
                let unquoted = text
                    .strip_prefix(b"'")
                    .and_then(|t| t.strip_suffix(b"'"))
                    .unwrap_or(text);
                Ok(Some(ServerOp::Err(unquoted)))
            }
            _ => Err(unknown(line)),
        }
    }

    fn msg_head(
        &mut self,
        line: &[u8],
        from: usize,
        next: usize,
        has_headers: bool,
    ) -> Result<(), ServerOpError> {
        let op = if has_headers { "HMSG" } else { "MSG" };
        let bad = || ServerOpError::BadArgs {
            op,
            line: String::from_utf8_lossy(line).into_owned(),
        };
        let mut args: [Range<usize>; 5] = Default::default();
        let n = split_args(line, from, &mut args);
        let (subject, sid, reply, hdr, total) = match (has_headers, args.get(..n)) {
            (false, Some([s, i, t])) => (s, i, None, None, t),
            (false, Some([s, i, r, t])) => (s, i, Some(r), None, t),
            (true, Some([s, i, h, t])) => (s, i, None, Some(h), t),
            (true, Some([s, i, r, h, t])) => (s, i, Some(r), Some(h), t),
            _ => return Err(bad()),
        };
        let size = |r: &Range<usize>| line.get(r.clone()).and_then(parse_size);
        let total_len = size(total).ok_or_else(bad)?;
        let hdr_len = match hdr {
            Some(h) => {
                let h = size(h).ok_or_else(bad)?;
                if h > total_len {
                    return Err(bad());
                }
                Some(h)
            }
            None => None,
        };
        self.state = State::Payload {
            head: Head {
                subject: subject.clone(),
                sid: sid.clone(),
                reply: reply.cloned(),
                hdr_len,
                payload_start: next,
                total_len,
            },
        };
        Ok(())
    }
}

fn unknown(line: &[u8]) -> ServerOpError {
    let shown = line.get(..64).unwrap_or(line);
    ServerOpError::UnknownOp(String::from_utf8_lossy(shown).into_owned())
}

fn trim_end(s: &[u8]) -> &[u8] {
    let blanks = s.iter().rev().take_while(|b| is_blank(**b)).count();
    s.get(..s.len() - blanks).unwrap_or_default()
}

/// `buf[r]`, or an error if a stored range does not fit (it always should).
fn at(buf: &[u8], r: Range<usize>) -> Result<&[u8], ServerOpError> {
    buf.get(r).ok_or(ServerOpError::BadPayloadEnd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses everything in `input`, fed in pieces of `step` bytes.
    fn parse_all(input: &[u8], step: usize) -> Vec<String> {
        let mut p = ServerParser::default();
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            buf.extend_from_slice(chunk);
            let mut off = 0;
            while let Some((op, n)) = p.next_op(&buf[off..]).expect("parse") {
                out.push(describe(&op));
                off += n;
            }
            buf.drain(..off);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        out
    }

    fn describe(op: &ServerOp) -> String {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match op {
            ServerOp::Info(j) => format!("INFO {}", s(j)),
            ServerOp::Msg(m) => format!(
                "MSG {} {} {:?} {:?} {}",
                s(m.subject),
                s(m.sid),
                m.reply.map(s),
                m.headers.map(s),
                s(m.payload)
            ),
            ServerOp::Ping => "PING".into(),
            ServerOp::Pong => "PONG".into(),
            ServerOp::Ok => "+OK".into(),
            ServerOp::Err(t) => format!("ERR {}", s(t)),
        }
    }

    const STREAM: &[u8] = b"INFO {\"a\":1} \r\nPING\r\npong\r\n+OK\r\nMSG foo 1 5\r\nhello\r\n\
        MSG  foo.bar\t22 _INBOX.x 0\r\n\r\nHMSG a 3 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n\
        -ERR 'Authorization Violation'\r\n";

    #[test]
    fn every_split_gives_the_same_ops() {
        let whole = parse_all(STREAM, STREAM.len());
        assert_eq!(
            whole,
            vec![
                "INFO {\"a\":1} ",
                "PING",
                "PONG",
                "+OK",
                "MSG foo 1 None None hello",
                "MSG foo.bar 22 Some(\"_INBOX.x\") None ",
                "MSG a 3 Some(\"r\") Some(\"NATS/1.0\\r\\n\\r\\n\") hi",
                "ERR Authorization Violation",
            ]
        );
        for step in 1..STREAM.len() {
            assert_eq!(parse_all(STREAM, step), whole, "step {step}");
        }
    }

    #[test]
    fn payload_may_contain_crlf_and_op_names() {
        let got = parse_all(b"MSG s 1 8\r\nPING\r\n\r\n\r\n", 3);
        assert_eq!(got, vec!["MSG s 1 None None PING\r\n\r\n"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"FOO bar\r\n"[..],
            b"MSG foo\r\n",
            b"MSG foo 1 x\r\n",
            b"HMSG foo 1 9 3\r\n",
            b"MSG a b c d e f\r\n",
            b"MSG foo 1 2\r\nabcd",
        ] {
            let mut p = ServerParser::default();
            assert!(
                p.next_op(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut p = ServerParser::new(16);
        assert_eq!(p.next_op(&[b'x'; 32]), Err(ServerOpError::LineTooLong(16)));
    }

    #[test]
    fn bytes_needed_reports_the_pending_payload() {
        let mut p = ServerParser::default();
        assert_eq!(p.next_op(b"MSG s 1 100\r\nab"), Ok(None));
        assert_eq!(p.bytes_needed(), Some(13 + 100 + 2));
    }
}
