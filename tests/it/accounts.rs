//! Accounts end to end with async-nats: isolation, stream and service
//! imports, a revoked import on reload, `no_auth_user` mapped into an
//! account with its permissions, and the system account (connect and
//! disconnect events, `$SYS.REQ.SERVER.PING…` answered, invisible to others).

use std::time::Duration;

use async_nats::{ConnectOptions, Event, ServerError};
use futures::StreamExt;
use natrium::options::Options;

use crate::common::TestServer;

const WAIT: Duration = Duration::from_secs(5);

/// Options from NATS config text (relative paths from the temp directory).
pub(crate) fn options(conf: &str) -> Options {
    let dir = std::env::temp_dir();
    let (opts, _warnings) = natrium::config::parse_str(conf, &dir).expect("config");
    opts
}

/// A server started from NATS config text.
pub(crate) fn server(conf: &str) -> TestServer {
    let opts = options(conf);
    TestServer::with(move |o| *o = opts)
}

/// Signs in as `user`, whose password is its name (the tests' convention).
pub(crate) async fn login(srv: &TestServer, user: &str) -> async_nats::Client {
    ConnectOptions::with_user_and_password(user.into(), user.into())
        .connection_timeout(WAIT)
        .connect(srv.url())
        .await
        .expect("connect")
}

/// The next message, within 5 s.
pub(crate) async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no message within 5 s")
        .expect("subscription ended")
}

/// Waits until `n` client subscriptions of `account` match `subject`:
/// async-nats' `flush` does not wait for the server to apply a SUB.
async fn interest(srv: &TestServer, account: &str, subject: &str, n: usize) {
    let acc = srv.state.accounts.get(account).expect("account");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let r = acc.sublist.match_subject(subject.as_bytes());
        let clients = r
            .plain()
            .iter()
            .filter(|s| s.0.client.kind != natrium::conn::Kind::Internal)
            .count();
        if clients >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no interest in {subject} in {account}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Nothing arrives within a short wait (after a flush round trip).
async fn nothing(sub: &mut async_nats::Subscriber) {
    let r = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(r.is_err(), "unexpected message: {:?}", r.ok().flatten());
}

const TWO: &str = r#"
accounts {
  A { users = [ {user: a, password: a} ] }
  B { users = [ {user: b, password: b} ] }
}
"#;

#[tokio::test]
async fn two_accounts_are_isolated() {
    let srv = server(TWO);
    let (a, b) = (login(&srv, "a").await, login(&srv, "b").await);
    let mut sa = a.subscribe("foo").await.expect("sub");
    let mut sb = b.subscribe("foo").await.expect("sub");
    let mut wild_b = b.subscribe(">").await.expect("sub");
    interest(&srv, "A", "foo", 1).await;
    interest(&srv, "B", "foo", 2).await;
    a.publish("foo", "from a".into()).await.expect("pub");
    a.flush().await.expect("flush");
    assert_eq!(next(&mut sa).await.payload.as_ref(), b"from a");
    nothing(&mut sb).await;
    nothing(&mut wild_b).await;
    b.publish("foo", "from b".into()).await.expect("pub");
    b.flush().await.expect("flush");
    assert_eq!(next(&mut sb).await.payload.as_ref(), b"from b");
    nothing(&mut sa).await;
    // Each account counts only its own subscriptions (plus the four system
    // imports every account has, as nats-server).
    let acc_a = srv.state.accounts.get("A").expect("A");
    let acc_b = srv.state.accounts.get("B").expect("B");
    assert_eq!(acc_a.sublist.count(), 1 + 4);
    assert_eq!(acc_b.sublist.count(), 2 + 4);
}

const SHARING: &str = r#"
accounts {
  A {
    users = [ {user: a, password: a} ]
    exports = [
      { stream: "events.>" }
      { service: "svc.>" }
      { stream: "private.>", accounts: [B] }
    ]
  }
  B {
    users = [ {user: b, password: b} ]
    imports = [
      { stream: { account: A, subject: "events.>" }, prefix: "from_a" }
      { service: { account: A, subject: "svc.time" }, to: "time" }
      { stream: { account: A, subject: "private.>" } }
    ]
  }
  C { users = [ {user: c, password: c} ] }
}
"#;

#[tokio::test]
async fn stream_import_with_prefix_delivers_renamed() {
    let srv = server(SHARING);
    let (a, b, c) = (
        login(&srv, "a").await,
        login(&srv, "b").await,
        login(&srv, "c").await,
    );
    let mut sb = b.subscribe("from_a.events.>").await.expect("sub");
    let mut private_b = b.subscribe("private.x").await.expect("sub");
    let mut sc = c.subscribe(">").await.expect("sub");
    interest(&srv, "B", "from_a.events.order.1", 1).await;
    interest(&srv, "B", "private.x", 1).await;
    interest(&srv, "C", "other", 1).await;
    a.publish("events.order.1", "o1".into()).await.expect("pub");
    a.publish("private.x", "p".into()).await.expect("pub");
    a.publish("other", "no".into()).await.expect("pub");
    a.flush().await.expect("flush");
    let m = next(&mut sb).await;
    assert_eq!(m.subject.as_str(), "from_a.events.order.1");
    assert_eq!(m.payload.as_ref(), b"o1");
    assert_eq!(next(&mut private_b).await.payload.as_ref(), b"p");
    nothing(&mut sb).await;
    nothing(&mut sc).await;
}

#[tokio::test]
async fn service_import_maps_request_and_reply() {
    let srv = server(SHARING);
    let (a, b) = (login(&srv, "a").await, login(&srv, "b").await);
    let mut service = a.subscribe("svc.time").await.expect("sub");
    interest(&srv, "A", "svc.time", 1).await;
    let responder = tokio::spawn(async move {
        let req = next(&mut service).await;
        let reply = req.reply.clone().expect("a reply subject");
        // The responder sees a mapped reply, never the requester's inbox.
        assert!(reply.starts_with("_R_."), "reply {reply}");
        a.publish(reply.clone(), "noon".into())
            .await
            .expect("answer");
        // A second answer to a singleton service is dropped.
        a.publish(reply, "late".into()).await.expect("answer");
        a.flush().await.expect("flush");
        a
    });
    let answer = tokio::time::timeout(WAIT, b.request("time", "now?".into()))
        .await
        .expect("answer within 5 s")
        .expect("request");
    assert_eq!(answer.payload.as_ref(), b"noon");
    let _a = responder.await.expect("responder");
    let acc_a = srv.state.accounts.get("A").expect("A");
    assert_eq!(acc_a.pending_responses(), 0, "singleton mapping used up");
}

#[tokio::test]
async fn service_import_without_responder_is_no_responders() {
    let srv = server(SHARING);
    let b = login(&srv, "b").await;
    let r = tokio::time::timeout(WAIT, b.request("time", "now?".into()))
        .await
        .expect("an answer within 5 s");
    let err = r.expect_err("nobody answers");
    assert_eq!(
        err.kind(),
        async_nats::client::RequestErrorKind::NoResponders,
        "{err}"
    );
}

#[tokio::test]
async fn revoked_import_on_reload_stops_delivery() {
    let srv = server(SHARING);
    let (a, b) = (login(&srv, "a").await, login(&srv, "b").await);
    let mut sb = b.subscribe("from_a.events.>").await.expect("sub");
    interest(&srv, "B", "from_a.events.1", 1).await;
    a.publish("events.1", "before".into()).await.expect("pub");
    a.flush().await.expect("flush");
    assert_eq!(next(&mut sb).await.payload.as_ref(), b"before");

    let revoked = SHARING.replace(
        r#"{ stream: { account: A, subject: "events.>" }, prefix: "from_a" }"#,
        "",
    );
    let mut next_opts = options(&revoked);
    next_opts.host = "127.0.0.1".into();
    srv.control.reload(next_opts);
    let acc_b = srv.state.accounts.get("B").expect("B");
    let deadline = std::time::Instant::now() + WAIT;
    while acc_b.config().imports.len() != 2 {
        assert!(std::time::Instant::now() < deadline, "reload not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The same connections stay up; the stream no longer crosses.
    a.publish("events.2", "after".into()).await.expect("pub");
    a.flush().await.expect("flush");
    nothing(&mut sb).await;
    let mut own = b.subscribe("x").await.expect("sub");
    interest(&srv, "B", "x", 1).await;
    b.publish("x", "still up".into()).await.expect("pub");
    b.flush().await.expect("flush");
    assert_eq!(next(&mut own).await.payload.as_ref(), b"still up");
}

#[tokio::test]
async fn no_auth_user_joins_its_account_with_its_permissions() {
    let srv = server(
        r#"
accounts {
  A {
    users = [ { user: guest, password: guest,
                permissions: { publish: ">", subscribe: { deny: "foo" } } } ]
  }
  B { users = [ {user: b, password: b} ] }
}
no_auth_user: guest
"#,
    );
    let (tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
    let guest = ConnectOptions::new()
        .connection_timeout(WAIT)
        .event_callback(move |ev| {
            let tx = tx.clone();
            async move {
                if let Event::ServerError(ServerError::Other(s)) = ev {
                    let _ = tx.send(s);
                }
            }
        })
        .connect(srv.url())
        .await
        .expect("anonymous connect");
    let _denied = guest.subscribe("foo").await.expect("sub sent");
    guest.flush().await.expect("flush");
    let err = tokio::time::timeout(WAIT, errors.recv())
        .await
        .expect("an -ERR")
        .expect("open");
    assert_eq!(
        err.to_ascii_lowercase(),
        "permissions violation for subscription to \"foo\""
    );
    // It is in account A: B does not see its messages.
    let b = login(&srv, "b").await;
    let mut sb = b.subscribe("bar").await.expect("sub");
    let mut sg = guest.subscribe("bar").await.expect("sub");
    interest(&srv, "B", "bar", 1).await;
    interest(&srv, "A", "bar", 1).await;
    guest.publish("bar", "g".into()).await.expect("pub");
    guest.flush().await.expect("flush");
    assert_eq!(next(&mut sg).await.payload.as_ref(), b"g");
    nothing(&mut sb).await;
    let conns = srv.state.clients();
    assert!(conns.iter().any(|c| c.account_name() == "A"));
}

const SYSTEM: &str = r#"
accounts {
  SYS { users = [ {user: sys, password: sys} ] }
  A { users = [ {user: a, password: a} ] }
}
system_account: SYS
"#;

#[tokio::test]
async fn system_account_sees_connect_and_disconnect_events() {
    let srv = server(SYSTEM);
    let sys = login(&srv, "sys").await;
    let mut connects = sys.subscribe("$SYS.ACCOUNT.*.CONNECT").await.expect("sub");
    let mut disconnects = sys
        .subscribe("$SYS.ACCOUNT.A.DISCONNECT")
        .await
        .expect("sub");
    interest(&srv, "SYS", "$SYS.ACCOUNT.A.CONNECT", 1).await;
    interest(&srv, "SYS", "$SYS.ACCOUNT.A.DISCONNECT", 1).await;
    // A non-system user subscribing to $SYS.> sees nothing.
    let other = login(&srv, "a").await;
    let mut snoop = other.subscribe("$SYS.>").await.expect("sub");
    interest(&srv, "A", "$SYS.ACCOUNT.A.CONNECT", 1).await;

    // The system user's own CONNECT event is published by the system task
    // and may arrive after the subscription: skip it.
    let mut m = next(&mut connects).await;
    if m.subject.as_str() == "$SYS.ACCOUNT.SYS.CONNECT" {
        m = next(&mut connects).await;
    }
    assert_eq!(m.subject.as_str(), "$SYS.ACCOUNT.A.CONNECT");
    let ev: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
    assert_eq!(ev["type"], "io.nats.server.advisory.v1.client_connect");
    assert_eq!(ev["client"]["acc"], "A");
    assert_eq!(ev["client"]["user"], "a");
    assert_eq!(ev["server"]["id"], srv.state.server_id.as_str());

    let leaving = login(&srv, "a").await;
    let _ = next(&mut connects).await;
    drop(leaving);
    let m = next(&mut disconnects).await;
    let ev: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
    assert_eq!(ev["type"], "io.nats.server.advisory.v1.client_disconnect");
    assert_eq!(ev["client"]["acc"], "A");
    assert!(ev["reason"].as_str().is_some_and(|r| !r.is_empty()));
    nothing(&mut snoop).await;
}

#[tokio::test]
async fn system_requests_answer_with_the_endpoint_json() {
    let srv = server(SYSTEM);
    let sys = login(&srv, "sys").await;
    let a = login(&srv, "a").await;
    let _s = a.subscribe("watched").await.expect("sub");
    interest(&srv, "A", "watched", 1).await;

    let ask = |subject: String, body: &'static str| {
        let sys = sys.clone();
        async move {
            let m = tokio::time::timeout(WAIT, sys.request(subject, body.into()))
                .await
                .expect("answer within 5 s")
                .expect("request");
            serde_json::from_slice::<serde_json::Value>(&m.payload).expect("json")
        }
    };
    let id = srv.state.server_id.clone();
    let varz = ask("$SYS.REQ.SERVER.PING.VARZ".into(), "").await;
    assert_eq!(varz["server"]["id"], id.as_str());
    assert_eq!(varz["data"]["server_id"], id.as_str());
    assert_eq!(varz["data"]["connections"], 2);

    let statsz = ask("$SYS.REQ.SERVER.PING".into(), "").await;
    assert_eq!(statsz["statsz"]["connections"], 2);

    let healthz = ask(format!("$SYS.REQ.SERVER.{id}.HEALTHZ"), "").await;
    assert_eq!(healthz["data"]["status"], "ok");

    // As nats-server, the account is named with `auth`.
    let connz = ask("$SYS.REQ.ACCOUNT.A.CONNZ".into(), r#"{"auth": true}"#).await;
    let conns = connz["data"]["connections"].as_array().expect("list");
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["account"], "A");

    let subsz = ask(
        "$SYS.REQ.SERVER.PING.SUBSZ".into(),
        r#"{"subscriptions": true, "account": "A"}"#,
    )
    .await;
    assert_eq!(subsz["data"]["subscriptions_list"][0]["subject"], "watched");

    // A ping naming another server is not answered by this one.
    let other = tokio::time::timeout(
        Duration::from_millis(500),
        sys.request(
            "$SYS.REQ.SERVER.PING.VARZ".to_string(),
            r#"{"server_name": "not-this-one", "exact_match": true}"#.into(),
        ),
    )
    .await;
    assert!(
        !matches!(other, Ok(Ok(_))),
        "a filtered ping must not be answered"
    );
}

#[tokio::test]
async fn stream_response_type_lets_every_answer_through() {
    let srv = server(
        r#"
accounts {
  A { users = [ {user: a, password: a} ]
      exports = [ { service: "feed.req", response_type: stream } ] }
  B { users = [ {user: b, password: b} ]
      imports = [ { service: { account: A, subject: "feed.req" } } ] }
}
"#,
    );
    let (a, b) = (login(&srv, "a").await, login(&srv, "b").await);
    let mut service = a.subscribe("feed.req").await.expect("sub");
    interest(&srv, "A", "feed.req", 1).await;
    let mut inbox = b.subscribe("my.inbox").await.expect("sub");
    interest(&srv, "B", "my.inbox", 1).await;
    b.publish_with_reply("feed.req", "my.inbox", "go".into())
        .await
        .expect("request");
    b.flush().await.expect("flush");
    let req = next(&mut service).await;
    let reply = req.reply.expect("mapped reply");
    for i in 0..3 {
        a.publish(reply.clone(), format!("part {i}").into())
            .await
            .expect("answer");
    }
    a.flush().await.expect("flush");
    for i in 0..3 {
        let m = next(&mut inbox).await;
        assert_eq!(m.subject.as_str(), "my.inbox");
        assert_eq!(m.payload.as_ref(), format!("part {i}").as_bytes());
    }
    let acc_a = srv.state.accounts.get("A").expect("A");
    assert_eq!(
        acc_a.pending_responses(),
        1,
        "a stream mapping stays until it expires"
    );
}

/// Any account may ask the system about itself, as through nats-server's
/// system imports: who am I, its own connections, its own statistics.
#[tokio::test]
async fn every_account_asks_about_itself() {
    let srv = server(
        r#"
accounts {
  SYS { users = [ {user: sys, password: sys} ] }
  A { users = [ {user: a, password: a, permissions: { publish: { deny: "secret" } }} ] }
  B { users = [ {user: b, password: b} ] }
}
system_account: SYS
"#,
    );
    let a = login(&srv, "a").await;
    let _b = login(&srv, "b").await;
    let ask = |subject: &'static str| {
        let a = a.clone();
        async move {
            let m = tokio::time::timeout(WAIT, a.request(subject, "".into()))
                .await
                .expect("answer within 5 s")
                .expect("request");
            serde_json::from_slice::<serde_json::Value>(&m.payload).expect("json")
        }
    };
    let me = ask("$SYS.REQ.USER.INFO").await;
    assert_eq!(me["data"]["user"], "a");
    assert_eq!(me["data"]["account"], "A");
    assert_eq!(me["data"]["permissions"]["publish"]["deny"][0], "secret");

    let connz = ask("$SYS.REQ.ACCOUNT.PING.CONNZ").await;
    let conns = connz["data"]["connections"].as_array().expect("list");
    assert_eq!(
        conns.len(),
        1,
        "only its own account's connections: {connz}"
    );
    let connz = ask("$SYS.REQ.SERVER.PING.CONNZ").await;
    assert_eq!(
        connz["data"]["connections"].as_array().map(Vec::len),
        Some(1)
    );

    let statz = ask("$SYS.REQ.ACCOUNT.PING.STATZ").await;
    let rows = statz["data"]["account_statz"].as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["acc"], "A");
}

/// A reload that moves a user to another account closes its connection
/// (`Client Closed`, no -ERR, as nats-server); it signs in again into the
/// new account.
#[test]
fn reload_moving_a_user_to_another_account_closes_it() {
    let before = r#"
accounts {
  A { users = [ {user: x, password: x} ] }
  B { users = [ {user: y, password: y} ] }
}
"#;
    let after = r#"
accounts {
  A { users = [ ] }
  B { users = [ {user: y, password: y}, {user: x, password: x} ] }
}
"#;
    let srv = server(before);
    let mut x = srv.raw();
    x.send(b"CONNECT {\"user\":\"x\",\"pass\":\"x\",\"verbose\":false}\r\nPING\r\n");
    assert_eq!(x.read_line(), "PONG");
    let in_account = |name: &str| {
        srv.state
            .clients()
            .iter()
            .filter(|c| c.account_name() == name)
            .count()
    };
    assert_eq!(in_account("A"), 1);
    let mut next = options(after);
    next.host = "127.0.0.1".into();
    srv.control.reload(next);
    loop {
        match x.try_read_line() {
            None => break,
            Some(l) if l == "PING" => {}
            Some(l) => panic!("expected a plain close, got {l:?}"),
        }
    }
    assert!(x.closed());
    let mut again = srv.raw();
    again.send(b"CONNECT {\"user\":\"x\",\"pass\":\"x\",\"verbose\":false}\r\nPING\r\n");
    assert_eq!(again.read_line(), "PONG");
    assert_eq!(in_account("B"), 1);
    let deadline = std::time::Instant::now() + WAIT;
    while in_account("A") != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "closed client still registered"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
