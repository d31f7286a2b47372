use super::*;

const STREAM: &[u8] = b"INFO {\"server_id\":\"N1\"}\r\nCONNECT {\"name\":\"x\"}\r\nPING\r\nPONG\r\n+OK\r\n-ERR 'Loop detected'\r\nLS+ foo.*\r\nLS+ bar q1 3\r\nLS- foo.*\r\nLS- bar q1\r\nLMSG a 2\r\nhi\r\nLMSG a r.1 0\r\n\r\nLMSG a + r q1 q2 1\r\nx\r\nLMSG a | q1 1\r\ny\r\nHMSG h 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHMSG h + r q 12 12\r\nNATS/1.0\r\n\r\n\r\n";

/// A readable form of each op, to compare runs however the input was split.
fn show(op: &LeafOp) -> String {
    let s = |f: &Bytes, r: &Range<usize>| String::from_utf8_lossy(&f[r.clone()]).into_owned();
    match op {
        LeafOp::Info { frame, json } => format!("INFO {}", s(frame, json)),
        LeafOp::Connect { frame, json } => format!("CONNECT {}", s(frame, json)),
        LeafOp::Ping => "PING".into(),
        LeafOp::Pong => "PONG".into(),
        LeafOp::Ok => "+OK".into(),
        LeafOp::Err { frame, text } => format!("-ERR {}", s(frame, text)),
        LeafOp::Sub {
            frame,
            subject,
            queue,
        } => match queue {
            Some((q, w)) => format!("LS+ {} {} {w}", s(frame, subject), s(frame, q)),
            None => format!("LS+ {}", s(frame, subject)),
        },
        LeafOp::Unsub {
            frame,
            subject,
            queue,
        } => match queue {
            Some(q) => format!("LS- {} {}", s(frame, subject), s(frame, q)),
            None => format!("LS- {}", s(frame, subject)),
        },
        LeafOp::Msg {
            frame,
            args,
            queues,
        } => {
            let qs: Vec<String> = queues.ranges(frame).map(|q| s(frame, &q)).collect();
            format!(
                "MSG {} reply={:?} q={:?} hdr={:?} payload={:?}",
                s(frame, &args.subject),
                args.reply.as_ref().map(|r| s(frame, r)),
                qs,
                args.header_len,
                s(
                    frame,
                    &(args.payload_start..args.payload_start + args.payload_len)
                )
            )
        }
    }
}

fn parse_chunks(chunks: &[&[u8]]) -> Result<Vec<String>, LeafError> {
    let mut p = LeafParser::new(4096, 1024);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        while let Some(op) = p.next_op(&mut buf)? {
            out.push(show(&op));
        }
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    Ok(out)
}

fn expected() -> Vec<String> {
    vec![
        "INFO {\"server_id\":\"N1\"}",
        "CONNECT {\"name\":\"x\"}",
        "PING",
        "PONG",
        "+OK",
        "-ERR 'Loop detected'",
        "LS+ foo.*",
        "LS+ bar q1 3",
        "LS- foo.*",
        "LS- bar q1",
        "MSG a reply=None q=[] hdr=None payload=\"hi\"",
        "MSG a reply=Some(\"r.1\") q=[] hdr=None payload=\"\"",
        "MSG a reply=Some(\"r\") q=[\"q1\", \"q2\"] hdr=None payload=\"x\"",
        "MSG a reply=None q=[\"q1\"] hdr=None payload=\"y\"",
        "MSG h reply=None q=[] hdr=Some(12) payload=\"NATS/1.0\\r\\n\\r\\nhi\"",
        "MSG h reply=Some(\"r\") q=[\"q\"] hdr=Some(12) payload=\"NATS/1.0\\r\\n\\r\\n\"",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[test]
fn every_op_whole() {
    assert_eq!(parse_chunks(&[STREAM]).expect("parses"), expected());
}

#[test]
fn every_op_byte_by_byte() {
    let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
    assert_eq!(parse_chunks(&bytes).expect("parses"), expected());
}

#[test]
fn split_at_every_point() {
    for i in 0..=STREAM.len() {
        let (a, b) = STREAM.split_at(i);
        assert_eq!(
            parse_chunks(&[a, b]).expect("parses"),
            expected(),
            "split at {i}"
        );
    }
}

fn err_of(input: &[u8]) -> LeafError {
    let mut p = LeafParser::new(4096, 1024);
    let mut buf = BytesMut::from(input);
    loop {
        match p.next_op(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error for {input:?}"),
            Err(e) => return e,
        }
    }
}

#[test]
fn malformed_ops_get_nats_server_errors() {
    assert_eq!(
        err_of(b"LMSG foo bad x\r\n").to_string(),
        "processLeafMsgArgs Bad or Missing Size: '[foo bad x]'"
    );
    assert_eq!(
        err_of(b"LMSG foo\r\n").to_string(),
        "processLeafMsgArgs Parse Error: '[foo]'"
    );
    assert_eq!(
        err_of(b"LMSG foo ? r q 1\r\n").to_string(),
        "processLeafMsgArgs Bad or Missing Reply Indicator: '?'"
    );
    assert_eq!(
        err_of(b"LS+ a b\r\n").to_string(),
        "processLeafSub Parse Error: 'a b'"
    );
    assert_eq!(
        err_of(b"LS+\r\n").to_string(),
        "processLeafSub Parse Error: ''"
    );
    assert!(matches!(err_of(b"LS-\r\n"), LeafError::BadUnsub(_)));
    assert!(matches!(
        err_of(b"HMSG a 1\r\n"),
        LeafError::BadHeaderMsg(_)
    ));
    assert!(matches!(
        err_of(b"HMSG a 5 2\r\n"),
        LeafError::BadHeaderSize(_)
    ));
    assert_eq!(err_of(b"FOO\r\n"), LeafError::UnknownOp);
    assert_eq!(err_of(b"LMSG a 1\r\nxy\r\n"), LeafError::BadPayloadEnd);
    assert!(matches!(
        err_of(b"LMSG a 2000\r\n"),
        LeafError::PayloadTooLarge { size: 2000, .. }
    ));
    let long = [b"LS+ ".as_slice(), &[b'a'; 5000]].concat();
    assert_eq!(err_of(&long), LeafError::ControlLineTooLong);
}

#[test]
fn a_good_op_before_a_bad_one_is_still_returned() {
    let mut p = LeafParser::new(4096, 1024);
    let mut buf = BytesMut::from(&b"PING\r\nLS+ a b\r\n"[..]);
    assert_eq!(p.next_op(&mut buf), Ok(Some(LeafOp::Ping)));
    assert!(p.next_op(&mut buf).is_err());
}

#[test]
fn ls_lines_encode_as_nats_server() {
    let mut out = Vec::new();
    crate::encode::ls_line(&mut out, true, b"foo", None);
    crate::encode::ls_line(&mut out, true, b"foo", Some((b"q", 2)));
    crate::encode::ls_line(&mut out, false, b"foo", Some((b"q", 0)));
    crate::encode::ls_line(&mut out, false, b"foo", None);
    assert_eq!(out, b"LS+ foo\r\nLS+ foo q 2\r\nLS- foo q\r\nLS- foo\r\n");
}
