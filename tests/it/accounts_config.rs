//! The `accounts` block as nats-server 2.15.3 reads it: a map or a list of
//! names; users (plain, bcrypt, nkey) with their own or the account's
//! `default_permissions`; `no_auth_user` in any account; `$G` for users
//! outside accounts; stream and service exports and imports. Every malformed
//! block or misfit is an error naming `line:col` (`file:line:col` when read
//! from a file, and so printed by `natrium -t`, which exits non-zero), in
//! nats-server's words (checked against the reference binary when there is
//! one). Reloads: a bad one is refused and the old accounts keep delivering;
//! a good one adds an account whose user can log in and closes the
//! connection of a user it removes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use natrium::config::{load, parse_str};
use natrium::options::{
    AccountConfig, ExportConfig, Options, Permissions, ResponseType, ShareKind,
};

use crate::common::{Raw, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_natrium");
const NKEY: &str = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";

fn opts(text: &str) -> (Options, Vec<String>) {
    match parse_str(text, Path::new(".")) {
        Ok(r) => r,
        Err(e) => panic!("config failed: {e}\n{text}"),
    }
}

fn err(text: &str) -> String {
    match parse_str(text, Path::new(".")) {
        Ok(r) => panic!("expected an error, got {r:?}\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn allow(publish: &[&str], subscribe: &[&str]) -> Permissions {
    let list = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect());
    Permissions {
        publish_allow: list(publish),
        subscribe_allow: list(subscribe),
        ..Permissions::default()
    }
}

const FULL: &str = r#"
authorization { users = [ { user: g, password: g } ] }
accounts {
  A {
    users = [
      { user: a, password: a }
      { user: hashed, password: "$2a$11$tzRtcm8mR3QN/9M/zUTbXeUZdPgBIlYbs5bOFWJ9kX2KTrnWSl6Ky" }
      { nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4 }
      { user: own, password: o, permissions: { publish: "own.>", subscribe: "own.>" } }
    ]
    default_permissions: { publish: "a.>", subscribe: ["a.>", "_INBOX.>"] }
    exports = [
      { stream: "events.>" }
      { stream: "private.>", accounts: [B] }
      { service: "svc.one", response_type: singleton }
      { service: "svc.many", response: stream, accounts: [B, C] }
      { service: "svc.parts", response_type: chunked }
    ]
  }
  B {
    users = [ { user: b, password: b } ]
    imports = [
      { stream: { account: A, subject: "events.>" }, prefix: from_a }
      { stream: { account: A, subject: "private.x" }, to: "mine.x" }
      { service: { account: A, subject: "svc.one" } }
      { service: { account: A, subject: "svc.many" }, to: "many" }
    ]
  }
  C: {}
}
no_auth_user: own
"#;

#[test]
fn accounts_map_with_users_exports_and_imports() {
    let (o, w) = opts(FULL);
    assert!(w.is_empty(), "{w:?}");
    let names: Vec<_> = o.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C"]);
    let user = |name: &str| {
        o.users
            .iter()
            .find(|u| u.user.as_deref() == Some(name) || u.nkey.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no user {name}"))
    };
    // Users outside any account are in `$G` (no account).
    assert_eq!(user("g").account, None);
    assert_eq!(user("g").permissions, None);
    let defaults = allow(&["a.>"], &["a.>", "_INBOX.>"]);
    for name in ["a", "hashed", NKEY] {
        assert_eq!(user(name).account.as_deref(), Some("A"), "{name}");
        assert_eq!(user(name).permissions.as_ref(), Some(&defaults), "{name}");
    }
    assert!(user("hashed")
        .password
        .as_deref()
        .is_some_and(|p| p.starts_with("$2a$11$")));
    assert_eq!(user(NKEY).password, None);
    let own = user("own");
    assert_eq!(own.permissions, Some(allow(&["own.>"], &["own.>"])));
    assert_eq!(user("b").account.as_deref(), Some("B"));
    assert_eq!(user("b").permissions, None, "B has no default_permissions");
    assert_eq!(o.no_auth_user.as_deref(), Some("own"));

    let a = &o.accounts[0];
    let export = |kind, subject: &str, accounts: Option<&[&str]>, response| ExportConfig {
        kind,
        subject: subject.into(),
        accounts: accounts.map(|l| l.iter().map(|s| s.to_string()).collect()),
        response,
    };
    use ResponseType::{Chunked, Singleton};
    use ShareKind::Service;
    assert_eq!(
        a.exports,
        vec![
            export(ShareKind::Stream, "events.>", None, Singleton),
            export(ShareKind::Stream, "private.>", Some(&["B"]), Singleton),
            export(Service, "svc.one", None, Singleton),
            export(Service, "svc.many", Some(&["B", "C"]), ResponseType::Stream),
            export(Service, "svc.parts", None, Chunked),
        ]
    );
    let b = &o.accounts[1];
    let got: Vec<_> = b
        .imports
        .iter()
        .map(|i| {
            (
                i.kind,
                &*i.account,
                &*i.subject,
                i.prefix.as_deref(),
                i.to.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (ShareKind::Stream, "A", "events.>", Some("from_a"), None),
            (ShareKind::Stream, "A", "private.x", None, Some("mine.x")),
            (Service, "A", "svc.one", None, None),
            (Service, "A", "svc.many", None, Some("many")),
        ]
    );
    // Each import remembers where it was configured, for later errors.
    assert_eq!(b.imports[0].origin, "23:7");
    assert_eq!(
        o.accounts[2],
        AccountConfig {
            name: "C".into(),
            origin: "29:3".into(),
            ..AccountConfig::default()
        }
    );
}

#[test]
fn accounts_as_a_list_of_names() {
    let (o, w) = opts("accounts: [ A, \"B\" ]\nsystem_account: A\n");
    assert!(w.is_empty(), "{w:?}");
    let names: Vec<_> = o.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["A", "B"]);
    assert!(o
        .accounts
        .iter()
        .all(|a| a.exports.is_empty() && a.imports.is_empty()));
    assert!(o.users.is_empty());
    assert_eq!(o.system_account.as_deref(), Some("A"));
}

#[test]
fn no_auth_user_may_name_a_user_of_any_account_or_of_g() {
    for (who, account) in [
        ("a", Some("A")),
        ("b", Some("B")),
        ("g", None),
        (NKEY, Some("B")),
    ] {
        let text = format!(
            "authorization {{ users = [ {{user: g, password: g}} ] }}\n\
             accounts {{ A {{ users = [ {{user: a, password: a}} ] }}\n\
             B {{ users = [ {{user: b, password: b}}, {{nkey: {NKEY}}} ] }} }}\n\
             no_auth_user: \"{who}\"\n"
        );
        let (o, _) = opts(&text);
        let named = o
            .users
            .iter()
            .find(|u| u.user.as_deref() == Some(who) || u.nkey.as_deref() == Some(who))
            .expect("no_auth_user is a user");
        assert_eq!(named.account.as_deref(), account, "{who}");
    }
}

#[test]
fn forms_nats_server_accepts() {
    // `accounts: []` on an export is public, as nats-server.
    let (o, _) = opts(
        "accounts { A { exports = [ {stream: a, accounts: []} ] }\n\
         B { imports = [ {stream: {account: A, subject: a}} ] } }",
    );
    assert_eq!(o.accounts[0].exports[0].accounts, None);
    // nats-server ignores `prefix` on a service import: a warning here.
    let (o, w) = opts(
        "accounts { A { exports = [ {service: s} ] }\n\
         B { imports = [ {service: {account: A, subject: s}, prefix: p} ] } }",
    );
    assert_eq!(o.accounts[1].imports[0].prefix, None);
    assert_eq!(
        w,
        ["\"prefix\" at 2:53 is ignored on a service import (use \"to\")"]
    );
    // A name repeated in the map is one account, the last one winning (the
    // parser merges repeated keys, as nats-server's).
    let (o, _) = opts("accounts { A { users = [ {user: x} ] }\nA { users = [ {user: y} ] } }");
    assert_eq!(o.accounts.len(), 1);
    let users: Vec<_> = o.users.iter().map(|u| u.user.as_deref()).collect();
    assert_eq!(users, [Some("y")]);
    // Two imports reaching one account (a diamond) are no cycle.
    let (o, _) = opts(
        "accounts {\n\
         E { exports = [ {stream: s} ] }\n\
         D { exports = [ {stream: s} ], imports = [ {stream: {account: E, subject: s}} ] }\n\
         C1 { exports = [ {stream: s} ], imports = [ {stream: {account: D, subject: s}} ] }\n\
         C2 { exports = [ {stream: s} ], imports = [ {stream: {account: D, subject: s}} ] }\n\
         B { exports = [ {stream: s} ], imports = [ {stream: {account: C1, subject: s}},\n\
                                                    {stream: {account: C2, subject: s}} ] }\n\
         A { imports = [ {stream: {account: B, subject: s}} ] } }",
    );
    assert_eq!(o.accounts.len(), 6);
}

/// One bad config: its text, the error `parse_str` gives (`line:col: …`),
/// and what `nats-server -t` says for it (`None`: it accepts the file or
/// words it apart, see the comment on the row).
type Case = (&'static str, &'static str, Option<&'static str>);

const EXP: &str = "accounts { A { exports = [ {stream: \"e.>\"}, {service: \"svc.>\"} ] }\n";

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Malformed blocks.
    ("accounts { A: 1 }", "1:15: Expected map entries for accounts", Some("Expected map entries for accounts")),
    ("accounts { A { users = [ {user: a} ] }\nB: [ x ] }", "2:4: Expected map entries for accounts", Some("Expected map entries for accounts")),
    // nats-server ignores a block that is neither map nor list.
    ("accounts: foo", "1:11: \"accounts\" expected a map of accounts or a list of names, found string", None),
    ("accounts { A { exports = [ {stream: foo, service: bar} ] } }", "1:51: Detected service \"bar\" but already saw a stream", None),
    // nats-server ignores an export or import naming no subject.
    ("accounts { A { exports = [ {accounts: [A]} ] } }", "1:28: An export needs a \"stream\" or \"service\" subject", None),
    ("accounts { A { imports = [ {prefix: p} ] } }", "1:28: An import needs a \"stream\" or \"service\" entry", None),
    ("accounts { A { exports = [ foo ] } }", "1:28: \"exports\" expected a map with a stream or service entry, found string", None),
    ("accounts { A { imports = { stream: x } } }", "1:26: \"imports\" expected an array, found map", None),
    ("accounts { A { exports = [ {stream: a, response_type: stream} ] } }", "1:55: Detected response directive on non-service", Some("Detected response directive on non-service")),
    ("accounts { A { exports = [ {service: a, response_type: many} ] } }", "1:56: Unknown response type: \"many\"", Some("Unknown response type: \"many\"")),
    ("accounts { A { exports = [ {service: a, response_type: stream, response: chunked} ] } }", "1:74: Duplicate response type definition", Some("Duplicate response type definition")),
    ("accounts { B { imports = [ {stream: {subject: foo}} ] } }", "1:37: Expect an account name and a subject", Some("Expect an account name and a subject")),
    ("accounts { B { imports = [ {service: {account: A}} ] } }", "1:38: Expect an account name and a subject", Some("Expect an account name and a subject")),
    ("accounts { B { imports = [ {stream: \"x\"} ] } }", "1:37: \"stream\" expected a map { ... }, found string", None),
    ("accounts { B { imports = [ {stream: {account: A, subject: a}, service: {account: A, subject: b}} ] } }", "1:72: Detected service but already saw a stream", None),
    // nats-server finds this in some key orders only.
    (concat!("accounts { A { exports = [ {stream: \"e.>\"} ] }\n", "B { imports = [ {stream: {account: A, subject: \"e.>\"}, prefix: p, to: \"q.>\"} ] } }"), "2:56: Stream import can not have a 'prefix' and a 'to' property", None),
    // Names.
    ("accounts { $G { } }", "1:12: \"$G\" is a Reserved Account", Some("\"$G\" is a Reserved Account")),
    ("accounts [ A, \"$G\" ]", "1:15: \"$G\" is a Reserved Account", Some("\"$G\" is a Reserved Account")),
    ("accounts [ A, B, A ]", "1:18: Duplicate Account Entry: A", Some("Duplicate Account Entry: A")),
    // Imports that no export allows.
    (concat!("accounts { A { }\n", "B { imports = [ {stream: {account: A, subject: foo}} ] } }"), "2:17: Error adding stream import \"foo\": stream import not authorized", Some("Error adding stream import \"foo\": stream import not authorized")),
    (concat!("accounts { A { }\n", "B { imports = [ {service: {account: A, subject: foo}} ] } }"), "2:17: Error adding service import \"foo\": service import not authorized", Some("Error adding service import \"foo\": service import not authorized")),
    ("accounts { B { imports = [ {stream: {account: Z, subject: foo}} ] } }", "1:28: \"Z\" account not defined for stream import", Some("\"Z\" account not defined for stream import")),
    ("accounts { B { imports = [ {service: {account: \"$G\", subject: foo}} ] } }", "1:28: \"$G\" account not defined for service import", Some("\"$G\" account not defined for service import")),
    (concat!("accounts { A { exports = [ {stream: foo, accounts: [C]} ] }\n", "C { }\n", "B { imports = [ {stream: {account: A, subject: foo}} ] } }"), "3:17: Error adding stream import \"foo\": stream import not authorized", Some("Error adding stream import \"foo\": stream import not authorized")),
    (concat!("accounts { A { exports = [ {service: \"svc.a\"} ] }\n", "B { imports = [ {service: {account: A, subject: \"svc.>\"}} ] } }"), "2:17: Error adding service import \"svc.>\": service import not authorized", Some("Error adding service import \"svc.>\": service import not authorized")),
    (concat!("accounts { A { exports = [ {service: a} ] }\n", "B { imports = [ {stream: {account: A, subject: a}} ] } }"), "2:17: Error adding stream import \"a\": stream import not authorized", Some("Error adding stream import \"a\": stream import not authorized")),
    ("accounts { A { exports = [ {stream: a, accounts: [Z]} ] } }", "1:12: \"Z\" account not defined for stream export", Some("\"Z\" account not defined for stream export")),
    (concat!("accounts { A { exports = [ {stream: a} ] }\n", "B { imports = [ {stream: {account: A, subject: a}}, {stream: {account: A, subject: a}} ] } }"), "2:53: Error adding stream import \"a\": stream import already exists", Some("Error adding stream import \"a\": stream import already exists")),
    (concat!("accounts { A { exports = [ {service: a}, {service: b} ] }\n", "B { imports = [ {service: {account: A, subject: a}, to: x}, {service: {account: A, subject: b}, to: x} ] } }"), "2:61: Duplicate service import subject \"x\", previously used in import for account \"A\", subject \"a\"", Some("Duplicate service import subject \"x\", previously used in import for account \"A\", subject \"a\"")),
    (concat!("accounts { A { exports = [ {stream: a} ] }\n", "B { imports = [ {stream: {account: A, subject: a}, prefix: \"p.*\"} ] } }"), "2:17: Error adding stream import \"a\": stream import prefix can not contain wildcard tokens", Some("Error adding stream import \"a\": stream import prefix can not contain wildcard tokens")),
    // Cycles.
    (concat!("accounts {\n", "A { exports = [ {stream: foo} ], imports = [ {stream: {account: B, subject: foo}} ] }\n", "B { exports = [ {stream: foo} ], imports = [ {stream: {account: A, subject: foo}} ] } }"), "2:46: Error adding stream import \"foo\": import forms a cycle", Some("Error adding stream import \"foo\": import forms a cycle")),
    (concat!("accounts {\n", "A { exports = [ {service: foo} ], imports = [ {service: {account: B, subject: foo}} ] }\n", "B { exports = [ {service: foo} ], imports = [ {service: {account: C, subject: foo}} ] }\n", "C { exports = [ {service: foo} ], imports = [ {service: {account: A, subject: foo}} ] } }"), "2:47: Error adding service import \"foo\": import forms a cycle", Some("Error adding service import \"foo\": import forms a cycle")),
    // nats-server accepts an account importing its own stream (and delivers
    // twice); natrium refuses it as the loop it is.
    ("accounts { A { exports = [ {stream: a} ], imports = [ {stream: {account: A, subject: a}} ] } }", "1:55: Error adding stream import \"a\": import forms a cycle", None),
    // Users.
    (concat!("accounts { A { users = [ {user: x, password: p} ] }\n", "B { users = [ {user: x, password: q} ] } }"), "2:22: Duplicate user \"x\" detected", Some("Duplicate user \"x\" detected")),
    (concat!("authorization { users = [ {user: x, password: p} ] }\n", "accounts { B { users = [ {user: x, password: q} ] } }"), "2:33: Duplicate user \"x\" detected", Some("Duplicate user \"x\" detected")),
    (concat!("accounts { A { users = [ {nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4} ] }\n", "B { users = [ {nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4} ] } }"), "2:22: Duplicate nkey \"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4\" detected", Some("Duplicate nkey \"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4\" detected")),
    ("accounts { A { users = [ {nkey: UBAD} ] } }", "1:26: invalid \"users\": Not a valid public nkey for a user", Some("Not a valid public nkey for a user")),
    ("accounts { A { users = [ {nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4, password: x} ] } }", "1:26: invalid \"users\": Nkey users do not take usernames or passwords", Some("Nkey users do not take usernames or passwords")),
    // nats-server: "User entry requires a user".
    ("accounts { A { users = [ {password: x} ] } }", "1:26: invalid \"users\": a user entry needs \"user\" or \"nkey\"", None),
    // Either order is refused; nats-server's wording depends on which it
    // reads first (its key order is random).
    (concat!("authorization { user: a, password: b }\n", "accounts { A { users = [ {user: x, password: p} ] } }"), "2:16: Can not have a single user/pass and accounts", None),
    (concat!("accounts { A { users = [ {user: x, password: p} ] } }\n", "authorization { token: abc }"), "2:15: invalid \"authorization\": Can not have a token and a users array", None),
    (concat!("accounts { A { users = [ {user: x, password: p} ] } }\n", "no_auth_user: ghost"), "2:15: invalid \"no_auth_user\": \"ghost\" not present as user or nkey in authorization block or account configuration", Some("\"ghost\" not present as user or nkey in authorization block or account configuration")),
    // nats-server finds this only at start ("error resolving system account").
    ("accounts [ A ]\nsystem_account: FOO", "2:17: system account \"FOO\" is not defined in accounts", None),
];

#[test]
fn every_bad_block_is_an_error_at_its_line_and_column() {
    let mut wrong = Vec::new();
    for (text, want, _) in CASES {
        let got = err(text);
        if got != *want {
            wrong.push(format!("{text}\n  want: {want}\n  got:  {got}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    // An import of an export that is not there, among valid ones.
    let bad = format!("{EXP}B {{ imports = [ {{service: {{account: A, subject: \"svc.x\"}}}}, {{stream: {{account: A, subject: \"f.>\"}}}} ] }} }}");
    assert_eq!(
        err(&bad),
        "2:60: Error adding stream import \"f.>\": stream import not authorized"
    );
}

/// `natrium -t -c FILE` prints each case's error with the file's name and
/// exits non-zero; where nats-server refuses the file too, it says the same.
#[test]
fn test_mode_prints_file_line_col_and_fails() {
    let dir = std::env::temp_dir().join(format!("natrium-acc-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let reference = crate::leaf_support::reference_bin()
        .filter(|_| crate::leaf_support::reference_version() >= Some((2, 15, 0)));
    if reference.is_none() {
        eprintln!("note: no nats-server 2.15+; natrium's texts are not compared with it");
    }
    let mut wrong = Vec::new();
    for (n, (text, want, theirs)) in CASES.iter().enumerate() {
        let path = dir.join(format!("case{n}.conf"));
        std::fs::write(&path, text).expect("write");
        let file = path.display().to_string();
        let loaded = load(&path).err().map(|e| e.to_string());
        if loaded.as_deref() != Some(&format!("{file}:{want}")) {
            wrong.push(format!("load {text}: {loaded:?}"));
        }
        let out = Command::new(BIN).arg("-t").arg("-c").arg(&path).output();
        let out = out.expect("run natrium -t");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || stderr != format!("nats-server: {file}:{want}\n") {
            wrong.push(format!("natrium -t {text}: {:?} {stderr}", out.status));
        }
        let (Some(bin), Some(theirs)) = (&reference, theirs) else {
            continue;
        };
        let out = Command::new(bin).arg("-t").arg("-c").arg(&path).output();
        let out = out.expect("run nats-server -t");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !stderr.contains(theirs) {
            wrong.push(format!("nats-server -t {text}: {stderr}"));
        }
    }
    let good = dir.join("good.conf");
    std::fs::write(&good, FULL).expect("write");
    let out = Command::new(BIN).arg("-t").arg("-c").arg(&good).output();
    let out = out.expect("run natrium -t");
    if !out.status.success() {
        wrong.push(format!("good: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

const LIVE: &str = r#"
accounts {
  A {
    users = [ {user: a, password: a}, {user: x, password: x} ]
    exports = [ {stream: "events.>"} ]
  }
  B {
    users = [ {user: b, password: b} ]
    imports = [ {stream: {account: A, subject: "events.>"}, prefix: from_a} ]
  }
}
"#;

/// Options to start or reload with: the test server listens on 127.0.0.1,
/// and a reload may not move it.
fn live(text: &str) -> Options {
    let (mut o, _) = opts(text);
    o.host = "127.0.0.1".into();
    o
}

fn login(srv: &TestServer, user: &str, pass: &str) -> Raw {
    let mut r = srv.raw();
    let connect =
        format!("CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\n");
    r.send(connect.as_bytes());
    assert_eq!(r.flush(), "", "login as {user}");
    r
}

/// `from` publishes `events.N`; `to`, subscribed as sid 1, must get it as
/// `<prefix>events.N`.
fn crosses(from: &mut Raw, to: &mut Raw, prefix: &str, n: u32) {
    from.send(format!("PUB events.{n} 2\r\nhi\r\n").as_bytes());
    assert_eq!(from.flush(), "");
    assert_eq!(to.flush(), format!("MSG {prefix}events.{n} 1 2\nhi\n"));
}

fn wait_for_gen(srv: &TestServer, gen: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while srv.state.config_gen() < gen {
        assert!(Instant::now() < deadline, "reload not applied");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bad_accounts_reload_is_refused_and_old_accounts_keep_delivering() {
    let srv = TestServer::with(|o| *o = live(LIVE));
    let (mut a, mut b, mut x) = (
        login(&srv, "a", "a"),
        login(&srv, "b", "b"),
        login(&srv, "x", "x"),
    );
    b.send(b"SUB from_a.events.> 1\r\n");
    assert_eq!(b.flush(), "");
    crosses(&mut a, &mut b, "from_a.", 1);

    // As text (a file sent with SIGHUP), the parser refuses it already.
    let bad = LIVE.replace(
        "subject: \"events.>\"}, prefix",
        "subject: \"nope.>\"}, prefix",
    );
    assert_eq!(
        err(&bad),
        "9:17: Error adding stream import \"nope.>\": stream import not authorized"
    );
    // Options that never met the parser are refused by the server: an import
    // of an export that is not there (and dropping user x, were it applied).
    let gen = srv.state.config_gen();
    let mut bad = live(LIVE);
    bad.accounts[1].imports[0].subject = "nope.>".into();
    bad.users.retain(|u| u.user.as_deref() != Some("x"));
    srv.control.reload(bad);
    // A good reload queued behind it: once it is in, the bad one was handled.
    srv.control.reload(live(LIVE));
    wait_for_gen(&srv, gen + 1);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        srv.state.config_gen(),
        gen + 1,
        "the bad reload was applied"
    );
    let acc_b = srv.state.accounts.get("B").expect("B");
    assert_eq!(acc_b.config().imports[0].subject, "events.>");
    crosses(&mut a, &mut b, "from_a.", 2);
    assert_eq!(x.flush(), "", "x is still a user");
}

#[test]
fn good_accounts_reload_adds_an_account_and_closes_a_removed_user() {
    let srv = TestServer::with(|o| *o = live(LIVE));
    let (mut a, mut b, mut x) = (
        login(&srv, "a", "a"),
        login(&srv, "b", "b"),
        login(&srv, "x", "x"),
    );
    b.send(b"SUB from_a.events.> 1\r\n");
    assert_eq!(b.flush(), "");
    let mut nobody = srv.raw();
    nobody.send(b"CONNECT {\"user\":\"c\",\"pass\":\"cpw\"}\r\nPING\r\n");
    assert_eq!(nobody.read_line(), "-ERR 'Authorization Violation'");

    // x leaves A; account C comes with a bcrypt user and an import from A.
    let hash = bcrypt::hash("cpw", 4).expect("bcrypt");
    let c_block = String::from("  C {\n    users = [ {user: c, password: \"")
        + &hash
        + "\"} ]\n    imports = [ {stream: {account: A, subject: \"events.>\"}} ]\n  }\n  B {";
    let next = LIVE
        .replace(", {user: x, password: x}", "")
        .replace("  B {", &c_block);
    let gen = srv.state.config_gen();
    srv.control.reload(live(&next));
    wait_for_gen(&srv, gen + 1);

    // x is told and closed; anything but an auth error or EOF is wrong.
    while let Some(line) = x.try_read_line() {
        if line != "PING" {
            assert_eq!(line, "-ERR 'Authorization Violation'");
        }
    }
    assert!(x.closed());
    let mut again = srv.raw();
    again.send(b"CONNECT {\"user\":\"x\",\"pass\":\"x\"}\r\nPING\r\n");
    assert_eq!(again.read_line(), "-ERR 'Authorization Violation'");

    // c logs in, lands in C and gets A's stream through C's import; B's
    // import still delivers to the connection that was there before.
    let mut c = login(&srv, "c", "cpw");
    c.send(b"SUB events.> 1\r\n");
    assert_eq!(c.flush(), "");
    crosses(&mut a, &mut c, "", 3);
    assert_eq!(b.flush(), "MSG from_a.events.3 1 2\nhi\n");
    let clients = srv.state.clients();
    assert_eq!(
        clients.iter().filter(|c| c.account_name() == "C").count(),
        1
    );
}
