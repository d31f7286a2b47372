//! Config → Options mapping: every core key, durations, validation errors with
//! line:col, unknown-key warnings, and a realistic nats-server config file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use natrium::config::{load, parse_str};
use natrium::options::{Options, Permissions, TlsConfig, UserConfig};

fn opts(text: &str) -> (Options, Vec<String>) {
    match parse_str(text, Path::new(".")) {
        Ok(r) => r,
        Err(e) => panic!("config failed: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse_str(text, Path::new(".")) {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_config_keeps_defaults() {
    let (o, w) = opts("# nothing\n");
    assert_eq!(o, Options::default());
    assert!(w.is_empty());
}

#[test]
fn listen_sets_host_and_port() {
    let (o, _) = opts("listen: 127.0.0.1:4333");
    assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 4333));
    let (o, _) = opts("listen: \"[::1]:5000\"");
    assert_eq!((o.host.as_str(), o.port), ("::1", 5000));
    let (o, _) = opts("listen: :6000");
    assert_eq!((o.host.as_str(), o.port), ("0.0.0.0", 6000));
    let (o, _) = opts("listen: 7000");
    assert_eq!(o.port, 7000);
}

#[test]
fn host_net_and_random_port() {
    let (o, _) = opts("net: 10.0.0.1\nport: -1");
    assert_eq!((o.host.as_str(), o.port), ("10.0.0.1", 0));
    let (o, _) = opts("host = localhost");
    assert_eq!(o.host, "localhost");
}

#[test]
fn limits_with_aliases_and_size_units() {
    let (o, _) = opts(
        "max_conn: 100\nmax_payload: 2MB\nmax_pending: 128MB\nmax_control_line: 8KB\nmax_subs: 50\nping_max: 5",
    );
    assert_eq!(o.max_connections, 100);
    assert_eq!(o.max_payload, 2 * 1024 * 1024);
    assert_eq!(o.max_pending, 128 * 1024 * 1024);
    assert_eq!(o.max_control_line, 8 * 1024);
    assert_eq!(o.max_subscriptions, 50);
    assert_eq!(o.ping_max, 5);
    let (o, _) = opts("max_connections: 1K\nmax_subscriptions: 0");
    assert_eq!((o.max_connections, o.max_subscriptions), (1000, 0));
}

#[test]
fn durations_strings_and_bare_seconds() {
    let (o, w) = opts(
        "ping_interval: \"2m\"\nwrite_deadline: \"1.5s\"\nlame_duck_duration: \"1h30m\"\nlame_duck_grace_period: 100ms",
    );
    assert_eq!(o.ping_interval, Duration::from_secs(120));
    assert_eq!(o.write_deadline, Duration::from_millis(1500));
    assert_eq!(o.lame_duck_duration, Duration::from_secs(5400));
    assert_eq!(o.lame_duck_grace_period, Duration::from_millis(100));
    assert!(w.is_empty(), "{w:?}");

    let (o, w) = opts("ping_interval: 30\nwrite_deadline: 5");
    assert_eq!(o.ping_interval, Duration::from_secs(30));
    assert_eq!(o.write_deadline, Duration::from_secs(5));
    assert_eq!(w.len(), 2, "bare seconds are deprecated: {w:?}");
    assert!(
        w[0].starts_with("ping_interval at 1:1 should be a duration string"),
        "{w:?}"
    );
}

#[test]
fn monitoring_ports() {
    let (o, _) = opts("http_port: 8222");
    assert_eq!(o.http_port, Some(8222));
    let (o, _) = opts("monitor_port: 8223");
    assert_eq!(o.http_port, Some(8223));
    let (o, _) = opts("http: 127.0.0.1:8224");
    assert_eq!(
        (o.http_host.as_str(), o.http_port),
        ("127.0.0.1", Some(8224))
    );
}

#[test]
fn logging_and_files() {
    let (o, _) = opts(
        "debug: true\ntrace: yes\nlogtime: off\nlog_file: /tmp/n.log\npid_file: \"/tmp/n.pid\"",
    );
    assert!(o.debug && o.trace && !o.logtime);
    assert_eq!(o.log_file, Some(PathBuf::from("/tmp/n.log")));
    assert_eq!(o.pid_file, Some(PathBuf::from("/tmp/n.pid")));
    let (o, _) = opts("logfile: a.log\npidfile: a.pid");
    assert_eq!(o.log_file, Some(PathBuf::from("a.log")));
    assert_eq!(o.pid_file, Some(PathBuf::from("a.pid")));
}

#[test]
fn authorization_single_user_and_token() {
    let (o, _) = opts("authorization { user: derek, pass: \"s3cr3t\", timeout: 1.5 }");
    assert_eq!(o.username.as_deref(), Some("derek"));
    assert_eq!(o.password.as_deref(), Some("s3cr3t"));
    assert_eq!(o.auth_timeout, Duration::from_millis(1500));
    let (o, _) = opts("authorization { token: \"3secret\"\n timeout: 3 }\nno_auth_user: x");
    assert_eq!(o.token.as_deref(), Some("3secret"));
    assert_eq!(o.auth_timeout, Duration::from_secs(3));
    assert_eq!(o.no_auth_user.as_deref(), Some("x"));
}

#[test]
fn permissions_string_list_and_allow_deny_forms() {
    let (o, _) = opts(
        r#"authorization {
  users = [
    { user: a, password: pa, permissions: { publish: "foo.>", subscribe: ["bar", "baz.*"] } }
    { user: b, password: pb, permissions {
        publish { allow: ["x"], deny: "x.secret" }
        subscribe { deny: [">"] }
        allow_responses: true
    } }
    { nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4 }
  ]
}"#,
    );
    assert_eq!(o.users.len(), 3);
    assert_eq!(
        o.users[0].permissions,
        Some(Permissions {
            publish_allow: Some(vec!["foo.>".into()]),
            subscribe_allow: Some(vec!["bar".into(), "baz.*".into()]),
            ..Permissions::default()
        })
    );
    assert_eq!(
        o.users[1].permissions,
        Some(Permissions {
            publish_allow: Some(vec!["x".into()]),
            publish_deny: Some(vec!["x.secret".into()]),
            subscribe_allow: None,
            subscribe_deny: Some(vec![">".into()]),
            allow_responses: true,
        })
    );
    assert_eq!(o.users[2].user, None);
    assert!(o.users[2].nkey.is_some());
}

#[test]
fn default_permissions_apply_to_users_without_their_own() {
    let (o, _) = opts(
        "authorization { permissions { publish: a }\n users [ {user: u, password: p}, {user: v, password: q, permissions: {subscribe: b}} ] }",
    );
    let pa = o.users[0]
        .permissions
        .as_ref()
        .and_then(|p| p.publish_allow.clone());
    assert_eq!(pa, Some(vec!["a".to_string()]));
    let pb = o.users[1]
        .permissions
        .as_ref()
        .and_then(|p| p.publish_allow.clone());
    assert_eq!(pb, None);
}

#[test]
fn tls_block() {
    let (o, w) = opts(
        "tls { cert_file: \"./server-cert.pem\"\n key_file: './server-key.pem'\n ca_file: ca.pem\n verify: true\n timeout: 2 }",
    );
    assert_eq!(
        o.tls,
        Some(TlsConfig {
            cert_file: Some(PathBuf::from("./server-cert.pem")),
            key_file: Some(PathBuf::from("./server-key.pem")),
            ca_file: Some(PathBuf::from("ca.pem")),
            verify: true,
            timeout: Some(Duration::from_secs(2)),
        })
    );
    assert!(w.is_empty());
}

#[test]
fn unknown_keys_warn_with_position() {
    let (o, w) = opts("port: 4333\nfoo: bar\ncluster { port: 6222 }\ntls { cipher_suites: [] }");
    assert_eq!(o.port, 4333);
    assert_eq!(
        w,
        vec![
            "unknown field \"foo\" at 2:1".to_string(),
            "unknown field \"cluster\" at 3:1".to_string(),
            "unknown field \"cipher_suites\" at 4:7".to_string(),
        ]
    );
}

#[test]
fn keys_are_case_insensitive() {
    let (o, _) = opts("PORT: 5555\nMax_Payload: 1KB");
    assert_eq!((o.port, o.max_payload), (5555, 1024));
}

#[test]
fn error_negative_max_payload() {
    assert_eq!(
        err("port: 1\nmax_payload: -1"),
        "2:14: invalid \"max_payload\": -1 must not be negative"
    );
}

#[test]
fn error_max_payload_over_max_pending() {
    assert_eq!(
        err("max_pending: 1MB\nmax_payload: 2MB"),
        "2:1: invalid \"max_payload\": max_payload (2097152) cannot be higher than max_pending (1048576)"
    );
    // Lowering only max_pending below the default payload is caught too.
    let e = err("max_pending: 1000");
    assert!(e.starts_with("1:1: invalid \"max_payload\""), "{e}");
}

#[test]
fn error_unparsable_duration() {
    assert_eq!(
        err("\nping_interval: \"2 minutes\""),
        "2:16: invalid \"ping_interval\": unknown unit \" minutes\" in duration \"2 minutes\""
    );
    let e = err("write_deadline: \"10\"");
    assert!(
        e.starts_with("1:17: invalid \"write_deadline\": missing unit"),
        "{e}"
    );
}

#[test]
fn error_port_out_of_range() {
    assert_eq!(
        err("port: 70000"),
        "1:7: invalid \"port\": port 70000 out of range (0-65535, or -1)"
    );
    let e = err("listen: 0.0.0.0:99999");
    assert!(e.starts_with("1:9: invalid \"listen\": port 99999"), "{e}");
    let e = err("http: localhost");
    assert!(e.contains("is not host:port"), "{e}");
}

#[test]
fn error_wrong_types() {
    assert_eq!(
        err("max_payload: \"lots\""),
        "1:14: \"max_payload\" expected an integer, found string"
    );
    assert_eq!(
        err("debug: 1"),
        "1:8: \"debug\" expected a boolean (true/false/yes/no/on/off), found integer"
    );
    assert_eq!(
        err("authorization { users: [ 5 ] }"),
        "1:26: \"users\" expected a map { user, password, ... }, found integer"
    );
    assert_eq!(
        err("tls: true"),
        "1:6: \"tls\" expected a map { ... }, found boolean"
    );
}

#[test]
fn error_conflicting_auth() {
    let e = err("authorization { user: a, password: b, users: [{user: c}] }");
    assert!(
        e.contains("cannot have a single user/pass and a users array"),
        "{e}"
    );
    let e = err("authorization { users: [{password: c}] }");
    assert!(e.contains("needs \"user\" or \"nkey\""), "{e}");
}

const FULL: &str = r#"
# A realistic nats-server configuration.
server_name: "natrium-1"
listen: 0.0.0.0:4333
http: 127.0.0.1:8333

max_connections: 10K
max_payload: 4MB
max_pending: 256MB
max_control_line: 8KB
max_subscriptions: 1000
ping_interval: "30s"
ping_max: 3
write_deadline: "2s"
lame_duck_duration: "45s"
lame_duck_grace_period: "5s"

debug: false
trace: false
logtime: true
log_file: "/var/log/nats/natrium.log"
pid_file: "/var/run/natrium.pid"

APP_PASS: "app-secret"

authorization {
  timeout: 2.5
  users = [
    {user: admin, password: $ADMIN_PASS, permissions: {publish: ">", subscribe: ">"}}
    {user: app, password: $APP_PASS, permissions: {
      publish: {allow: ["orders.>"], deny: ["orders.internal.>"]}
      subscribe: ["_INBOX.>", "events.*"]
      allow_responses: true
    }}
  ]
}
no_auth_user: app

tls {
  cert_file: "certs/server.pem"
  key_file: "certs/server-key.pem"
  ca_file: "certs/ca.pem"
  verify: true
  timeout: 3
}

jetstream { store_dir: "/data" }
"#;

#[test]
fn realistic_config_file_loads_into_options() {
    let dir = std::env::temp_dir().join(format!("natrium-cfg-full-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("nats.conf");
    std::fs::write(
        &path,
        FULL.replace("$ADMIN_PASS", "$NATRIUM_CFG_FULL_ADMIN_7731"),
    )
    .expect("write");
    std::env::set_var("NATRIUM_CFG_FULL_ADMIN_7731", "\"admin-secret\"");
    let (o, w) = match load(&path) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let _ = std::fs::remove_dir_all(&dir);

    let mut want = Options {
        host: "0.0.0.0".into(),
        port: 4333,
        server_name: Some("natrium-1".into()),
        max_connections: 10_000,
        max_payload: 4 * 1024 * 1024,
        max_pending: 256 * 1024 * 1024,
        max_control_line: 8192,
        max_subscriptions: 1000,
        ping_interval: Duration::from_secs(30),
        ping_max: 3,
        write_deadline: Duration::from_secs(2),
        lame_duck_duration: Duration::from_secs(45),
        lame_duck_grace_period: Duration::from_secs(5),
        http_host: "127.0.0.1".into(),
        http_port: Some(8333),
        debug: false,
        trace: false,
        logtime: true,
        log_file: Some("/var/log/nats/natrium.log".into()),
        pid_file: Some("/var/run/natrium.pid".into()),
        config_file: Some(path.clone()),
        auth_timeout: Duration::from_millis(2500),
        no_auth_user: Some("app".into()),
        tls: Some(TlsConfig {
            cert_file: Some("certs/server.pem".into()),
            key_file: Some("certs/server-key.pem".into()),
            ca_file: Some("certs/ca.pem".into()),
            verify: true,
            timeout: Some(Duration::from_secs(3)),
        }),
        ..Options::default()
    };
    want.users = vec![
        UserConfig {
            user: Some("admin".into()),
            password: Some("admin-secret".into()),
            nkey: None,
            account: None,
            permissions: Some(Permissions {
                publish_allow: Some(vec![">".into()]),
                subscribe_allow: Some(vec![">".into()]),
                ..Permissions::default()
            }),
        },
        UserConfig {
            user: Some("app".into()),
            password: Some("app-secret".into()),
            nkey: None,
            account: None,
            permissions: Some(Permissions {
                publish_allow: Some(vec!["orders.>".into()]),
                publish_deny: Some(vec!["orders.internal.>".into()]),
                subscribe_allow: Some(vec!["_INBOX.>".into(), "events.*".into()]),
                subscribe_deny: None,
                allow_responses: true,
            }),
        },
    ];
    assert_eq!(o, want);
    let file = path.display().to_string();
    // APP_PASS is used as a variable, so only jetstream is unknown.
    assert_eq!(
        w,
        vec![format!("unknown field \"jetstream\" at {file}:47:1")]
    );
}

#[test]
fn load_missing_file_is_a_clear_error() {
    let e = load(Path::new("/nonexistent/natrium.conf"))
        .err()
        .map(|e| e.to_string());
    let e = e.unwrap_or_default();
    assert!(
        e.starts_with("cannot read config file /nonexistent/natrium.conf"),
        "{e}"
    );
}

#[test]
fn load_error_carries_file_line_col() {
    let dir = std::env::temp_dir().join(format!("natrium-cfg-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("config.conf");
    std::fs::write(&path, "port: 4222\n\nauthorization = {\n  user: a\n").expect("write");
    let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        e,
        format!(
            "{}:5:1: expected '}}' to close map opened at 3:17",
            path.display()
        )
    );
}
