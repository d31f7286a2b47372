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
        queues: QueueNames,
    },
}

/// The queue-group names of an `LMSG`: the one range of its frame that holds
/// them, separated by spaces or tabs, so that no list is allocated per
/// message (empty: no group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueNames(pub Range<usize>);

impl QueueNames {
    /// No group named: only plain subscribers may take the message.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each name's range in `frame`.
    pub fn ranges<'a>(&self, frame: &'a [u8]) -> impl Iterator<Item = Range<usize>> + 'a {
        let start = self.0.start;
        let text = frame.get(self.0.clone()).unwrap_or_default();
        let mut at = 0usize;
        std::iter::from_fn(move || {
            let rest = text.get(at..)?;
            let skip = rest.iter().position(|b| *b != b' ' && *b != b'\t')?;
            let len = rest
                .get(skip..)?
                .iter()
                .position(|b| *b == b' ' || *b == b'\t')
                .unwrap_or(rest.len() - skip);
            let r = start + at + skip..start + at + skip + len;
            at += skip + len;
            Some(r)
        })
    }
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
        let Some(nl) = memchr::memchr(b'\n', buf.get(..limit).unwrap_or_default()) else {
            if buf.len() > self.max_control_line.saturating_add(2) {
                return Err(LeafError::ControlLineTooLong);
            }
            return Ok(None);
        };
        let line_end = if nl > 0 && buf.get(nl - 1) == Some(&b'\r') {
            nl - 1
        } else {
            nl
        };
        let line = buf.get(..line_end).unwrap_or_default();
        let (op, rest_start) = split_op(line);
        // Upper-cased on the stack: no allocation per message (every leaf
        // op name is shorter than this; a longer word is no op at all).
        let mut upper = [0u8; 8];
        let op: &[u8] = match upper.get_mut(..op.len()) {
            Some(u) => {
                u.copy_from_slice(op);
                u.make_ascii_uppercase();
                u
            }
            None => b"",
        };
        match op {
            b"LMSG" | b"HMSG" => {
                let hdr = op == b"HMSG";
                let (args, queues) = self.msg_args(line, rest_start, hdr)?;
                let need = nl + 1 + args.payload_len + 2;
                if buf.len() < need {
                    let end = nl + 1 + args.payload_len;
                    if buf.len() > end && buf.get(end) != Some(&b'\r') {
                        return Err(LeafError::BadPayloadEnd);
                    }
                    return Ok(None);
                }
                let end = nl + 1 + args.payload_len;
                if buf.get(end..end + 2) != Some(b"\r\n".as_slice()) {
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
                let op = self.control(op, line, rest_start)?;
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
        let text = || String::from_utf8_lossy(at(line, &trimmed)).into_owned();
        match op {
            b"PING" => Ok(Ctl::Ping),
            b"PONG" => Ok(Ctl::Pong),
            b"+OK" => Ok(Ctl::Ok),
            b"INFO" => Ok(Ctl::Info(trimmed)),
            b"CONNECT" => Ok(Ctl::Connect(trimmed)),
            b"-ERR" => Ok(Ctl::Err(trimmed)),
            b"LS+" => {
                let mut a: [Range<usize>; MAX_ARGS] = std::array::from_fn(|_| 0..0);
                let n = split_args(line, rest, &mut a);
                match a.get(..n) {
                    Some([subject]) => Ok(Ctl::Sub(subject.clone(), None)),
                    Some([subject, queue, weight]) => {
                        let w = parse_size(at(line, weight))
                            .and_then(|w| u32::try_from(w).ok())
                            .unwrap_or(1)
                            .max(1);
                        Ok(Ctl::Sub(subject.clone(), Some((queue.clone(), w))))
                    }
                    _ => Err(LeafError::BadSub(text())),
                }
            }
            b"LS-" => {
                let mut a: [Range<usize>; MAX_ARGS] = std::array::from_fn(|_| 0..0);
                let n = split_args(line, rest, &mut a);
                match a.get(..n) {
                    Some([subject]) => Ok(Ctl::Unsub(subject.clone(), None)),
                    Some([subject, queue] | [subject, queue, _]) => {
                        Ok(Ctl::Unsub(subject.clone(), Some(queue.clone())))
                    }
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
    ) -> Result<(PubArgs, QueueNames), LeafError> {
        let mut a: [Range<usize>; MAX_ARGS] = std::array::from_fn(|_| 0..0);
        let n = split_args(line, rest, &mut a);
        let listed = || {
            let parts: Vec<String> = a
                .iter()
                .take(n)
                .map(|r| String::from_utf8_lossy(at(line, r)).into_owned())
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
        let mut queues = QueueNames::default();
        // From the first listed name to the end of the last one.
        let span = |names: &[Range<usize>]| match (names.first(), names.last()) {
            (Some(f), Some(l)) => QueueNames(f.start..l.end),
            _ => QueueNames::default(),
        };
        let arg = |i: usize| a.get(i).cloned().unwrap_or(0..0);
        // Between the subject and the sizes: a reply, or `+ reply queues…`
        // or `| queues…`.
        let middle = a.get(1..n - sizes).unwrap_or_default();
        if n == 2 + sizes {
            reply = Some(arg(1));
        } else if n > 2 + sizes {
            let ind = at(line, &arg(1));
            match ind {
                b"+" => {
                    reply = Some(arg(2));
                    queues = span(middle.get(2..).unwrap_or_default());
                }
                b"|" => queues = span(middle.get(1..).unwrap_or_default()),
                _ => {
                    return Err(LeafError::BadReplyIndicator(
                        String::from_utf8_lossy(ind).into_owned(),
                    ))
                }
            }
        }
        let size = parse_size(at(line, &arg(n - 1))).ok_or_else(|| LeafError::BadSize(listed()))?;
        let header_len = if hdr {
            let h = parse_size(at(line, &arg(n - 2)))
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
                subject: arg(0),
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
    while line.get(i).is_some_and(|b| is_blank(*b)) {
        i += 1;
    }
    let start = i;
    while line.get(i).is_some_and(|b| !is_blank(*b)) {
        i += 1;
    }
    (line.get(start..i).unwrap_or_default(), i)
}

/// `line[r]`, empty if a range does not fit (it always should).
fn at<'a>(line: &'a [u8], r: &Range<usize>) -> &'a [u8] {
    line.get(r.clone()).unwrap_or_default()
}

/// The rest of the line without surrounding blanks.
fn trim_range(line: &[u8], from: usize) -> Range<usize> {
    let mut s = from.min(line.len());
    let mut e = line.len();
    while s < e && line.get(s).is_some_and(|b| is_blank(*b)) {
        s += 1;
    }
    while e > s && line.get(e - 1).is_some_and(|b| is_blank(*b)) {
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
        while line.get(i).is_some_and(|b| is_blank(*b)) {
            i += 1;
        }
        if i >= line.len() {
            return n;
        }
        let start = i;
        while line.get(i).is_some_and(|b| !is_blank(*b)) {
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
