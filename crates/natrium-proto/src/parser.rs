//! The resumable, zero-copy parser for client ops.
//!
//! Owns framing: finding control lines, splitting arguments, taking exactly the
//! declared payload. It never scans a payload and never copies one: a complete
//! op is split off the read buffer as one `Bytes` frame and its parts are ranges
//! into it. It must not validate subjects or touch server state; that is the
//! client's job once it holds an `Op`.
//!
//! Resumable: a control line or payload split across reads anywhere (even inside
//! the CRLF) is completed on the next call; the part of a line already scanned
//! for `\n` is not scanned again, and a PUB whose payload has not fully arrived
//! keeps its parsed arguments so they are not parsed again.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::errors::ProtocolError;

/// A PUB or HPUB, as ranges into its frame. Cheap to copy around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubArgs {
    pub subject: Range<usize>,
    pub reply: Option<Range<usize>>,
    /// Header bytes at the start of the payload (HPUB only).
    pub header_len: Option<usize>,
    /// Where the payload (headers included) starts in the frame.
    pub payload_start: usize,
    /// Total payload length (headers included), without the trailing CRLF.
    pub payload_len: usize,
}

/// One client op. Byte fields are ranges into `frame` so that the payload can be
/// shared (`frame.slice(..)`) without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Connect {
        frame: Bytes,
        json: Range<usize>,
    },
    Pub {
        frame: Bytes,
        args: PubArgs,
    },
    Sub {
        frame: Bytes,
        subject: Range<usize>,
        queue: Option<Range<usize>>,
        sid: Range<usize>,
    },
    Unsub {
        frame: Bytes,
        sid: Range<usize>,
        max: Option<u64>,
    },
    Ping,
    Pong,
    /// A client may send INFO, +OK or -ERR; the reference server ignores them.
    Ignored,
}

impl Op {
    /// Payload plus its trailing CRLF, as one shared slice: what a subscriber's
    /// MSG carries after its header line.
    pub fn payload_with_crlf(frame: &Bytes, args: &PubArgs) -> Bytes {
        frame.slice(args.payload_start..args.payload_start + args.payload_len + 2)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Looking for the end of a control line; `scanned` bytes hold no `\n`.
    Line { scanned: usize },
    /// A PUB/HPUB line is parsed; waiting for `need` bytes in total.
    Payload { args: PubArgs, need: usize },
}

/// The per-connection parser: limits plus where it stopped in the buffer.
#[derive(Debug, Clone)]
pub struct Parser {
    state: State,
    max_control_line: usize,
    max_payload: usize,
}

const MAX_ARGS: usize = 6;
const NO_ARG: Range<usize> = 0..0;

impl Parser {
    pub fn new(max_control_line: usize, max_payload: usize) -> Self {
        Parser {
            state: State::Line { scanned: 0 },
            max_control_line,
            max_payload,
        }
    }

    /// Changes limits (config reload); applies from the next op.
    pub fn set_limits(&mut self, max_control_line: usize, max_payload: usize) {
        self.max_control_line = max_control_line;
        self.max_payload = max_payload;
    }

    /// Bytes the buffer must hold before the next op can complete, when known
    /// (a large payload): lets the reader grow its buffer once.
    pub fn bytes_needed(&self) -> Option<usize> {
        match &self.state {
            State::Payload { need, .. } => Some(*need),
            State::Line { .. } => None,
        }
    }

    /// Takes the next complete op off the front of `buf`, or `Ok(None)` when more
    /// bytes are needed. After an error the connection must be closed.
    pub fn next_op(&mut self, buf: &mut BytesMut) -> Result<Option<Op>, ProtocolError> {
        loop {
            match &self.state {
                State::Payload { args, need } => {
                    let end = args.payload_start + args.payload_len;
                    if buf.len() < *need {
                        // As the reference: a wrong byte where the CR belongs is an
                        // error at once, not after more bytes arrive.
                        if buf.len() > end && buf.get(end) != Some(&b'\r') {
                            return Err(ProtocolError::BadPayloadEnd);
                        }
                        return Ok(None);
                    }
                    if buf.get(end..end + 2) != Some(b"\r\n".as_slice()) {
                        return Err(ProtocolError::BadPayloadEnd);
                    }
                    let frame = buf.split_to(*need).freeze();
                    let args = args.clone();
                    self.state = State::Line { scanned: 0 };
                    return Ok(Some(Op::Pub { frame, args }));
                }
                State::Line { scanned } => {
                    let scanned = *scanned;
                    let unscanned = buf.get(scanned..).unwrap_or_default();
                    let nl = match memchr::memchr(b'\n', unscanned) {
                        Some(i) => scanned + i,
                        None => {
                            self.check_partial_line(buf)?;
                            self.state = State::Line { scanned: buf.len() };
                            return Ok(None);
                        }
                    };
                    let line_end = if nl > 0 && buf.get(nl - 1) == Some(&b'\r') {
                        nl - 1
                    } else {
                        nl
                    };
                    self.state = State::Line { scanned: 0 };
                    let line = buf.get(..line_end).unwrap_or_default();
                    match self.parse_line(line, nl + 1)? {
                        Parsed::Done(kind) => {
                            let frame = buf.split_to(nl + 1).freeze();
                            return Ok(Some(kind.into_op(frame)));
                        }
                        Parsed::Skip => {
                            let _ = buf.split_to(nl + 1);
                        }
                        Parsed::NeedPayload(args) => {
                            let need = args.payload_start + args.payload_len + 2;
                            self.state = State::Payload { args, need };
                        }
                    }
                }
            }
        }
    }

    /// Errors a control line that has no `\n` yet can already be refused for,
    /// so a client cannot grow the buffer without bound and an unknown op is
    /// refused at once (as the reference does). Only errors that the complete
    /// line would also get: the outcome never depends on how reads split.
    fn check_partial_line(&self, buf: &[u8]) -> Result<(), ProtocolError> {
        let head = buf.get(..MAX_OP_LEN + 1).unwrap_or(buf);
        let op_end = head.iter().position(|b| is_blank_byte(*b));
        let known = match op_end {
            Some(e) => {
                let name = head.get(..e).unwrap_or_default();
                lenient_op(name).is_some() || op_name(name).is_some()
            }
            // Longer than any op name plus a CR: only PING/PONG/+OK lines.
            None if buf.len() > head.len() => lenient_op(head).is_some(),
            None => {
                let tok = head.strip_suffix(b"\r").unwrap_or(head);
                lenient_op(tok).is_some() || could_be_op(tok)
            }
        };
        if !known {
            return Err(ProtocolError::UnknownOp);
        }
        if buf.len() <= self.max_control_line {
            return Ok(());
        }
        // The complete line is at least this long: the last byte may be the CR.
        let min_len = buf.len() - 1;
        if min_len > self.max_control_line + LINE_SLACK {
            return Err(ProtocolError::ControlLineTooLong(self.max_control_line));
        }
        if let Some(e) = op_end {
            if lenient_op(head.get(..e).unwrap_or_default()).is_none() {
                let arg_start = skip_blanks(buf, e);
                if min_len.saturating_sub(arg_start) > self.max_control_line {
                    return Err(ProtocolError::ControlLineTooLong(self.max_control_line));
                }
            }
        }
        Ok(())
    }

    fn parse_line(&self, line: &[u8], line_len: usize) -> Result<Parsed, ProtocolError> {
        let too_long = ProtocolError::ControlLineTooLong(self.max_control_line);
        // PING, PONG and +OK: the reference ignores whatever follows the name.
        if let Some(kind) = lenient_op(line) {
            if line.len() > self.max_control_line + LINE_SLACK {
                return Err(too_long);
            }
            return Ok(match kind {
                Lenient::Ping => Parsed::Done(Kind::Ping),
                Lenient::Pong => Parsed::Done(Kind::Pong),
                Lenient::Ok => Parsed::Skip,
            });
        }
        let op_end = line
            .iter()
            .position(|b| is_blank_byte(*b))
            .unwrap_or(line.len());
        let Some(name) = op_name(line.get(..op_end).unwrap_or_default()) else {
            return Err(ProtocolError::UnknownOp);
        };
        // The reference limits the arguments (from the first non-blank after the
        // op name), not the whole line; the slack bounds blank runs before them.
        if line.len() > self.max_control_line + LINE_SLACK
            || line.len() - skip_blanks(line, op_end) > self.max_control_line
        {
            return Err(too_long);
        }
        // `PUB\r\n` (no blank after the name) is an unknown op to the reference;
        // `PUB \r\n` is malformed arguments.
        if op_end == line.len() && !matches!(name, OpName::Connect | OpName::Info) {
            return Err(ProtocolError::UnknownOp);
        }
        let mut args = [NO_ARG; MAX_ARGS];
        match name {
            OpName::Pub | OpName::Hpub => {
                // More arguments than the array holds reports N + 1: not a slice.
                let n = split_args(line, op_end, &mut args);
                let Some(given) = args.get(..n) else {
                    return Err(ProtocolError::BadArgs {
                        op: if name == OpName::Hpub { "HPUB" } else { "PUB" },
                    });
                };
                self.pub_args(line, given, name == OpName::Hpub, line_len)
                    .map(Parsed::NeedPayload)
            }
            OpName::Sub => {
                let n = split_args(line, op_end, &mut args);
                match args.get(..n) {
                    Some([subject, sid]) => {
                        Ok(Parsed::Done(Kind::Sub(subject.clone(), None, sid.clone())))
                    }
                    Some([subject, queue, sid]) => Ok(Parsed::Done(Kind::Sub(
                        subject.clone(),
                        Some(queue.clone()),
                        sid.clone(),
                    ))),
                    _ => Err(ProtocolError::BadArgs { op: "SUB" }),
                }
            }
            OpName::Unsub => {
                let n = split_args(line, op_end, &mut args);
                match args.get(..n) {
                    Some([sid]) => Ok(Parsed::Done(Kind::Unsub(sid.clone(), None))),
                    // The reference reads a bad max (`x`, `-1`) as -1, which
                    // unsubscribes at once: the same as no max.
                    Some([sid, max]) => {
                        let max = line.get(max.clone()).and_then(parse_size);
                        Ok(Parsed::Done(Kind::Unsub(
                            sid.clone(),
                            max.map(|m| m as u64),
                        )))
                    }
                    _ => Err(ProtocolError::BadArgs { op: "UNSUB" }),
                }
            }
            OpName::Connect => {
                let start = skip_blanks(line, op_end);
                Ok(Parsed::Done(Kind::Connect(start..line.len())))
            }
            OpName::Info => Ok(Parsed::Skip),
            // A client's -ERR makes the reference close it without a reply.
            OpName::Err => Err(ProtocolError::ClientErr),
        }
    }

    fn pub_args(
        &self,
        line: &[u8],
        args: &[Range<usize>],
        headers: bool,
        line_len: usize,
    ) -> Result<PubArgs, ProtocolError> {
        let op = if headers { "HPUB" } else { "PUB" };
        let bad = ProtocolError::BadArgs { op };
        let size = |r: &Range<usize>| line.get(r.clone()).and_then(parse_size);
        let (subject, reply, hdr, total) = match (headers, args) {
            (false, [s, t]) => (s, None, None, t),
            (false, [s, r, t]) => (s, Some(r), None, t),
            (true, [s, h, t]) => (s, None, Some(h), t),
            (true, [s, r, h, t]) => (s, Some(r), Some(h), t),
            _ => return Err(bad),
        };
        let total = size(total).ok_or(bad.clone())?;
        let header_len = match hdr {
            Some(h) => {
                let h = size(h).ok_or(bad.clone())?;
                if h > total {
                    return Err(bad);
                }
                Some(h)
            }
            None => None,
        };
        if total > self.max_payload {
            return Err(ProtocolError::PayloadTooLarge {
                size: total,
                max: self.max_payload,
            });
        }
        Ok(PubArgs {
            subject: subject.clone(),
            reply: reply.cloned(),
            header_len,
            payload_start: line_len,
            payload_len: total,
        })
    }
}

enum Parsed {
    Done(Kind),
    Skip,
    NeedPayload(PubArgs),
}

enum Kind {
    Connect(Range<usize>),
    Sub(Range<usize>, Option<Range<usize>>, Range<usize>),
    Unsub(Range<usize>, Option<u64>),
    Ping,
    Pong,
}

impl Kind {
    fn into_op(self, frame: Bytes) -> Op {
        match self {
            Kind::Connect(json) => Op::Connect { frame, json },
            Kind::Sub(subject, queue, sid) => Op::Sub {
                frame,
                subject,
                queue,
                sid,
            },
            Kind::Unsub(sid, max) => Op::Unsub { frame, sid, max },
            Kind::Ping => Op::Ping,
            Kind::Pong => Op::Pong,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpName {
    Pub,
    Hpub,
    Sub,
    Unsub,
    Connect,
    Info,
    Err,
}

const OP_NAMES: [(&[u8], OpName); 7] = [
    (b"PUB", OpName::Pub),
    (b"HPUB", OpName::Hpub),
    (b"SUB", OpName::Sub),
    (b"UNSUB", OpName::Unsub),
    (b"CONNECT", OpName::Connect),
    (b"INFO", OpName::Info),
    (b"-ERR", OpName::Err),
];

/// The longest op name (`CONNECT`).
const MAX_OP_LEN: usize = 7;

/// Blanks allowed before the arguments beyond `max_control_line`, which the
/// reference applies to the arguments only; bounds the buffered line.
const LINE_SLACK: usize = 1024;

fn op_name(op: &[u8]) -> Option<OpName> {
    OP_NAMES
        .iter()
        .find(|(name, _)| op.eq_ignore_ascii_case(name))
        .map(|(_, k)| *k)
}

/// True if `tok` is the start of an op name (or of PING/PONG/+OK).
fn could_be_op(tok: &[u8]) -> bool {
    let names = OP_NAMES.iter().map(|(n, _)| *n);
    names.chain([&b"PING"[..], b"PONG", b"+OK"]).any(|n| {
        n.get(..tok.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(tok))
    })
}

enum Lenient {
    Ping,
    Pong,
    Ok,
}

/// Ops the reference recognises by their name alone, ignoring the rest of the
/// line (`PINGX`, `PING foo`, `+OKAY` are accepted).
fn lenient_op(line: &[u8]) -> Option<Lenient> {
    let starts = |p: &[u8]| {
        line.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    if starts(b"PING") {
        Some(Lenient::Ping)
    } else if starts(b"PONG") {
        Some(Lenient::Pong)
    } else if starts(b"+OK") {
        Some(Lenient::Ok)
    } else {
        None
    }
}

pub(crate) fn is_blank_byte(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn skip_blanks(line: &[u8], mut i: usize) -> usize {
    while line.get(i).is_some_and(|b| is_blank_byte(*b)) {
        i += 1;
    }
    i
}

/// Splits the arguments after the op on runs of spaces/tabs into `out`.
/// Returns how many were found; more than `N` returns `N + 1` (always invalid).
/// Shared by the client-op and server-op parsers.
pub(crate) fn split_args<const N: usize>(
    line: &[u8],
    from: usize,
    out: &mut [Range<usize>; N],
) -> usize {
    let mut n = 0;
    let mut i = from;
    loop {
        i = skip_blanks(line, i);
        if i >= line.len() {
            return n;
        }
        let start = i;
        while line.get(i).is_some_and(|b| !is_blank_byte(*b)) {
            i += 1;
        }
        let Some(slot) = out.get_mut(n) else {
            return N + 1;
        };
        *slot = start..i;
        n += 1;
    }
}

/// Parses a non-negative decimal size; `None` for empty, signs, non-digits or
/// overflow. Hand-rolled: it runs on every PUB.
pub fn parse_size(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    let mut n: usize = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as usize;
    }
    Some(n)
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
