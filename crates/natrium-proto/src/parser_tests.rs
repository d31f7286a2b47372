//! Tests of `parser`, kept apart so the module reads in one sitting.
use super::*;
use proptest::prelude::*;

const MCL: usize = 4096;
const MAX_PAYLOAD: usize = 1024 * 1024;

/// An op with its byte fields resolved, for readable comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
enum T {
    Connect(String),
    Pub {
        subject: String,
        reply: Option<String>,
        hdr: Option<usize>,
        payload: Vec<u8>,
    },
    Sub(String, Option<String>, String),
    Unsub(String, Option<u64>),
    Ping,
    Pong,
    Ignored,
}

fn s(frame: &Bytes, r: &Range<usize>) -> String {
    String::from_utf8_lossy(&frame[r.clone()]).into_owned()
}

fn resolve(op: Op) -> T {
    match op {
        Op::Connect { frame, json } => T::Connect(s(&frame, &json)),
        Op::Pub { frame, args } => {
            let with_crlf = Op::payload_with_crlf(&frame, &args);
            assert!(with_crlf.ends_with(b"\r\n"));
            T::Pub {
                subject: s(&frame, &args.subject),
                reply: args.reply.as_ref().map(|r| s(&frame, r)),
                hdr: args.header_len,
                payload: with_crlf[..with_crlf.len() - 2].to_vec(),
            }
        }
        Op::Sub {
            frame,
            subject,
            queue,
            sid,
        } => T::Sub(
            s(&frame, &subject),
            queue.map(|q| s(&frame, &q)),
            s(&frame, &sid),
        ),
        Op::Unsub { frame, sid, max } => T::Unsub(s(&frame, &sid), max),
        Op::Ping => T::Ping,
        Op::Pong => T::Pong,
        Op::Ignored => T::Ignored,
    }
}

type Outcome = (Vec<T>, Option<ProtocolError>);

/// Feeds `input` in the given chunks, draining ops after each one.
fn feed(input: &[u8], cuts: &[usize], mcl: usize, max_payload: usize) -> Outcome {
    let mut p = Parser::new(mcl, max_payload);
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    let mut at = 0;
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|c| *c < input.len()).collect();
    bounds.sort_unstable();
    bounds.push(input.len());
    for end in bounds {
        if end < at {
            continue;
        }
        buf.extend_from_slice(&input[at..end]);
        at = end;
        loop {
            match p.next_op(&mut buf) {
                Ok(Some(op)) => ops.push(resolve(op)),
                Ok(None) => break,
                Err(e) => return (ops, Some(e)),
            }
        }
    }
    (ops, None)
}

fn whole(input: &[u8]) -> Outcome {
    feed(input, &[], MCL, MAX_PAYLOAD)
}

/// Parses `input` whole, one byte at a time, and split in two at every
/// position; all must give the same outcome, which is returned.
fn all_ways_limits(input: &[u8], mcl: usize, max_payload: usize) -> Outcome {
    let expected = feed(input, &[], mcl, max_payload);
    let every: Vec<usize> = (1..input.len()).collect();
    assert_eq!(
        feed(input, &every, mcl, max_payload),
        expected,
        "byte-at-a-time differs for {:?}",
        String::from_utf8_lossy(input)
    );
    for cut in 1..input.len() {
        assert_eq!(
            feed(input, &[cut], mcl, max_payload),
            expected,
            "split at {cut} differs for {:?}",
            String::from_utf8_lossy(input)
        );
    }
    expected
}

fn all_ways(input: &[u8]) -> Outcome {
    all_ways_limits(input, MCL, MAX_PAYLOAD)
}

fn ok(input: &[u8], expected: Vec<T>) {
    assert_eq!(all_ways(input), (expected, None));
}

fn err(input: &[u8], expected: ProtocolError) {
    assert_eq!(
        all_ways(input).1,
        Some(expected),
        "{:?}",
        String::from_utf8_lossy(input)
    );
}

fn pubm(subject: &str, reply: Option<&str>, hdr: Option<usize>, payload: &[u8]) -> T {
    T::Pub {
        subject: subject.into(),
        reply: reply.map(Into::into),
        hdr,
        payload: payload.to_vec(),
    }
}

fn sub(subject: &str, queue: Option<&str>, sid: &str) -> T {
    T::Sub(subject.into(), queue.map(Into::into), sid.into())
}

fn bad(op: &'static str) -> ProtocolError {
    ProtocolError::BadArgs { op }
}

#[test]
fn connect() {
    ok(
        b"CONNECT {\"verbose\":false,\"name\":\"a b\"}\r\n",
        vec![T::Connect("{\"verbose\":false,\"name\":\"a b\"}".into())],
    );
    // No JSON at all: handed to the client, which closes on the bad JSON.
    ok(b"CONNECT\r\n", vec![T::Connect(String::new())]);
}

#[test]
fn pub_without_reply() {
    ok(
        b"PUB foo 5\r\nhello\r\n",
        vec![pubm("foo", None, None, b"hello")],
    );
}

#[test]
fn pub_with_reply() {
    ok(
        b"PUB foo.bar _INBOX.1 2\r\nhi\r\n",
        vec![pubm("foo.bar", Some("_INBOX.1"), None, b"hi")],
    );
}

#[test]
fn pub_payload_is_not_scanned() {
    // CRLFs and op names inside the payload are payload.
    ok(
        b"PUB foo 11\r\nPING\r\nPUB\r\n\r\n",
        vec![pubm("foo", None, None, b"PING\r\nPUB\r\n")],
    );
}

#[test]
fn pub_empty_payload_and_leading_zeros() {
    ok(
        b"PUB foo 0\r\n\r\nPUB foo 002\r\nhi\r\n",
        vec![pubm("foo", None, None, b""), pubm("foo", None, None, b"hi")],
    );
}

#[test]
fn hpub_without_reply() {
    ok(
        b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
        vec![pubm("foo", None, Some(12), b"NATS/1.0\r\n\r\nhi")],
    );
}

#[test]
fn hpub_with_reply() {
    ok(
        b"HPUB foo rep 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n",
        vec![pubm(
            "foo",
            Some("rep"),
            Some(18),
            b"NATS/1.0\r\nA: b\r\n\r\nhi",
        )],
    );
    // Headers only.
    ok(
        b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n",
        vec![pubm("foo", None, Some(12), b"NATS/1.0\r\n\r\n")],
    );
}

#[test]
fn sub_without_queue() {
    ok(b"SUB foo.* 1\r\n", vec![sub("foo.*", None, "1")]);
}

#[test]
fn sub_with_queue() {
    ok(
        b"SUB foo.> workers 42\r\n",
        vec![sub("foo.>", Some("workers"), "42")],
    );
}

#[test]
fn unsub_without_and_with_max() {
    ok(
        b"UNSUB 1\r\nUNSUB 2 10\r\n",
        vec![T::Unsub("1".into(), None), T::Unsub("2".into(), Some(10))],
    );
}

#[test]
fn unsub_bad_max_means_no_max() {
    // nats-server parses `x` / `-5` as -1, which unsubscribes at once.
    ok(
        b"UNSUB 1 x\r\nUNSUB 2 -5\r\n",
        vec![T::Unsub("1".into(), None), T::Unsub("2".into(), None)],
    );
}

#[test]
fn ping_pong() {
    ok(b"PING\r\nPONG\r\n", vec![T::Ping, T::Pong]);
}

#[test]
fn ping_pong_ignore_the_rest_of_the_line() {
    // As nats-server: anything after PING/PONG up to the newline is ignored.
    ok(
        b"PING x\r\nPINGX\r\nPONG \t\r\nping\rPING\r\n",
        vec![T::Ping, T::Ping, T::Pong, T::Ping],
    );
}

#[test]
fn info_and_ok_from_client_are_ignored() {
    ok(
        b"INFO {\"server_id\":\"x\"}\r\n+OK\r\n+okay\r\nPING\r\n",
        vec![T::Ping],
    );
}

#[test]
fn err_from_client_closes_silently() {
    err(b"-ERR 'something'\r\n", ProtocolError::ClientErr);
    assert_eq!(ProtocolError::ClientErr.err_text(), None);
    // `-ERR` with nothing after it is not even a valid -ERR.
    err(b"-ERR\r\n", ProtocolError::UnknownOp);
}

#[test]
fn ops_are_case_insensitive() {
    ok(
        b"connect {}\r\npub foo 1\r\na\r\nHpUb foo 12 12\r\nNATS/1.0\r\n\r\n\r\nSuB foo 1\r\nunsub 1 2\r\npInG\r\npong\r\n",
        vec![
            T::Connect("{}".into()),
            pubm("foo", None, None, b"a"),
            pubm("foo", None, Some(12), b"NATS/1.0\r\n\r\n"),
            sub("foo", None, "1"),
            T::Unsub("1".into(), Some(2)),
            T::Ping,
            T::Pong,
        ],
    );
}

#[test]
fn tabs_and_runs_of_spaces_between_args() {
    ok(
        b"PUB\t foo \t\tbar  3 \r\nabc\r\nSUB\tfoo\t  q \t 7\t\r\nUNSUB   7\t 3  \r\nCONNECT \t {}\r\n",
        vec![
            pubm("foo", Some("bar"), None, b"abc"),
            sub("foo", Some("q"), "7"),
            T::Unsub("7".into(), Some(3)),
            T::Connect("{}".into()),
        ],
    );
}

#[test]
fn bare_newline_line_ends() {
    ok(
        b"CONNECT {}\nSUB foo 1\nPUB foo 2\nhi\r\nPING\nPONG\n",
        vec![
            T::Connect("{}".into()),
            sub("foo", None, "1"),
            pubm("foo", None, None, b"hi"),
            T::Ping,
            T::Pong,
        ],
    );
}

#[test]
fn many_ops_in_one_buffer() {
    let mut input = Vec::new();
    let mut expected = Vec::new();
    input.extend_from_slice(b"CONNECT {\"verbose\":false}\r\n");
    expected.push(T::Connect("{\"verbose\":false}".into()));
    for i in 0..20 {
        input.extend_from_slice(
            format!("SUB s.{i} {i}\r\nPUB s.{i} r.{i} 3\r\nm{i:02}\r\nUNSUB {i} 1\r\nPING\r\n")
                .as_bytes(),
        );
        expected.push(sub(&format!("s.{i}"), None, &i.to_string()));
        expected.push(pubm(
            &format!("s.{i}"),
            Some(&format!("r.{i}")),
            None,
            format!("m{i:02}").as_bytes(),
        ));
        expected.push(T::Unsub(i.to_string(), Some(1)));
        expected.push(T::Ping);
    }
    assert_eq!(whole(&input), (expected.clone(), None));
    let every: Vec<usize> = (1..input.len()).collect();
    assert_eq!(feed(&input, &every, MCL, MAX_PAYLOAD), (expected, None));
}

#[test]
fn ops_before_an_error_are_returned() {
    assert_eq!(
        all_ways(b"PING\r\nSUB foo 1\r\nFOO\r\nPING\r\n"),
        (
            vec![T::Ping, sub("foo", None, "1")],
            Some(ProtocolError::UnknownOp)
        )
    );
}

#[test]
fn unknown_ops() {
    err(b"FOO bar\r\n", ProtocolError::UnknownOp);
    err(b"PUBX foo 1\r\n", ProtocolError::UnknownOp);
    err(b"SUBX foo 1\r\n", ProtocolError::UnknownOp);
    err(b"PIN\r\n", ProtocolError::UnknownOp);
    err(b"\r\n", ProtocolError::UnknownOp);
    err(b"RS+ foo\r\n", ProtocolError::UnknownOp);
    err(b"LMSG foo 2\r\n", ProtocolError::UnknownOp);
    err(b"MSG foo 1 2\r\nhi\r\n", ProtocolError::UnknownOp);
    // An op name without its blank is unknown to nats-server, not malformed.
    err(b"PUB\r\n", ProtocolError::UnknownOp);
    err(b"HPUB\r\n", ProtocolError::UnknownOp);
    err(b"SUB\r\n", ProtocolError::UnknownOp);
    err(b"UNSUB\r\n", ProtocolError::UnknownOp);
}

#[test]
fn unknown_op_is_refused_before_its_newline() {
    let mut p = Parser::new(MCL, MAX_PAYLOAD);
    let mut buf = BytesMut::from(&b"FOO"[..]);
    assert_eq!(p.next_op(&mut buf), Err(ProtocolError::UnknownOp));
    let mut p = Parser::new(MCL, MAX_PAYLOAD);
    let mut buf = BytesMut::from(&b"CONNEC"[..]);
    assert_eq!(p.next_op(&mut buf), Ok(None));
    // A long line of junk is an unknown op, not an over-long line.
    let mut p = Parser::new(MCL, MAX_PAYLOAD);
    let mut buf = BytesMut::from(&vec![b'X'; 5000][..]);
    assert_eq!(p.next_op(&mut buf), Err(ProtocolError::UnknownOp));
}

#[test]
fn control_line_limit_applies_to_the_arguments() {
    let too_long = ProtocolError::ControlLineTooLong(MCL);
    // nats-server: "SUB " + 4096 argument bytes is fine, 4097 is not.
    let at = |n: usize, lead: &str| format!("SUB{lead}{} 1\r\n", "a".repeat(n - 2));
    let (ops, e) = whole(at(MCL, " ").as_bytes());
    assert_eq!((ops.len(), e), (1, None));
    assert_eq!(whole(at(MCL + 1, " ").as_bytes()).1, Some(too_long.clone()));
    // Blanks before the arguments do not count.
    let (ops, e) = whole(at(MCL, "      ").as_bytes());
    assert_eq!((ops.len(), e), (1, None));
    let line = format!("CONNECT {{\"name\":\"{}\"}}\r\n", "x".repeat(5000));
    assert_eq!(whole(line.as_bytes()).1, Some(too_long.clone()));
    let line = format!("PUB {} 1\r\na\r\n", "x".repeat(5000));
    assert_eq!(whole(line.as_bytes()).1, Some(too_long.clone()));
}

#[test]
fn control_line_limit_without_newline() {
    let too_long = ProtocolError::ControlLineTooLong(MCL);
    for op in ["SUB ", "PUB ", "CONNECT "] {
        let mut p = Parser::new(MCL, MAX_PAYLOAD);
        let mut buf = BytesMut::from(format!("{op}{}", "x".repeat(5000)).as_bytes());
        assert_eq!(p.next_op(&mut buf), Err(too_long.clone()), "{op}");
    }
    // Fed in pieces: refused once the limit is passed, never buffered forever.
    let mut p = Parser::new(MCL, MAX_PAYLOAD);
    let mut buf = BytesMut::from(&b"SUB "[..]);
    let mut refused = false;
    for _ in 0..100 {
        buf.extend_from_slice(&[b'y'; 100]);
        if p.next_op(&mut buf) == Err(too_long.clone()) {
            refused = true;
            break;
        }
    }
    assert!(refused);
    assert!(buf.len() <= MCL + 200);
}

#[test]
fn small_control_line_limit_is_split_independent() {
    for input in [
        &b"SUB foo 1\r\nSUB foobar 2\r\n"[..],
        b"PUB abcdefgh 1\r\na\r\n",
        b"PING        \r\nUNSUB 1234567\r\n",
    ] {
        all_ways_limits(input, 8, MAX_PAYLOAD);
    }
    assert_eq!(
        all_ways_limits(b"SUB foo 1\r\nSUB foobar 23\r\n", 8, 100),
        (
            vec![sub("foo", None, "1")],
            Some(ProtocolError::ControlLineTooLong(8))
        )
    );
}

#[test]
fn payload_over_max_payload() {
    err(
        b"PUB foo 1048577\r\n",
        ProtocolError::PayloadTooLarge {
            size: 1_048_577,
            max: MAX_PAYLOAD,
        },
    );
    assert_eq!(
        all_ways_limits(b"PUB foo 10\r\n0123456789\r\nPUB foo 11\r\n", MCL, 10),
        (
            vec![pubm("foo", None, None, b"0123456789")],
            Some(ProtocolError::PayloadTooLarge { size: 11, max: 10 })
        )
    );
    assert_eq!(
        all_ways_limits(b"HPUB foo 12 11\r\n", MCL, 10).1,
        Some(bad("HPUB"))
    );
    assert_eq!(
        all_ways_limits(b"HPUB foo 2 11\r\n", MCL, 10).1,
        Some(ProtocolError::PayloadTooLarge { size: 11, max: 10 })
    );
}

#[test]
fn negative_or_non_numeric_sizes() {
    err(b"PUB foo -1\r\n", bad("PUB"));
    err(b"PUB foo +2\r\nhi\r\n", bad("PUB"));
    err(b"PUB foo abc\r\n", bad("PUB"));
    err(b"PUB foo 1x\r\n", bad("PUB"));
    err(b"PUB foo 99999999999999999999999\r\n", bad("PUB"));
    err(b"HPUB foo -1 14\r\n", bad("HPUB"));
    err(b"HPUB foo 12 x\r\n", bad("HPUB"));
}

#[test]
fn wrong_argument_counts() {
    err(b"PUB \r\n", bad("PUB"));
    err(b"PUB foo\r\n", bad("PUB"));
    err(b"PUB foo a b 3\r\nabc\r\n", bad("PUB"));
    err(b"HPUB foo 14\r\n", bad("HPUB"));
    err(b"HPUB foo a b 12 14\r\n", bad("HPUB"));
    err(b"SUB \r\n", bad("SUB"));
    err(b"SUB foo\r\n", bad("SUB"));
    err(b"SUB foo q 1 x\r\n", bad("SUB"));
    err(b"SUB a b c d e f g h\r\n", bad("SUB"));
    // More arguments than the parser's array holds (found by a wire fuzzer).
    err(b"PUB a b c d e f g h\r\n", bad("PUB"));
    err(b"PUB a b c d e f g\r\n", bad("PUB"));
    err(b"HPUB a b c d e f g h i j\r\n", bad("HPUB"));
    err(b"UNSUB \r\n", bad("UNSUB"));
    err(b"UNSUB 1 2 3\r\n", bad("UNSUB"));
}

#[test]
fn payload_longer_than_declared() {
    err(b"PUB foo 2\r\nhello\r\n", ProtocolError::BadPayloadEnd);
    err(b"PUB foo 5\r\nhi\r\nPING\r\n", ProtocolError::BadPayloadEnd);
    err(b"PUB foo 2\r\nhi\rX", ProtocolError::BadPayloadEnd);
    err(
        b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi!\r\n",
        ProtocolError::BadPayloadEnd,
    );
    assert_eq!(
        ProtocolError::BadPayloadEnd.err_text(),
        Some(super::super::errors::text::UNKNOWN_OP)
    );
    // Refused as soon as the byte after the payload is wrong.
    let mut p = Parser::new(MCL, MAX_PAYLOAD);
    let mut buf = BytesMut::from(&b"PUB foo 2\r\nhiX"[..]);
    assert_eq!(p.next_op(&mut buf), Err(ProtocolError::BadPayloadEnd));
}

#[test]
fn hpub_header_size_over_total() {
    err(b"HPUB foo 14 12\r\nNATS/1.0\r\n\r\nhi\r\n", bad("HPUB"));
}

#[test]
fn payload_is_a_slice_of_the_read_buffer() {
    let mut p = Parser::new(MCL, MAX_PAYLOAD);
    let mut buf = BytesMut::from(&b"PUB foo 5\r\nhello\r\nPING\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let Ok(Some(Op::Pub { frame, args })) = p.next_op(&mut buf) else {
        panic!("expected a PUB");
    };
    let payload = Op::payload_with_crlf(&frame, &args);
    assert_eq!(&payload[..], b"hello\r\n");
    assert_eq!(payload.as_ptr() as usize, base + 11);
    assert_eq!(p.next_op(&mut buf), Ok(Some(Op::Ping)));
    assert!(buf.is_empty());
}

#[test]
fn bytes_needed_for_a_pending_payload() {
    let mut p = Parser::new(MCL, MAX_PAYLOAD);
    let mut buf = BytesMut::from(&b"PUB foo 100\r\nab"[..]);
    assert_eq!(p.next_op(&mut buf), Ok(None));
    assert_eq!(p.bytes_needed(), Some(13 + 100 + 2));
}

fn arb_token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_]{1,6}(\\.[a-zA-Z0-9_*>]{1,4}){0,2}"
}

fn arb_blanks() -> impl Strategy<Value = String> {
    "[ \t]{1,3}"
}

fn arb_op() -> impl Strategy<Value = (Vec<u8>, T)> {
    let eol = prop_oneof![Just("\r\n"), Just("\n")];
    prop_oneof![
        (
            arb_token(),
            proptest::option::of(arb_token()),
            proptest::collection::vec(any::<u8>(), 0..40),
            arb_blanks()
        )
            .prop_map(|(subj, reply, payload, b)| {
                let mut v = format!("PUB{b}{subj}{b}").into_bytes();
                if let Some(r) = &reply {
                    v.extend_from_slice(format!("{r}{b}").as_bytes());
                }
                v.extend_from_slice(format!("{}\r\n", payload.len()).as_bytes());
                v.extend_from_slice(&payload);
                v.extend_from_slice(b"\r\n");
                (v, pubm(&subj, reply.as_deref(), None, &payload))
            }),
        (arb_token(), proptest::collection::vec(any::<u8>(), 0..20)).prop_map(|(subj, body)| {
            let mut payload = b"NATS/1.0\r\nK: v\r\n\r\n".to_vec();
            let h = payload.len();
            payload.extend_from_slice(&body);
            let mut v = format!("hpub {subj} {h} {}\r\n", payload.len()).into_bytes();
            v.extend_from_slice(&payload);
            v.extend_from_slice(b"\r\n");
            (v, pubm(&subj, None, Some(h), &payload))
        }),
        (
            arb_token(),
            proptest::option::of(arb_token()),
            1u32..1000,
            arb_blanks(),
            eol.clone()
        )
            .prop_map(|(subj, q, sid, b, eol)| {
                let line = match &q {
                    Some(q) => format!("SUB{b}{subj}{b}{q}{b}{sid}{eol}"),
                    None => format!("sub{b}{subj}{b}{sid}{eol}"),
                };
                (
                    line.into_bytes(),
                    sub(&subj, q.as_deref(), &sid.to_string()),
                )
            }),
        (1u32..1000, proptest::option::of(0u64..100), eol.clone()).prop_map(|(sid, max, eol)| {
            let line = match max {
                Some(m) => format!("UNSUB {sid} {m}{eol}"),
                None => format!("UNSUB {sid}{eol}"),
            };
            (line.into_bytes(), T::Unsub(sid.to_string(), max))
        }),
        eol.clone()
            .prop_map(|eol| (format!("PING{eol}").into_bytes(), T::Ping)),
        eol.clone()
            .prop_map(|eol| (format!("pong{eol}").into_bytes(), T::Pong)),
        Just((
            b"CONNECT {\"verbose\":false}\r\n".to_vec(),
            T::Connect("{\"verbose\":false}".into())
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_splits_give_the_same_ops(
        ops in proptest::collection::vec(arb_op(), 1..12),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..20),
    ) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for (bytes, op) in ops {
            input.extend_from_slice(&bytes);
            expected.push(op);
        }
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len())).collect();
        prop_assert_eq!(whole(&input), (expected.clone(), None));
        prop_assert_eq!(feed(&input, &cuts, MCL, MAX_PAYLOAD), (expected, None));
    }
}
