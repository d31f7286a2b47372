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

/// Appends a leaf-node delivery, as nats-server writes it to a leaf link:
/// `LMSG <subject> [+ <reply> <queues…> | | <queues…> | <reply>] <total_len>\r\n`.
/// With headers the op is `HMSG` (checked on the wire against nats-server) and
/// the header length comes before the total.
pub fn lmsg_line<B: BufMut>(
    out: &mut B,
    subject: &[u8],
    reply: &[u8],
    queues: &[&[u8]],
    hdr_len: Option<usize>,
    total_len: usize,
) {
    out.put_slice(if hdr_len.is_some() {
        b"HMSG "
    } else {
        b"LMSG "
    });
    out.put_slice(subject);
    out.put_u8(b' ');
    match (reply.is_empty(), queues.is_empty()) {
        (false, false) => {
            out.put_slice(b"+ ");
            out.put_slice(reply);
            out.put_u8(b' ');
        }
        (true, false) => out.put_slice(b"| "),
        (false, true) => {
            out.put_slice(reply);
            out.put_u8(b' ');
        }
        (true, true) => {}
    }
    for q in queues {
        out.put_slice(q);
        out.put_u8(b' ');
    }
    let mut num = itoa::Buffer::new();
    if let Some(h) = hdr_len {
        out.put_slice(num.format(h).as_bytes());
        out.put_u8(b' ');
    }
    out.put_slice(num.format(total_len).as_bytes());
    out.put_slice(b"\r\n");
}

/// Appends a leaf interest line: `LS+ <subject>[ <queue> <weight>]` or
/// `LS- <subject>[ <queue>]`.
pub fn ls_line<B: BufMut>(out: &mut B, add: bool, subject: &[u8], queue: Option<(&[u8], u32)>) {
    out.put_slice(if add { b"LS+ " } else { b"LS- " });
    out.put_slice(subject);
    if let Some((q, w)) = queue {
        out.put_u8(b' ');
        out.put_slice(q);
        if add {
            out.put_u8(b' ');
            out.put_slice(itoa::Buffer::new().format(w).as_bytes());
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lmsg(reply: &[u8], queues: &[&[u8]], hdr: Option<usize>) -> String {
        let mut out = Vec::new();
        lmsg_line(&mut out, b"a.b", reply, queues, hdr, 11);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn lmsg_forms() {
        assert_eq!(lmsg(b"", &[], None), "LMSG a.b 11\r\n");
        assert_eq!(lmsg(b"_INBOX.1", &[], None), "LMSG a.b _INBOX.1 11\r\n");
        assert_eq!(
            lmsg(b"_INBOX.1", &[b"q"], None),
            "LMSG a.b + _INBOX.1 q 11\r\n"
        );
        assert_eq!(lmsg(b"", &[b"q1", b"q2"], None), "LMSG a.b | q1 q2 11\r\n");
        assert_eq!(lmsg(b"r", &[], Some(4)), "HMSG a.b r 4 11\r\n");
    }
}
