//! The leaf-node protocol as bytes: the ops one server reads from another over
//! a leaf link (INFO, CONNECT, PING/PONG, +OK/-ERR, `LS+`, `LS-`, `LMSG`, and
//! `HMSG` in its leaf form), with nats-server's error texts.
//!
//! Owns framing and argument splitting of leaf ops. It must not touch sockets,
//! interest or server state: it is a pure function of bytes, so it is tested
//! whole, byte by byte and split at every point. The encoders for what a link
//! writes live in `encode` (`lmsg_line`, `ls_line`).

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::parser::{parse_size, PubArgs};

/// Why a leaf link's input was refused: the link is closed (only that link).
/// The display text is what nats-server logs for the same input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    #[error("Unknown Protocol Operation")]
    UnknownOp,
    #[error("maximum control line exceeded")]
    ControlLineTooLong,
    #[error("Maximum Payload Violation")]
    PayloadTooLarge { size: usize, max: usize },
    #[error("processLeafSub Parse Error: '{0}'")]
    BadSub(String),
    #[error("processLeafUnsub Parse Error: '{0}'")]
    BadUnsub(String),
    #[error("processLeafMsgArgs Parse Error: '{0}'")]
    BadMsg(String),
    #[error("processLeafMsgArgs Bad or Missing Reply Indicator: '{0}'")]
    BadReplyIndicator(String),
    #[error("processLeafMsgArgs Bad or Missing Size: '{0}'")]
    BadSize(String),
    #[error("processLeafHeaderMsgArgs Parse Error: '{0}'")]
    BadHeaderMsg(String),
    #[error("processLeafHeaderMsgArgs Bad or Missing Header Size: '{0}'")]
    BadHeaderSize(String),
    #[error("payload not followed by CRLF")]
    BadPayloadEnd,
}

/// One leaf op. Byte fields are ranges into `frame`, so a message's payload is
/// shared with every local receiver without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafOp {
    Info {
        frame: Bytes,
        json: Range<usize>,
    },
    Connect {
        frame: Bytes,
        json: Range<usize>,
    },
    Ping,
    Pong,
    Ok,
    Err {
        frame: Bytes,
        text: Range<usize>,
    },
    /// `LS+ <subject> [<queue> <weight>]`: the peer has interest.
    Sub {
        frame: Bytes,
        subject: Range<usize>,
        queue: Option<(Range<usize>, u32)>,
    },
    /// `LS- <subject> [<queue>]`: it has no more.
    Unsub {
        frame: Bytes,
        subject: Range<usize>,
        queue: Option<Range<usize>>,
    },
    /// `LMSG`/`HMSG`: a message; `queues` are the groups the sender chose us for.
    Msg {
        frame: Bytes,
        args: PubArgs,
        queues: Vec<Range<usize>>,
    },
}

/// The per-link parser: limits only; input stays in the caller's buffer until
/// an op is complete (nothing is taken off for a partial op).
#[derive(Debug, Clone)]
pub struct LeafParser {
    max_control_line: usize,
    max_payload: usize,
}

const MAX_ARGS: usize = 32;

impl LeafParser {
    /// A parser enforcing this server's control-line and payload limits.
    pub fn new(max_control_line: usize, max_payload: usize) -> Self {
        LeafParser {
            max_control_line,
            max_payload,
        }
    }

    /// Takes the next complete op off `buf`, `Ok(None)` if more bytes are needed.
    pub fn next_op(&mut self, buf: &mut BytesMut) -> Result<Option<LeafOp>, LeafError> {
        let limit = buf.len().min(self.max_control_line.saturating_add(2));
        let Some(nl) = memchr::memchr(b'\n', &buf[..limit]) else {
            if buf.len() > self.max_control_line.saturating_add(2) {
                return Err(LeafError::ControlLineTooLong);
            }
            return Ok(None);
        };
        let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let line = &buf[..line_end];
        let (op, rest_start) = split_op(line);
        let op = op.to_ascii_uppercase();
        match op.as_slice() {
            b"LMSG" | b"HMSG" => {
                let hdr = op.as_slice() == b"HMSG";
                let (args, queues) = self.msg_args(line, rest_start, hdr)?;
                let need = nl + 1 + args.payload_len + 2;
                if buf.len() < need {
                    let end = nl + 1 + args.payload_len;
                    if buf.len() > end && buf[end] != b'\r' {
                        return Err(LeafError::BadPayloadEnd);
                    }
                    return Ok(None);
                }
                let end = nl + 1 + args.payload_len;
                if buf[end] != b'\r' || buf[end + 1] != b'\n' {
                    return Err(LeafError::BadPayloadEnd);
                }
                let frame = buf.split_to(need).freeze();
                let args = PubArgs {
                    payload_start: nl + 1,
                    ..args
                };
                Ok(Some(LeafOp::Msg {
                    frame,
                    args,
                    queues,
                }))
            }
            _ => {
                let op = self.control(&op, line, rest_start)?;
                let frame = buf.split_to(nl + 1).freeze();
                Ok(Some(match op {
                    Ctl::Ping => LeafOp::Ping,
                    Ctl::Pong => LeafOp::Pong,
                    Ctl::Ok => LeafOp::Ok,
                    Ctl::Info(json) => LeafOp::Info { frame, json },
                    Ctl::Connect(json) => LeafOp::Connect { frame, json },
                    Ctl::Err(text) => LeafOp::Err { frame, text },
                    Ctl::Sub(subject, queue) => LeafOp::Sub {
                        frame,
                        subject,
                        queue,
                    },
                    Ctl::Unsub(subject, queue) => LeafOp::Unsub {
                        frame,
                        subject,
                        queue,
                    },
                }))
            }
        }
    }

    fn control(&self, op: &[u8], line: &[u8], rest: usize) -> Result<Ctl, LeafError> {
        let trimmed = trim_range(line, rest);
        let text = || String::from_utf8_lossy(&line[trimmed.clone()]).into_owned();
        match op {
            b"PING" => Ok(Ctl::Ping),
            b"PONG" => Ok(Ctl::Pong),
            b"+OK" => Ok(Ctl::Ok),
            b"INFO" => Ok(Ctl::Info(trimmed)),
            b"CONNECT" => Ok(Ctl::Connect(trimmed)),
            b"-ERR" => Ok(Ctl::Err(trimmed)),
            b"LS+" => {
                let mut a: [Range<usize>; MAX_ARGS] = std::array::from_fn(|_| 0..0);
                match split_args(line, rest, &mut a) {
                    1 => Ok(Ctl::Sub(a[0].clone(), None)),
                    3 => {
                        let w = parse_size(&line[a[2].clone()])
                            .and_then(|w| u32::try_from(w).ok())
                            .unwrap_or(1)
                            .max(1);
                        Ok(Ctl::Sub(a[0].clone(), Some((a[1].clone(), w))))
                    }
                    _ => Err(LeafError::BadSub(text())),
                }
            }
            b"LS-" => {
                let mut a: [Range<usize>; MAX_ARGS] = std::array::from_fn(|_| 0..0);
                match split_args(line, rest, &mut a) {
                    1 => Ok(Ctl::Unsub(a[0].clone(), None)),
                    2 | 3 => Ok(Ctl::Unsub(a[0].clone(), Some(a[1].clone()))),
                    _ => Err(LeafError::BadUnsub(text())),
                }
            }
            _ => Err(LeafError::UnknownOp),
        }
    }

    /// Splits `LMSG`/`HMSG` arguments as nats-server's processLeaf(Header)MsgArgs.
    fn msg_args(
        &self,
        line: &[u8],
        rest: usize,
        hdr: bool,
    ) -> Result<(PubArgs, Vec<Range<usize>>), LeafError> {
        let mut a: [Range<usize>; MAX_ARGS] = std::array::from_fn(|_| 0..0);
        let n = split_args(line, rest, &mut a);
        let listed = || {
            let parts: Vec<String> = a[..n.min(MAX_ARGS)]
                .iter()
                .map(|r| String::from_utf8_lossy(&line[r.clone()]).into_owned())
                .collect();
            format!("[{}]", parts.join(" "))
        };
        let sizes = usize::from(hdr) + 1;
        if n > MAX_ARGS || n < 1 + sizes {
            return Err(if hdr {
                LeafError::BadHeaderMsg(listed())
            } else {
                LeafError::BadMsg(listed())
            });
        }
        let mut reply = None;
        let mut queues = Vec::new();
        if n == 2 + sizes {
            reply = Some(a[1].clone());
        } else if n > 2 + sizes {
            let ind = &line[a[1].clone()];
            match ind {
                b"+" => {
                    reply = Some(a[2].clone());
                    queues.extend(a[3..n - sizes].iter().cloned());
                }
                b"|" => queues.extend(a[2..n - sizes].iter().cloned()),
                _ => {
                    return Err(LeafError::BadReplyIndicator(
                        String::from_utf8_lossy(ind).into_owned(),
                    ))
                }
            }
        }
        let size =
            parse_size(&line[a[n - 1].clone()]).ok_or_else(|| LeafError::BadSize(listed()))?;
        let header_len = if hdr {
            let h = parse_size(&line[a[n - 2].clone()])
                .filter(|h| *h <= size)
                .ok_or_else(|| {
                    LeafError::BadHeaderSize(String::from_utf8_lossy(line).into_owned())
                })?;
            Some(h)
        } else {
            None
        };
        if size > self.max_payload {
            return Err(LeafError::PayloadTooLarge {
                size,
                max: self.max_payload,
            });
        }
        Ok((
            PubArgs {
                subject: a[0].clone(),
                reply,
                header_len,
                payload_start: 0,
                payload_len: size,
            },
            queues,
        ))
    }
}

enum Ctl {
    Ping,
    Pong,
    Ok,
    Info(Range<usize>),
    Connect(Range<usize>),
    Err(Range<usize>),
    Sub(Range<usize>, Option<(Range<usize>, u32)>),
    Unsub(Range<usize>, Option<Range<usize>>),
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The op name and where its arguments start.
fn split_op(line: &[u8]) -> (&[u8], usize) {
    let mut i = 0;
    while i < line.len() && is_blank(line[i]) {
        i += 1;
    }
    let start = i;
    while i < line.len() && !is_blank(line[i]) {
        i += 1;
    }
    (&line[start..i], i)
}

/// The rest of the line without surrounding blanks.
fn trim_range(line: &[u8], from: usize) -> Range<usize> {
    let mut s = from.min(line.len());
    let mut e = line.len();
    while s < e && is_blank(line[s]) {
        s += 1;
    }
    while e > s && is_blank(line[e - 1]) {
        e -= 1;
    }
    s..e
}

/// Splits blank-separated arguments into `out`; returns how many there were
/// (more than `out` holds: `out.len() + 1`).
fn split_args(line: &[u8], from: usize, out: &mut [Range<usize>]) -> usize {
    let mut n = 0;
    let mut i = from;
    loop {
        while i < line.len() && is_blank(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return n;
        }
        let start = i;
        while i < line.len() && !is_blank(line[i]) {
            i += 1;
        }
        let Some(slot) = out.get_mut(n) else {
            return out.len() + 1;
        };
        *slot = start..i;
        n += 1;
    }
}

#[cfg(test)]
#[path = "leaf_tests.rs"]
mod tests;
