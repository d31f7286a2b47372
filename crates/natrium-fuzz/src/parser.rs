//! The client-op parser target: the same bytes parsed whole and split at
//! fuzzer-chosen points must give the same ops (and the same error); every
//! range an op carries must lie inside its frame; every payload must have
//! exactly the declared length, end in CRLF and respect `max_payload`.

use bytes::{Bytes, BytesMut};
use natrium_proto::parser::{Op, Parser};

/// What an op says, owned, so ops from different frames compare.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    Connect(Vec<u8>),
    Pub {
        subject: Vec<u8>,
        reply: Option<Vec<u8>>,
        header_len: Option<usize>,
        payload: Vec<u8>,
    },
    Sub {
        subject: Vec<u8>,
        queue: Option<Vec<u8>>,
        sid: Vec<u8>,
    },
    Unsub {
        sid: Vec<u8>,
        max: Option<u64>,
    },
    Ping,
    Pong,
    Ignored,
    Error(String),
}

fn cut(frame: &Bytes, r: &std::ops::Range<usize>) -> Vec<u8> {
    match frame.get(r.clone()) {
        Some(b) => b.to_vec(),
        None => panic!("range {r:?} outside a frame of {} bytes", frame.len()),
    }
}

fn said(op: Op, max_payload: usize) -> Said {
    match op {
        Op::Connect { frame, json } => Said::Connect(cut(&frame, &json)),
        Op::Pub { frame, args } => {
            let end = args.payload_start + args.payload_len;
            let payload = cut(&frame, &(args.payload_start..end));
            assert_eq!(
                cut(&frame, &(end..end + 2)),
                b"\r\n",
                "payload not ended by CRLF"
            );
            assert!(
                args.payload_len <= max_payload,
                "payload over max_payload accepted"
            );
            if let Some(h) = args.header_len {
                assert!(h <= args.payload_len, "header longer than payload");
            }
            Said::Pub {
                subject: cut(&frame, &args.subject),
                reply: args.reply.as_ref().map(|r| cut(&frame, r)),
                header_len: args.header_len,
                payload,
            }
        }
        Op::Sub {
            frame,
            subject,
            queue,
            sid,
        } => Said::Sub {
            subject: cut(&frame, &subject),
            queue: queue.as_ref().map(|q| cut(&frame, q)),
            sid: cut(&frame, &sid),
        },
        Op::Unsub { frame, sid, max } => Said::Unsub {
            sid: cut(&frame, &sid),
            max,
        },
        Op::Ping => Said::Ping,
        Op::Pong => Said::Pong,
        Op::Ignored => Said::Ignored,
    }
}

/// Drains every complete op; `false` once the parser reported an error.
fn drain(p: &mut Parser, buf: &mut BytesMut, max_payload: usize, out: &mut Vec<Said>) -> bool {
    loop {
        match p.next_op(buf) {
            Ok(Some(op)) => out.push(said(op, max_payload)),
            Ok(None) => return true,
            Err(e) => {
                out.push(Said::Error(format!("{e:?}")));
                return false;
            }
        }
    }
}

/// Input: byte 0 picks the limits, bytes 1..4 the chunk sizes of the split
/// run (cycled), the rest is the stream.
pub fn parser(data: &[u8]) {
    let Some((&[limits, a, b, c], stream)) = data.split_first_chunk::<4>() else {
        return;
    };
    let (max_line, max_payload) = match limits % 4 {
        0 => (4096, 1024 * 1024),
        1 => (32, 16),
        2 => (256, 0),
        _ => (1024, 64),
    };

    crate::whole_equals_split(
        stream,
        [a, b, c],
        || Parser::new(max_line, max_payload),
        |p, buf, out| drain(p, buf, max_payload, out),
    );
}
