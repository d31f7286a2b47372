//! Encoders for what the server sends: MSG/HMSG header lines and `-ERR` lines.
//!
//! Owns the byte layout of outgoing ops. Everything appends into a caller's
//! buffer with `itoa` — no `format!`, no allocation once the buffer has room.

use bytes::BufMut;

/// Appends `MSG <subject> <sid> [reply] <len>\r\n`.
pub fn msg_line<B: BufMut>(out: &mut B, subject: &[u8], sid: &[u8], reply: &[u8], len: usize) {
    out.put_slice(b"MSG ");
    out.put_slice(subject);
    out.put_u8(b' ');
    out.put_slice(sid);
    out.put_u8(b' ');
    if !reply.is_empty() {
        out.put_slice(reply);
        out.put_u8(b' ');
    }
    out.put_slice(itoa::Buffer::new().format(len).as_bytes());
    out.put_slice(b"\r\n");
}

/// Appends `HMSG <subject> <sid> [reply] <hdr_len> <total_len>\r\n`.
pub fn hmsg_line<B: BufMut>(
    out: &mut B,
    subject: &[u8],
    sid: &[u8],
    reply: &[u8],
    hdr_len: usize,
    total_len: usize,
) {
    out.put_slice(b"HMSG ");
    out.put_slice(subject);
    out.put_u8(b' ');
    out.put_slice(sid);
    out.put_u8(b' ');
    if !reply.is_empty() {
        out.put_slice(reply);
        out.put_u8(b' ');
    }
    let mut num = itoa::Buffer::new();
    out.put_slice(num.format(hdr_len).as_bytes());
    out.put_u8(b' ');
    out.put_slice(num.format(total_len).as_bytes());
    out.put_slice(b"\r\n");
}

/// Appends `-ERR '<text>'\r\n`.
pub fn err_line<B: BufMut>(out: &mut B, text: &str) {
    out.put_slice(b"-ERR '");
    out.put_slice(text.as_bytes());
    out.put_slice(b"'\r\n");
}

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";
pub const OK: &[u8] = b"+OK\r\n";

/// The no-responders status header (ADR-4): a 503 with no payload.
pub fn no_responders_headers<B: BufMut>(out: &mut B, subject: &[u8]) -> usize {
    let start = b"NATS/1.0 503\r\nNats-Subject: ";
    out.put_slice(start);
    out.put_slice(subject);
    out.put_slice(b"\r\n\r\n");
    start.len() + subject.len() + 4
}
