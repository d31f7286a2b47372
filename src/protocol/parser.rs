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
    Connect { frame: Bytes, json: Range<usize> },
    Pub { frame: Bytes, args: PubArgs },
    Sub { frame: Bytes, subject: Range<usize>, queue: Option<Range<usize>>, sid: Range<usize> },
    Unsub { frame: Bytes, sid: Range<usize>, max: Option<u64> },
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
        Parser { state: State::Line { scanned: 0 }, max_control_line, max_payload }
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
                    if buf.len() < *need {
                        return Ok(None);
                    }
                    let end = args.payload_start + args.payload_len;
                    if buf[end] != b'\r' || buf[end + 1] != b'\n' {
                        return Err(ProtocolError::BadPayloadEnd);
                    }
                    let frame = buf.split_to(*need).freeze();
                    let args = args.clone();
                    self.state = State::Line { scanned: 0 };
                    return Ok(Some(Op::Pub { frame, args }));
                }
                State::Line { scanned } => {
                    let scanned = *scanned;
                    let nl = match memchr::memchr(b'\n', &buf[scanned..]) {
                        Some(i) => scanned + i,
                        None => {
                            if buf.len() > self.max_control_line {
                                return Err(ProtocolError::ControlLineTooLong(
                                    self.max_control_line,
                                ));
                            }
                            self.state = State::Line { scanned: buf.len() };
                            return Ok(None);
                        }
                    };
                    let line_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
                    if line_end > self.max_control_line {
                        return Err(ProtocolError::ControlLineTooLong(self.max_control_line));
                    }
                    self.state = State::Line { scanned: 0 };
                    match self.parse_line(&buf[..line_end], nl + 1)? {
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

    fn parse_line(&self, line: &[u8], line_len: usize) -> Result<Parsed, ProtocolError> {
        let op_end = line.iter().position(|b| *b == b' ' || *b == b'\t').unwrap_or(line.len());
        let op = &line[..op_end];
        let is = |name: &[u8]| op.eq_ignore_ascii_case(name);
        if is(b"PUB") {
            let mut args = [NO_ARG; MAX_ARGS];
            let n = split_args(line, op_end, &mut args);
            self.pub_args(line, &args[..n], false, line_len).map(Parsed::NeedPayload)
        } else if is(b"HPUB") {
            let mut args = [NO_ARG; MAX_ARGS];
            let n = split_args(line, op_end, &mut args);
            self.pub_args(line, &args[..n], true, line_len).map(Parsed::NeedPayload)
        } else if is(b"PING") && is_blank(&line[op_end..]) {
            Ok(Parsed::Done(Kind::Ping))
        } else if is(b"PONG") && is_blank(&line[op_end..]) {
            Ok(Parsed::Done(Kind::Pong))
        } else if is(b"SUB") {
            let mut args = [NO_ARG; MAX_ARGS];
            match split_args(line, op_end, &mut args) {
                2 => Ok(Parsed::Done(Kind::Sub(args[0].clone(), None, args[1].clone()))),
                3 => Ok(Parsed::Done(Kind::Sub(
                    args[0].clone(),
                    Some(args[1].clone()),
                    args[2].clone(),
                ))),
                _ => Err(ProtocolError::BadArgs { op: "SUB" }),
            }
        } else if is(b"UNSUB") {
            let mut args = [NO_ARG; MAX_ARGS];
            match split_args(line, op_end, &mut args) {
                1 => Ok(Parsed::Done(Kind::Unsub(args[0].clone(), None))),
                2 => {
                    let max = parse_size(&line[args[1].clone()])
                        .ok_or(ProtocolError::BadArgs { op: "UNSUB" })?;
                    Ok(Parsed::Done(Kind::Unsub(args[0].clone(), Some(max as u64))))
                }
                _ => Err(ProtocolError::BadArgs { op: "UNSUB" }),
            }
        } else if is(b"CONNECT") {
            let start = skip_blanks(line, op_end);
            Ok(Parsed::Done(Kind::Connect(start..line.len())))
        } else if is(b"INFO") || is(b"+OK") || is(b"-ERR") {
            Ok(Parsed::Skip)
        } else {
            Err(ProtocolError::UnknownOp)
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
        let sizes = if headers { 2 } else { 1 };
        if args.len() < 1 + sizes || args.len() > 2 + sizes {
            return Err(bad);
        }
        let reply = (args.len() == 2 + sizes).then(|| args[1].clone());
        let total = parse_size(&line[args[args.len() - 1].clone()]).ok_or(bad.clone())?;
        let header_len = if headers {
            let h = parse_size(&line[args[args.len() - 2].clone()]).ok_or(bad.clone())?;
            if h > total {
                return Err(bad);
            }
            Some(h)
        } else {
            None
        };
        if total > self.max_payload {
            return Err(ProtocolError::PayloadTooLarge { size: total, max: self.max_payload });
        }
        Ok(PubArgs {
            subject: args[0].clone(),
            reply,
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
            Kind::Sub(subject, queue, sid) => Op::Sub { frame, subject, queue, sid },
            Kind::Unsub(sid, max) => Op::Unsub { frame, sid, max },
            Kind::Ping => Op::Ping,
            Kind::Pong => Op::Pong,
        }
    }
}

fn is_blank_byte(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_blank(s: &[u8]) -> bool {
    s.iter().all(|b| is_blank_byte(*b))
}

fn skip_blanks(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && is_blank_byte(line[i]) {
        i += 1;
    }
    i
}

/// Splits the arguments after the op on runs of spaces/tabs. Returns how many
/// were found; more than `MAX_ARGS` returns `MAX_ARGS + 1`-ish (always invalid).
fn split_args(line: &[u8], from: usize, out: &mut [Range<usize>; MAX_ARGS]) -> usize {
    let mut n = 0;
    let mut i = from;
    loop {
        i = skip_blanks(line, i);
        if i >= line.len() {
            return n;
        }
        let start = i;
        while i < line.len() && !is_blank_byte(line[i]) {
            i += 1;
        }
        if n == MAX_ARGS {
            return MAX_ARGS + 1;
        }
        out[n] = start..i;
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
