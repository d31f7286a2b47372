//! Raw-socket protocol tests: bytes in, bytes out, checked against the
//! reference behaviour of nats-server 2.9.10 (exact `-ERR` texts, which errors
//! close the connection) and PROTOCOL.md. Every bad-client case also checks that
//! a healthy subscriber on the same subject keeps being served and sees nothing.

use crate::common::{Raw, TestServer};

const NO_VERBOSE: &str = r#"{"verbose":false}"#;
const HEADERS: &str = r#"{"verbose":false,"headers":true}"#;

/// A client that sent CONNECT `json` and saw the server process it.
fn client(srv: &TestServer, json: &str) -> Raw {
    let mut c = srv.raw();
    c.send(format!("CONNECT {json}\r\n").as_bytes());
    assert_eq!(
        lines_until_pong(&mut c),
        Vec::<String>::new(),
        "CONNECT {json}"
    );
    c
}

/// PING, then every line before the PONG (server PINGs answered and skipped).
fn lines_until_pong(c: &mut Raw) -> Vec<String> {
    c.send(b"PING\r\n");
    let mut lines = Vec::new();
    loop {
        let Some(l) = c.try_read_line() else {
            panic!("connection closed before PONG; got {lines:?}");
        };
        match l.as_str() {
            "PONG" => return lines,
            "PING" => c.send(b"PONG\r\n"),
            _ => lines.push(l),
        }
    }
}

fn no_more(c: &mut Raw) {
    assert_eq!(
        lines_until_pong(c),
        Vec::<String>::new(),
        "unexpected lines"
    );
}

fn err_line(text: &str) -> Vec<u8> {
    format!("-ERR '{text}'\r\n").into_bytes()
}

/// Asserts the server closed `c` and sent nothing more.
fn closed_silently(c: &mut Raw) {
    assert!(c.closed(), "connection should be closed");
    assert_eq!(c.read_line(), "", "nothing should be sent before closing");
}

/// A subscriber on `health` plus a publisher: after a bad client did its worst,
/// a message still gets through and the subscriber saw nothing else.
struct Healthy {
    sub: Raw,
    publ: Raw,
}

impl Healthy {
    fn new(srv: &TestServer) -> Healthy {
        let mut sub = client(srv, NO_VERBOSE);
        sub.send(b"SUB health 1\r\n");
        no_more(&mut sub);
        Healthy {
            sub,
            publ: client(srv, NO_VERBOSE),
        }
    }

    fn check(mut self) {
        self.publ.send(b"PUB health 2\r\nok\r\n");
        no_more(&mut self.publ);
        assert_eq!(
            lines_until_pong(&mut self.sub),
            vec!["MSG health 1 2".to_string(), "ok".to_string()]
        );
    }
}

/// Runs a bad client: sends `input`, expects `-ERR '<err>'` (if any), then either
/// the close or an open connection; then checks the healthy pair.
fn bad_client(srv: &TestServer, input: &[u8], err: Option<&str>, closes: bool) {
    let healthy = Healthy::new(srv);
    let mut bad = srv.raw();
    bad.send(input);
    if let Some(text) = err {
        bad.expect(&err_line(text));
    }
    if closes {
        closed_silently(&mut bad);
    } else {
        no_more(&mut bad);
    }
    healthy.check();
}

fn connect_then(json: &str, rest: &str) -> Vec<u8> {
    format!("CONNECT {json}\r\n{rest}").into_bytes()
}

#[test]
fn info_on_connect() {
    let srv = TestServer::start();
    let mut c = Raw::connect(srv.addr);
    let line = c.read_line();
    assert!(line.starts_with("INFO {"), "{line:?}");
    assert!(
        line.ends_with("} "),
        "INFO ends with a space before CRLF: {line:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&line[5..]).expect("INFO json");
    for field in [
        "server_id",
        "server_name",
        "version",
        "go",
        "host",
        "client_ip",
    ] {
        assert!(json[field].is_string(), "{field} in {json}");
    }
    assert_eq!(json["proto"], 1);
    assert_eq!(json["headers"], true);
    assert_eq!(json["max_payload"], 1_048_576);
    assert_eq!(json["port"], srv.addr.port());
    assert!(json["client_id"].as_u64().is_some_and(|id| id > 0));
    // Each client gets its own client_id.
    let other: serde_json::Value =
        serde_json::from_str(&Raw::connect(srv.addr).read_line()[5..]).expect("json");
    assert_ne!(other["client_id"], json["client_id"]);
}

#[test]
fn connect_accepts_unknown_fields_and_twice() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    c.send(b"CONNECT {\"verbose\":false,\"foo\":1,\"lang\":\"rust\",\"protocol\":1}\r\n");
    no_more(&mut c);
    c.send(b"CONNECT {\"verbose\":true}\r\n");
    assert_eq!(lines_until_pong(&mut c), vec!["+OK"]);
}

#[test]
fn pub_sub_msg() {
    let srv = TestServer::start();
    let mut sub = client(&srv, NO_VERBOSE);
    sub.send(b"SUB foo.* 7\r\n");
    no_more(&mut sub);
    let mut publ = client(&srv, NO_VERBOSE);
    publ.send(b"PUB foo.bar 5\r\nhello\r\nPUB foo 1\r\nx\r\nPUB foo.bar 0\r\n\r\n");
    no_more(&mut publ);
    sub.expect(b"MSG foo.bar 7 5\r\nhello\r\nMSG foo.bar 7 0\r\n\r\n");
    no_more(&mut sub);
}

#[test]
fn reply_subjects() {
    let srv = TestServer::start();
    let mut sub = client(&srv, NO_VERBOSE);
    sub.send(b"SUB service 1\r\n");
    no_more(&mut sub);
    let mut req = client(&srv, NO_VERBOSE);
    req.send(b"SUB _INBOX.abc.* 9\r\nPUB service _INBOX.abc.1 4\r\nping\r\n");
    no_more(&mut req);
    sub.expect(b"MSG service 1 _INBOX.abc.1 4\r\nping\r\n");
    sub.send(b"PUB _INBOX.abc.1 4\r\npong\r\n");
    no_more(&mut sub);
    req.expect(b"MSG _INBOX.abc.1 9 4\r\npong\r\n");
}

#[test]
fn hpub_hmsg_with_headers() {
    let srv = TestServer::start();
    let mut sub = client(&srv, HEADERS);
    sub.send(b"SUB foo 1\r\n");
    no_more(&mut sub);
    let mut publ = client(&srv, HEADERS);
    publ.send(b"HPUB foo rep 28 30\r\nNATS/1.0\r\nA-b: c\r\nA-b: d\r\n\r\nhi\r\n");
    no_more(&mut publ);
    sub.expect(b"HMSG foo 1 rep 28 30\r\nNATS/1.0\r\nA-b: c\r\nA-b: d\r\n\r\nhi\r\n");
    // A plain PUB reaches a headers subscriber as MSG.
    publ.send(b"PUB foo 2\r\nhi\r\n");
    no_more(&mut publ);
    sub.expect(b"MSG foo 1 2\r\nhi\r\n");
    no_more(&mut sub);
}

#[test]
fn headers_stripped_for_subscriber_without_headers() {
    let srv = TestServer::start();
    let mut plain = client(&srv, NO_VERBOSE);
    plain.send(b"SUB foo 1\r\n");
    no_more(&mut plain);
    let mut publ = client(&srv, HEADERS);
    publ.send(b"HPUB foo r 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n");
    no_more(&mut publ);
    plain.expect(b"MSG foo 1 r 2\r\nhi\r\n");
    no_more(&mut plain);
}

#[test]
fn queue_group_delivers_each_message_to_one_member() {
    let srv = TestServer::start();
    let mut members: Vec<Raw> = (0..3)
        .map(|i| {
            let mut m = client(&srv, NO_VERBOSE);
            m.send(format!("SUB work q {i}\r\n").as_bytes());
            no_more(&mut m);
            m
        })
        .collect();
    let mut plain = client(&srv, NO_VERBOSE);
    plain.send(b"SUB work 1\r\n");
    no_more(&mut plain);
    let n = 60;
    let mut publ = client(&srv, NO_VERBOSE);
    for i in 0..n {
        publ.send(format!("PUB work 4\r\nm{i:03}\r\n").as_bytes());
    }
    no_more(&mut publ);
    let mut seen = Vec::new();
    for m in &mut members {
        let lines = lines_until_pong(m);
        assert_eq!(lines.len() % 2, 0);
        for pair in lines.chunks(2) {
            assert!(pair[0].starts_with("MSG work "), "{pair:?}");
            seen.push(pair[1].clone());
        }
    }
    seen.sort();
    let expected: Vec<String> = (0..n).map(|i| format!("m{i:03}")).collect();
    assert_eq!(seen, expected, "every message to exactly one member");
    assert_eq!(lines_until_pong(&mut plain).len(), 2 * n);
}

#[test]
fn unsub_stops_delivery() {
    let srv = TestServer::start();
    let mut c = client(&srv, NO_VERBOSE);
    c.send(b"SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1\r\nPUB foo 1\r\nb\r\nUNSUB 99\r\n");
    assert_eq!(lines_until_pong(&mut c), vec!["MSG foo 1 1", "a"]);
}

#[test]
fn unsub_with_max_auto_unsubscribes() {
    let srv = TestServer::start();
    let mut c = client(&srv, NO_VERBOSE);
    c.send(b"SUB foo 1\r\nUNSUB 1 2\r\n");
    for p in ["a", "b", "c"] {
        c.send(format!("PUB foo 1\r\n{p}\r\n").as_bytes());
    }
    assert_eq!(
        lines_until_pong(&mut c),
        vec!["MSG foo 1 1", "a", "MSG foo 1 1", "b"]
    );
    // The sid is free again once the max was reached.
    c.send(b"SUB bar 1\r\nPUB bar 1\r\nd\r\n");
    assert_eq!(lines_until_pong(&mut c), vec!["MSG bar 1 1", "d"]);
}

#[test]
fn unsub_max_counts_messages_already_delivered() {
    // As nats-server 2.9.10 (checked side by side): the max is a total since
    // SUB, so `UNSUB 1 3` after 5 deliveries ends the subscription at once and
    // `UNSUB 2 4` after 2 allows exactly 2 more.
    let srv = TestServer::start();
    let mut c = client(&srv, NO_VERBOSE);
    c.send(b"SUB foo 1\r\nSUB bar 2\r\n");
    for _ in 0..5 {
        c.send(b"PUB foo 1\r\nx\r\n");
    }
    c.send(b"PUB bar 1\r\ny\r\nPUB bar 1\r\ny\r\n");
    assert_eq!(lines_until_pong(&mut c).len(), 14);
    c.send(b"UNSUB 1 3\r\nPUB foo 1\r\nz\r\nUNSUB 2 4\r\n");
    for p in ["a", "b", "c"] {
        c.send(format!("PUB bar 1\r\n{p}\r\n").as_bytes());
    }
    assert_eq!(
        lines_until_pong(&mut c),
        vec!["MSG bar 2 1", "a", "MSG bar 2 1", "b"]
    );
}

#[test]
fn unsub_with_bad_max_unsubscribes_at_once() {
    // nats-server reads `x` as -1: unsubscribe now, keep the connection.
    let srv = TestServer::start();
    let mut c = client(&srv, NO_VERBOSE);
    c.send(
        b"SUB foo 1\r\nSUB bar 2\r\nUNSUB 1 x\r\nUNSUB 2 0\r\nPUB foo 1\r\na\r\nPUB bar 1\r\nb\r\n",
    );
    no_more(&mut c);
}

#[test]
fn ops_before_connect_use_the_reference_defaults() {
    // nats-server's defaults hold until CONNECT: verbose, so SUB and PUB sent
    // first are acknowledged (checked side by side with 2.9.10).
    let srv = TestServer::start();
    let mut c = srv.raw();
    c.send(b"SUB foo 1\r\nPUB foo 1\r\nx\r\n");
    assert_eq!(
        lines_until_pong(&mut c),
        vec!["+OK", "+OK", "MSG foo 1 1", "x"]
    );
}

#[test]
fn repeated_sub_with_live_sid_is_ignored() {
    let srv = TestServer::start();
    let mut c = client(&srv, NO_VERBOSE);
    c.send(b"SUB foo 1\r\nSUB bar 1\r\nPUB bar 1\r\nx\r\nPUB foo 1\r\ny\r\n");
    assert_eq!(lines_until_pong(&mut c), vec!["MSG foo 1 1", "y"]);
}

#[test]

fn verbose_acks_every_op() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    c.send(b"CONNECT {\"verbose\":true}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\n");
    assert_eq!(
        lines_until_pong(&mut c),
        vec!["+OK", "+OK", "+OK", "MSG foo 1 2", "hi", "+OK"]
    );
    // An invalid SUB gets its -ERR and no +OK; a wildcard PUB both.
    c.send(b"SUB foo..bar 2\r\nPUB foo.> 2\r\nhi\r\n");
    assert_eq!(
        lines_until_pong(&mut c),
        vec![
            "-ERR 'Invalid Subject'",
            "-ERR 'Invalid Publish Subject'",
            "+OK"
        ]
    );
}

#[test]
fn pedantic_rejects_invalid_publish_subject() {
    let srv = TestServer::start();
    let healthy = Healthy::new(&srv);
    let mut sub = client(&srv, NO_VERBOSE);
    sub.send(b"SUB foo.> 1\r\n");
    no_more(&mut sub);
    let mut c = client(&srv, r#"{"verbose":false,"pedantic":true}"#);
    c.send(b"PUB foo..bar 2\r\nhi\r\nPUB foo. 2\r\nhi\r\n");
    assert_eq!(
        lines_until_pong(&mut c),
        vec![
            "-ERR 'Invalid Publish Subject'",
            "-ERR 'Invalid Publish Subject'"
        ]
    );
    // Still open, and valid publishes go through.
    c.send(b"PUB foo.ok 2\r\nhi\r\n");
    no_more(&mut c);
    assert_eq!(lines_until_pong(&mut sub), vec!["MSG foo.ok 1 2", "hi"]);
    healthy.check();
}

#[test]

fn non_pedantic_malformed_publish_subject_reaches_nobody() {
    // nats-server, pedantic off: no -ERR, and `foo..bar` matches no `foo.>`.
    let srv = TestServer::start();
    let mut sub = client(&srv, NO_VERBOSE);
    sub.send(b"SUB foo.> 1\r\n");
    no_more(&mut sub);
    let mut c = client(&srv, r#"{"verbose":false,"pedantic":false}"#);
    c.send(b"PUB foo..bar 2\r\nhi\r\n");
    no_more(&mut c);
    no_more(&mut sub);
}

#[test]
fn pub_to_wildcard_subject_matches_its_tokens_literally() {
    // nats-server 2.9.10, checked side by side: with pedantic on (the default)
    // the publisher gets -ERR 'Invalid Publish Subject' and the message is
    // still delivered, its `*` matched as a literal token: the wildcard
    // subscriptions `foo.*`, `foo.>` and `>` get it, the literal `foo.a` not.
    let srv = TestServer::start();
    let healthy = Healthy::new(&srv);
    let mut subs = client(&srv, NO_VERBOSE);
    subs.send(b"SUB foo.* 1\r\nSUB foo.a 2\r\nSUB foo.> 3\r\nSUB > 4\r\n");
    no_more(&mut subs);
    let mut c = client(&srv, NO_VERBOSE);
    c.send(b"PUB foo.* 2\r\nhi\r\n");
    assert_eq!(
        lines_until_pong(&mut c),
        vec!["-ERR 'Invalid Publish Subject'"]
    );
    // Still open.
    c.send(b"PUB foo.a 1\r\nx\r\n");
    no_more(&mut c);
    // Without pedantic: no -ERR, same delivery; `foo.>` reaches `foo.*` too.
    let mut quiet = client(&srv, r#"{"verbose":false,"pedantic":false}"#);
    quiet.send(b"PUB foo.> 1\r\ny\r\n");
    no_more(&mut quiet);
    // Order across sids is unspecified.
    let lines = lines_until_pong(&mut subs);
    let mut msgs: Vec<String> = lines.chunks(2).map(|p| p.join("|")).collect();
    msgs.sort();
    assert_eq!(
        msgs,
        vec![
            "MSG foo.* 1 2|hi",
            "MSG foo.* 3 2|hi",
            "MSG foo.* 4 2|hi",
            "MSG foo.> 1 1|y",
            "MSG foo.> 3 1|y",
            "MSG foo.> 4 1|y",
            "MSG foo.a 1 1|x",
            "MSG foo.a 2 1|x",
            "MSG foo.a 3 1|x",
            "MSG foo.a 4 1|x"
        ]
    );
    healthy.check();
}

#[test]
fn echo_false_suppresses_own_messages() {
    let srv = TestServer::start();
    let mut other = client(&srv, NO_VERBOSE);
    other.send(b"SUB foo 1\r\n");
    no_more(&mut other);
    let mut c = client(&srv, r#"{"verbose":false,"echo":false}"#);
    c.send(b"SUB foo 1\r\nPUB foo 1\r\na\r\n");
    no_more(&mut c);
    assert_eq!(lines_until_pong(&mut other), vec!["MSG foo 1 1", "a"]);
}

#[test]
fn pong_comes_after_earlier_messages() {
    let srv = TestServer::start();
    let mut c = client(&srv, NO_VERBOSE);
    let mut input = b"SUB foo 1\r\n".to_vec();
    for i in 0..200 {
        input.extend_from_slice(format!("PUB foo 4\r\n{i:04}\r\n").as_bytes());
    }
    input.extend_from_slice(b"PING\r\n");
    c.send(&input);
    for i in 0..200 {
        c.expect(format!("MSG foo 1 4\r\n{i:04}\r\n").as_bytes());
    }
    c.expect(b"PONG\r\n");
}

#[test]
fn ping_before_connect_is_answered() {
    let srv = TestServer::start();
    let mut c = srv.raw();
    c.send(b"PING\r\n");
    c.expect(b"PONG\r\n");
    // The reference ignores whatever follows PING/PONG on the line.
    c.send(b"PING x\r\nPONG y\r\n");
    c.expect(b"PONG\r\n");
}

#[test]
fn info_and_ok_from_client_are_ignored() {
    let srv = TestServer::start();
    let mut c = client(&srv, NO_VERBOSE);
    c.send(b"INFO {}\r\n+OK\r\n");
    no_more(&mut c);
}

#[test]
fn no_responders_sends_503() {
    let srv = TestServer::start();
    let mut c = client(
        &srv,
        r#"{"verbose":false,"headers":true,"no_responders":true}"#,
    );
    c.send(b"SUB reply.x 1\r\nPUB nobody reply.x 1\r\na\r\n");
    // 2.9.10 sends no headers; newer servers (and PROTOCOL.md) allow a
    // `Nats-Subject` header.
    let lines = lines_until_pong(&mut c);
    let old_form = ["HMSG reply.x 1 16 16", "NATS/1.0 503", "", ""];
    let new_form = [
        "HMSG reply.x 1 38 38",
        "NATS/1.0 503",
        "Nats-Subject: nobody",
        "",
        "",
    ];
    assert!(lines == old_form || lines == new_form, "{lines:?}");
    // With a responder there is no 503.
    c.send(b"SUB somebody 2\r\nPUB somebody reply.x 1\r\na\r\n");
    assert_eq!(
        lines_until_pong(&mut c),
        vec!["MSG somebody 2 reply.x 1", "a"]
    );
}

// ---- errors: exact text and close / keep-open behaviour ----

#[test]
fn err_unknown_protocol_operation() {
    let srv = TestServer::start();
    bad_client(
        &srv,
        b"FOO bar\r\n",
        Some("Unknown Protocol Operation"),
        true,
    );
    bad_client(&srv, b"\r\n", Some("Unknown Protocol Operation"), true);
    // Without a newline the reference refuses at once.
    bad_client(&srv, b"FOO", Some("Unknown Protocol Operation"), true);
}

#[test]
fn err_route_ops_on_client_connection() {
    let srv = TestServer::start();
    for op in ["RS+ foo\r\n", "LMSG foo 2\r\n", "MSG foo 1 2\r\n"] {
        let input = connect_then(NO_VERBOSE, op);
        bad_client(&srv, &input, Some("Unknown Protocol Operation"), true);
    }
}

#[test]
fn err_op_name_without_arguments_is_unknown() {
    let srv = TestServer::start();
    for op in ["PUB", "HPUB", "SUB", "UNSUB"] {
        let input = connect_then(NO_VERBOSE, &format!("{op}\r\n"));
        bad_client(&srv, &input, Some("Unknown Protocol Operation"), true);
    }
}

#[test]
fn err_payload_longer_than_declared() {
    let srv = TestServer::start();
    let input = connect_then(NO_VERBOSE, "SUB health 9\r\nPUB health 2\r\nhello\r\n");
    bad_client(&srv, &input, Some("Unknown Protocol Operation"), true);
    let input = connect_then(NO_VERBOSE, "PUB health 5\r\nhi\r\nPING\r\n");
    bad_client(&srv, &input, Some("Unknown Protocol Operation"), true);
}

#[test]
fn err_maximum_control_line_exceeded() {
    let srv = TestServer::start();
    let long = "x".repeat(5000);
    let input = connect_then(NO_VERBOSE, &format!("SUB {long} 1\r\n"));
    bad_client(&srv, &input, Some("maximum control line exceeded"), true);
    // Also without a newline.
    let input = connect_then(NO_VERBOSE, &format!("PUB {long}"));
    bad_client(&srv, &input, Some("maximum control line exceeded"), true);
    let input = format!("CONNECT {{\"name\":\"{long}\"}}\r\n");
    bad_client(
        &srv,
        input.as_bytes(),
        Some("maximum control line exceeded"),
        true,
    );
}

#[test]
fn control_line_limit_counts_arguments_only() {
    // nats-server: 4096 argument bytes pass, 4097 do not; blanks before them are free.
    let srv = TestServer::start();
    let mut c = client(&srv, NO_VERBOSE);
    c.send(format!("SUB      {} 1\r\n", "a".repeat(4094)).as_bytes());
    no_more(&mut c);
    c.send(format!("SUB {} 2\r\n", "a".repeat(4095)).as_bytes());
    c.expect(&err_line("maximum control line exceeded"));
    closed_silently(&mut c);
}

#[test]
fn err_maximum_payload_violation() {
    let srv = TestServer::start();
    let input = connect_then(NO_VERBOSE, "PUB health 2000000\r\n");
    bad_client(&srv, &input, Some("Maximum Payload Violation"), true);
    let srv = TestServer::with(|o| o.max_payload = 100);
    let mut c = client(&srv, NO_VERBOSE);
    c.send(format!("PUB health 100\r\n{}\r\n", "x".repeat(100)).as_bytes());
    no_more(&mut c);
    let input = connect_then(
        NO_VERBOSE,
        &format!("PUB health 101\r\n{}\r\n", "x".repeat(101)),
    );
    bad_client(&srv, &input, Some("Maximum Payload Violation"), true);
    let input = connect_then(HEADERS, "HPUB health 12 101\r\n");
    bad_client(&srv, &input, Some("Maximum Payload Violation"), true);
}

#[test]
fn err_invalid_client_protocol() {
    let srv = TestServer::start();
    for json in [r#"{"protocol":2}"#, r#"{"protocol":-1}"#] {
        let input = connect_then(json, "");
        bad_client(&srv, &input, Some("invalid client protocol"), true);
    }
}

#[test]
fn err_no_responders_requires_headers() {
    let srv = TestServer::start();
    let input = connect_then(r#"{"no_responders":true}"#, "");
    bad_client(
        &srv,
        &input,
        Some("no responders requires headers support"),
        true,
    );
}

#[test]
fn err_invalid_subject_keeps_connection_open() {
    let srv = TestServer::start();
    let healthy = Healthy::new(&srv);
    let mut c = client(&srv, NO_VERBOSE);
    c.send(b"SUB foo..bar 1\r\nSUB foo.>.bar 2\r\nSUB .foo 3\r\n");
    assert_eq!(lines_until_pong(&mut c), vec!["-ERR 'Invalid Subject'"; 3]);
    c.send(b"SUB health 4\r\n");
    no_more(&mut c);
    healthy.check();
    assert_eq!(lines_until_pong(&mut c), vec!["MSG health 4 2", "ok"]);
}

#[test]
fn err_malformed_pub_args_close_silently() {
    let srv = TestServer::start();
    for op in [
        "PUB \r\n",
        "PUB health\r\n",
        "PUB health -1\r\n",
        "PUB health +2\r\nhi\r\n",
        "PUB health abc\r\n",
        "PUB health a b 3\r\nabc\r\n",
        // More arguments than the parser holds: once a panic that left the
        // connection open and registered.
        "PUB a b c d e f g h\r\n",
        "HPUB a b c d e f g h i j\r\n",
    ] {
        bad_client(&srv, &connect_then(NO_VERBOSE, op), None, true);
    }
}

#[test]
fn err_malformed_sub_and_unsub_args_close_silently() {
    let srv = TestServer::start();
    for op in [
        "SUB \r\n",
        "SUB health\r\n",
        "SUB health q 1 x\r\n",
        "UNSUB \r\n",
        "UNSUB 1 2 3\r\n",
    ] {
        bad_client(&srv, &connect_then(NO_VERBOSE, op), None, true);
    }
}

#[test]
fn err_hpub_without_headers_closes_silently() {
    let srv = TestServer::start();
    let input = connect_then(NO_VERBOSE, "HPUB health 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    bad_client(&srv, &input, None, true);
}

#[test]
fn err_hpub_header_size_over_total_closes_silently() {
    let srv = TestServer::start();
    for op in [
        "HPUB health 14 12\r\n",
        "HPUB health 14\r\n",
        "HPUB health -1 14\r\n",
    ] {
        bad_client(&srv, &connect_then(HEADERS, op), None, true);
    }
}

#[test]
fn err_connect_bad_json_closes_silently() {
    let srv = TestServer::start();
    for input in [
        &b"CONNECT {bad\r\n"[..],
        b"CONNECT\r\n",
        b"CONNECT {\"verbose\":false} x\r\n",
        b"CONNECT {\"verbose\":\"yes\"}\r\n",
    ] {
        bad_client(&srv, input, None, true);
    }
}

#[test]
fn err_from_client_closes_silently() {
    let srv = TestServer::start();
    bad_client(&srv, &connect_then(NO_VERBOSE, "-ERR 'x'\r\n"), None, true);
}

#[test]
fn err_maximum_connections_exceeded() {
    let srv = TestServer::with(|o| o.max_connections = 1);
    let mut first = client(&srv, NO_VERBOSE);
    let mut second = Raw::connect(srv.addr);
    assert!(second.read_line().starts_with("INFO {"));
    second.expect(&err_line("maximum connections exceeded"));
    closed_silently(&mut second);
    // The first client notices nothing.
    first.send(b"SUB foo 1\r\nPUB foo 1\r\na\r\n");
    assert_eq!(lines_until_pong(&mut first), vec!["MSG foo 1 1", "a"]);
}

#[test]
fn err_maximum_subscriptions_exceeded_keeps_open() {
    let srv = TestServer::with(|o| o.max_subscriptions = 2);
    let healthy = Healthy::new(&srv);
    let mut c = client(&srv, NO_VERBOSE);
    c.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n");
    assert_eq!(
        lines_until_pong(&mut c),
        vec!["-ERR 'maximum subscriptions exceeded'"]
    );
    c.send(b"PUB a 1\r\nx\r\nPUB c 1\r\ny\r\n");
    assert_eq!(lines_until_pong(&mut c), vec!["MSG a 1 1", "x"]);
    healthy.check();
}

// ---- split reads ----

#[test]
fn whole_session_byte_by_byte() {
    let srv = TestServer::start();
    let mut other = client(&srv, HEADERS);
    other.send(b"SUB foo.> 5\r\n");
    no_more(&mut other);
    let mut c = srv.raw();
    c.send_bytewise(
        b"CONNECT {\"verbose\":true,\"headers\":true}\r\n\
          sub foo.* q 1\r\n\
          PUB\tfoo.bar  reply 5\r\nhe\r\nl\r\n\
          HPUB foo.hdr 12 14\r\nNATS/1.0\r\n\r\nhi\r\n\
          UNSUB 1\r\n\
          PUB foo.bar 0\r\n\r\n\
          PING\r\n",
    );
    c.expect(
        b"+OK\r\n+OK\r\n\
          +OK\r\nMSG foo.bar 1 reply 5\r\nhe\r\nl\r\n\
          +OK\r\nHMSG foo.hdr 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n\
          +OK\r\n+OK\r\n\
          PONG\r\n",
    );
    assert_eq!(
        lines_until_pong(&mut other),
        vec![
            "MSG foo.bar 5 reply 5",
            "he",
            "l",
            "HMSG foo.hdr 5 12 14",
            "NATS/1.0",
            "",
            "hi",
            "MSG foo.bar 5 0",
            ""
        ]
    );
}

#[test]
fn bad_input_byte_by_byte() {
    let srv = TestServer::start();
    let healthy = Healthy::new(&srv);
    let mut c = srv.raw();
    c.send_bytewise(b"CONNECT {\"verbose\":false}\r\nPUB health 2\r\nhiX");
    c.expect(&err_line("Unknown Protocol Operation"));
    closed_silently(&mut c);
    healthy.check();
}
