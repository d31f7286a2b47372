//! The leaf-node op parser target (`LS+`, `LS-`, `LMSG`, leaf `HMSG`, INFO,
//! CONNECT…): whole and split parses give the same ops and error; every
//! message's ranges lie inside its frame and its payload ends in CRLF within
//! `max_payload`.

use bytes::BytesMut;
use natrium_proto::leaf::{LeafOp, LeafParser};

fn check(op: &LeafOp, max_payload: usize) {
    if let LeafOp::Msg {
        frame,
        args,
        queues,
    } = op
    {
        let end = args.payload_start + args.payload_len;
        assert_eq!(
            frame.get(end..end + 2),
            Some(&b"\r\n"[..]),
            "payload not ended by CRLF"
        );
        assert!(
            args.payload_len <= max_payload,
            "payload over max_payload accepted"
        );
        assert!(
            frame.get(args.subject.clone()).is_some(),
            "subject outside frame"
        );
        for r in args.reply.iter().cloned().chain(queues.ranges(frame)) {
            assert!(frame.get(r).is_some(), "range outside frame");
        }
    }
}

fn drain(p: &mut LeafParser, buf: &mut BytesMut, max: usize, out: &mut Vec<String>) -> bool {
    loop {
        match p.next_op(buf) {
            Ok(Some(op)) => {
                check(&op, max);
                out.push(format!("{op:?}"));
            }
            Ok(None) => return true,
            Err(e) => {
                out.push(format!("error {e:?}"));
                return false;
            }
        }
    }
}

/// Input as for the client-op parser target: byte 0 picks limits, bytes 1..4
/// the chunk sizes, the rest is the stream.
pub fn leaf(data: &[u8]) {
    let Some((&[limits, a, b, c], stream)) = data.split_first_chunk::<4>() else {
        return;
    };
    let (max_line, max_payload) = match limits % 3 {
        0 => (4096, 1024 * 1024),
        1 => (48, 16),
        _ => (512, 0),
    };
    crate::whole_equals_split(
        stream,
        [a, b, c],
        || LeafParser::new(max_line, max_payload),
        |p, buf, out| drain(p, buf, max_payload, out),
    );
}
