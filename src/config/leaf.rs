//! The `leafnodes { ... }` block: listen address, authorization for leaf
//! connections accepted here (user/password, token, nkey, users), TLS, remotes
//! to solicit (with their credentials, nkey or creds file, TLS, and
//! `deny_imports`/`deny_exports`), reconnect delay.
//!
//! Owns the meaning of the leaf keys only (as nats-server names them); it uses
//! `apply`'s typed readers and must not act on the options. Files named here
//! (certificates, creds) are read once to report a bad one at its key's
//! `file:line:col`; the server reads them again when it uses them.

use std::path::PathBuf;

use super::apply::{
    boolean, duration, host_port, invalid, map, port, seconds, string, subjects, unknown, wrong,
    wrong_node,
};
use super::parser::{Entry, Node, Value};
use super::ConfigError;
use crate::leaf::creds;
use crate::options::{LeafOptions, LeafRemote, LeafTls, LeafUser, TlsConfig};

type Result<T> = std::result::Result<T, ConfigError>;

/// Reads `leafnodes { host, port | listen, authorization, remotes, reconnect }`.
pub(super) fn leafnodes(e: &Entry, warnings: &mut Vec<String>) -> Result<LeafOptions> {
    let m = map(e)?;
    let mut lo = LeafOptions::default();
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            "host" | "net" => lo.host = string(a)?,
            "port" => lo.port = Some(port(a)?),
            "listen" => {
                let (host, p) = host_port(a)?;
                if let Some(h) = host {
                    lo.host = h;
                }
                lo.port = Some(p);
            }
            "authorization" => {
                for x in &map(a)?.entries {
                    match x.key.to_ascii_lowercase().as_str() {
                        "user" | "username" => lo.username = Some(string(x)?),
                        "password" | "pass" => lo.password = Some(string(x)?),
                        "token" => lo.token = Some(string(x)?),
                        "nkey" => lo.nkey = Some(public_user_key(x)?),
                        "timeout" => lo.auth_timeout = seconds(x)?,
                        "users" => lo.users = users(x, warnings)?,
                        "account" => lo.account = Some(string(x)?),
                        _ => warnings.push(unknown(x)),
                    }
                }
                if lo.nkey.is_some() && !lo.users.is_empty() {
                    return Err(invalid(a, "can not have a single nkey and a users array"));
                }
            }
            "tls" => {
                let t = leaf_tls(a, warnings)?;
                crate::tls::server_config(&t.config).map_err(|e| invalid(a, e.to_string()))?;
                lo.tls = Some(t);
            }
            "remotes" => {
                let Value::Array(items) = &a.node.value else {
                    return Err(wrong_node(&a.key, &a.node, "an array of remotes"));
                };
                for n in items {
                    lo.remotes.push(remote(n, warnings)?);
                }
            }
            "reconnect" | "reconnect_delay" => lo.reconnect = duration(a, warnings)?,
            "advertise" | "no_advertise" | "compression" => {
                warnings.push(format!(
                    "leafnodes \"{}\" at {} is not supported by natrium and is ignored",
                    a.key, a.key_pos
                ));
            }
            _ if a.used_as_variable => {}
            _ => warnings.push(unknown(a)),
        }
    }
    Ok(lo)
}

/// `users = [ { user, password, account } ]` of the leaf authorization block.
/// As nats-server (`parseLeafUsers`), an entry takes no `permissions`: that
/// is an error, not a warning, since ignoring it would let the leaf do what
/// the operator meant to forbid (a client user's permissions do apply to a
/// leaf that signs in without a `leafnodes { authorization }` block).
fn users(e: &Entry, warnings: &mut Vec<String>) -> Result<Vec<LeafUser>> {
    let Value::Array(items) = &e.node.value else {
        return Err(wrong_node(&e.key, &e.node, "an array of users"));
    };
    let mut out = Vec::new();
    for n in items {
        let Value::Map(m) = &n.value else {
            return Err(wrong_node("users", n, "a map { user, password }"));
        };
        let (mut user, mut pass, mut account) = (None, None, None);
        for a in &m.entries {
            match a.key.to_ascii_lowercase().as_str() {
                "user" | "username" => user = Some(string(a)?),
                "password" | "pass" => pass = Some(string(a)?),
                "account" => account = Some(string(a)?),
                "permissions" => {
                    return Err(invalid(
                        a,
                        "unknown field \"permissions\" (leafnode users take none)",
                    ))
                }
                _ if a.used_as_variable => {}
                _ => warnings.push(unknown(a)),
            }
        }
        match (user, pass) {
            (Some(user), Some(password)) => out.push(LeafUser {
                user,
                password,
                account,
            }),
            _ => return Err(wrong_node("users", n, "a map with user and password")),
        }
    }
    Ok(out)
}

fn remote(n: &Node, warnings: &mut Vec<String>) -> Result<LeafRemote> {
    let Value::Map(m) = &n.value else {
        return Err(wrong_node("remotes", n, "a map { url, ... }"));
    };
    let mut r = LeafRemote::default();
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            "url" => r.urls.push(string(a)?),
            "urls" => match &a.node.value {
                Value::Array(items) => {
                    for u in items {
                        match &u.value {
                            Value::String(s) => r.urls.push(s.clone()),
                            _ => return Err(wrong_node("urls", u, "a string")),
                        }
                    }
                }
                Value::String(s) => r.urls.push(s.clone()),
                _ => return Err(wrong_node(&a.key, &a.node, "an array of urls")),
            },
            "user" | "username" => r.user = Some(string(a)?),
            "password" | "pass" => r.password = Some(string(a)?),
            "token" => r.token = Some(string(a)?),
            "account" | "local" => r.account = Some(string(a)?).filter(|a| !a.is_empty()),
            "hub" => {
                if boolean(a)? {
                    warnings.push(format!("leafnodes remote hub at {} is ignored", a.key_pos));
                }
            }
            "credentials" | "creds" => {
                if r.nkey.is_some() {
                    return Err(invalid(a, "can not have both creds and nkey defined"));
                }
                let path = creds::expand_home(&string(a)?);
                creds::load(&path).map_err(|e| invalid(a, e.to_string()))?;
                r.credentials = Some(path);
            }
            "nkey" | "seed" => {
                if r.credentials.is_some() {
                    return Err(invalid(a, "can not have both creds and nkey defined"));
                }
                let seed = string(a)?;
                // The error never repeats the seed: config errors get logged.
                creds::user_seed(&seed).map_err(|e| invalid(a, e.to_string()))?;
                r.nkey = Some(seed);
            }
            "tls" => {
                let t = leaf_tls(a, warnings)?;
                crate::tls::client_config(&t.config, t.insecure)
                    .map_err(|e| invalid(a, e.to_string()))?;
                r.tls = Some(t);
            }
            "deny_imports" | "deny_import" => r.deny_imports = deny_subjects(a)?,
            "deny_exports" | "deny_export" => r.deny_exports = deny_subjects(a)?,
            "compression" => {
                warnings.push(format!(
                    "leafnodes remote \"{}\" at {} is not supported by natrium and is ignored",
                    a.key, a.key_pos
                ));
            }
            _ => warnings.push(unknown(a)),
        }
    }
    if r.urls.is_empty() {
        return Err(ConfigError::Invalid {
            pos: n.pos.clone(),
            key: "remotes".into(),
            reason: "a remote needs url or urls".into(),
        });
    }
    for u in &r.urls {
        if crate::options::parse_leaf_url(u).is_none() {
            return Err(invalid_url(n, u));
        }
    }
    Ok(r)
}

/// `deny_imports`/`deny_exports`: a subject or a list of them (no queue
/// groups), each checked as nats-server's `checkPermSubjectArray`.
fn deny_subjects(e: &Entry) -> Result<Vec<String>> {
    let list = subjects(&e.key, &e.node)?;
    for s in &list {
        if crate::subject::validate_subscribe(s.as_bytes()).is_err() {
            return Err(invalid(e, format!("subject {s:?} is not a valid subject")));
        }
    }
    Ok(list)
}

fn invalid_url(n: &Node, u: &str) -> ConfigError {
    ConfigError::Invalid {
        pos: n.pos.clone(),
        key: "url".into(),
        reason: format!("{u:?} is not a leaf node url (nats-leaf://host:port)"),
    }
}

/// `authorization { nkey }`: a public user key, as nats-server checks.
fn public_user_key(e: &Entry) -> Result<String> {
    let key = string(e)?;
    match nkeys::KeyPair::from_public_key(&key) {
        Ok(_) if key.starts_with('U') => Ok(key),
        _ => Err(invalid(
            e,
            "not a valid public nkey for leafnode authorization (U...)",
        )),
    }
}

/// A leaf `tls { ... }` block (hub side or a remote's): the client-port keys
/// plus `insecure` and `handshake_first`.
fn leaf_tls(e: &Entry, warnings: &mut Vec<String>) -> Result<LeafTls> {
    let m = map(e)?;
    let mut t = LeafTls {
        config: TlsConfig::default(),
        insecure: false,
        handshake_first: false,
    };
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            "cert_file" => t.config.cert_file = Some(PathBuf::from(string(a)?)),
            "key_file" => t.config.key_file = Some(PathBuf::from(string(a)?)),
            "ca_file" => t.config.ca_file = Some(PathBuf::from(string(a)?)),
            "verify" => t.config.verify = boolean(a)?,
            "timeout" => t.config.timeout = Some(seconds(a)?),
            "insecure" => t.insecure = boolean(a)?,
            "handshake_first" | "first" | "immediate" => {
                t.handshake_first = handshake_first(a, warnings)?;
            }
            "cipher_suites"
            | "curve_preferences"
            | "pinned_certs"
            | "verify_and_map"
            | "verify_cert_and_check_known_urls"
            | "min_version"
            | "ocsp_peer"
            | "cert_store"
            | "cert_match"
            | "cert_match_by" => warnings.push(format!(
                "leafnodes tls \"{}\" at {} is not supported by natrium and is ignored",
                a.key, a.key_pos
            )),
            _ if a.used_as_variable => {}
            _ => warnings.push(unknown(a)),
        }
    }
    Ok(t)
}

/// `handshake_first`: a boolean, `true`/`false`/`on`/`off`, or nats-server's
/// fallback forms (`auto`, a delay) which natrium takes as plain `true`.
fn handshake_first(e: &Entry, warnings: &mut Vec<String>) -> Result<bool> {
    let text = match &e.node.value {
        Value::Bool(b) => return Ok(*b),
        Value::String(s) => s.to_ascii_lowercase(),
        _ => return Err(wrong(e, "a boolean or a string")),
    };
    match text.as_str() {
        "true" | "on" => Ok(true),
        "false" | "off" => Ok(false),
        other if other.starts_with("auto") || super::duration::parse_duration(other).is_ok() => {
            warnings.push(format!(
                "leafnodes tls \"{}\" at {}: the fallback to INFO first is not supported by natrium; TLS first only",
                e.key, e.key_pos
            ));
            Ok(true)
        }
        _ => Err(invalid(
            e,
            format!("{text:?} is not true, false, auto or a duration"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::parse_str;
    use crate::options::LeafUser;

    #[test]
    fn leafnodes_block_maps_onto_options() {
        let text = r#"
            leafnodes {
                listen: "127.0.0.1:7500"
                authorization { user: a, password: b, timeout: 3, users = [ { user: x, password: y } ] }
                reconnect: "2s"
                remotes = [
                    { url: "nats-leaf://h1:7422", user: u, password: p }
                    { urls: ["nats-leaf://h2", "h3:1"], token: t }
                ]
            }
        "#;
        let (o, _) = parse_str(text, Path::new(".")).expect("parses");
        let lo = o.leafnodes.expect("leafnodes");
        assert_eq!((lo.host.as_str(), lo.port), ("127.0.0.1", Some(7500)));
        assert_eq!(lo.username.as_deref(), Some("a"));
        assert_eq!(lo.auth_timeout, Duration::from_secs(3));
        assert_eq!(
            lo.users,
            [LeafUser {
                user: "x".into(),
                password: "y".into(),
                account: None
            }]
        );
        assert_eq!(lo.reconnect, Duration::from_secs(2));
        assert_eq!(lo.remotes.len(), 2);
        assert_eq!(lo.remotes[0].user.as_deref(), Some("u"));
        assert_eq!(lo.remotes[1].urls, ["nats-leaf://h2", "h3:1"]);
        assert_eq!(lo.remotes[1].token.as_deref(), Some("t"));
    }

    #[test]
    fn remote_deny_lists() {
        let text = r#"leafnodes { remotes = [
            { url: "nats-leaf://h:1", deny_imports: ["a.>", "b"], deny_exports: "c.*" }
            { url: "nats-leaf://h:2", deny_import: "x", deny_export: ["y", "z"] }
        ] }"#;
        let (o, warnings) = parse_str(text, Path::new(".")).expect("parses");
        assert!(warnings.is_empty(), "{warnings:?}");
        let lo = o.leafnodes.expect("leafnodes");
        assert_eq!(lo.remotes[0].deny_imports, ["a.>", "b"]);
        assert_eq!(lo.remotes[0].deny_exports, ["c.*"]);
        assert_eq!(lo.remotes[1].deny_imports, ["x"]);
        assert_eq!(lo.remotes[1].deny_exports, ["y", "z"]);
        for bad in [
            r#"deny_imports: ["a..b"]"#,
            r#"deny_exports: "foo bar""#,
            "deny_imports: 3",
            "deny_exports: [1]",
        ] {
            let text = format!(r#"leafnodes {{ remotes = [ {{ url: "h:1", {bad} }} ] }}"#);
            assert!(parse_str(&text, Path::new(".")).is_err(), "{bad}");
        }
        let err = parse_str(
            r#"leafnodes { remotes = [ { url: "h:1", deny_imports: "a..b" } ] }"#,
            Path::new("."),
        )
        .expect_err("invalid")
        .to_string();
        assert!(
            err.contains(r#"subject "a..b" is not a valid subject"#),
            "{err}"
        );
    }

    #[test]
    fn leaf_users_take_no_permissions() {
        let text = r#"leafnodes { authorization { users = [
            { user: a, password: b, permissions: { publish: "x" } }
        ] } }"#;
        let err = parse_str(text, Path::new("."))
            .expect_err("refused as nats-server does")
            .to_string();
        assert!(err.contains(r#"unknown field "permissions""#), "{err}");
        let text =
            "leafnodes { authorization { users = [ { user: a, password: b, color: red } ] } }";
        let (_, warnings) = parse_str(text, Path::new(".")).expect("an unknown key warns");
        assert!(warnings.iter().any(|w| w.contains("color")), "{warnings:?}");
    }

    #[test]
    fn a_remote_needs_a_usable_url() {
        let bad = [
            "leafnodes { remotes = [ { user: x } ] }",
            "leafnodes { remotes = [ { url: \"ws://h:1\" } ] }",
            "leafnodes { remotes = [ { url: \"nats-leaf://h:notaport\" } ] }",
        ];
        for text in bad {
            assert!(parse_str(text, Path::new(".")).is_err(), "{text}");
        }
    }

    #[test]
    fn leaf_urls_parse_as_nats_server() {
        let u = crate::options::parse_leaf_url("nats-leaf://me:pw@10.0.0.1:7000").expect("url");
        assert_eq!(
            (
                u.host.as_str(),
                u.port,
                u.user.as_deref(),
                u.password.as_deref()
            ),
            ("10.0.0.1", 7000, Some("me"), Some("pw"))
        );
        let u = crate::options::parse_leaf_url("nats-leaf://[::1]").expect("v6");
        assert_eq!((u.host.as_str(), u.port), ("::1", 7422));
    }

    #[test]
    fn remote_credentials_nkey_and_tls() {
        let seed = nkeys::KeyPair::new_user().seed().expect("seed");
        let dir = std::env::temp_dir().join(format!("natrium-leafcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let creds = dir.join("u.creds");
        std::fs::write(
            &creds,
            format!(
                "-----BEGIN NATS USER JWT-----\na.b.c\n------END NATS USER JWT------\n\n\
                 -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
            ),
        )
        .expect("write");
        let text = format!(
            r#"leafnodes {{ remotes = [
                {{ url: "tls://h:1", nkey: "{seed}", tls {{ insecure: true, handshake_first: true, timeout: 3 }} }}
                {{ url: "nats-leaf://h:2", credentials: "{}" }}
            ] }}"#,
            creds.display()
        );
        let (o, _) = parse_str(&text, Path::new(".")).expect("parses");
        let lo = o.leafnodes.expect("leafnodes");
        assert_eq!(lo.remotes[0].nkey.as_deref(), Some(seed.as_str()));
        let t = lo.remotes[0].tls.as_ref().expect("tls");
        assert!(t.insecure && t.handshake_first);
        assert_eq!(t.config.timeout, Some(Duration::from_secs(3)));
        assert_eq!(lo.remotes[1].credentials.as_deref(), Some(creds.as_path()));

        let both = format!(
            r#"leafnodes {{ remotes = [ {{ url: "h:1", nkey: "{seed}", credentials: "{}" }} ] }}"#,
            creds.display()
        );
        let err = parse_str(&both, Path::new("."))
            .expect_err("both")
            .to_string();
        assert!(err.contains("both creds and nkey"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_leaf_secrets_are_positioned_errors() {
        let bad_seed = "leafnodes {\n remotes = [ { url: \"h:1\", nkey: \"SUNOTASEED\" } ]\n}";
        let err = parse_str(bad_seed, Path::new("."))
            .expect_err("seed")
            .to_string();
        assert!(
            err.contains("2:") && err.contains("not a valid user seed"),
            "{err}"
        );
        assert!(!err.contains("SUNOTASEED"), "the seed is not echoed: {err}");
        let missing =
            "leafnodes { remotes = [ { url: \"h:1\", credentials: \"/nonexistent/x.creds\" } ] }";
        let err = parse_str(missing, Path::new("."))
            .expect_err("creds")
            .to_string();
        assert!(
            err.contains("1:") && err.contains("/nonexistent/x.creds"),
            "{err}"
        );
        let no_ca = "leafnodes { remotes = [ { url: \"h:1\", tls { ca_file: \"/nonexistent/ca.pem\" } } ] }";
        let err = parse_str(no_ca, Path::new("."))
            .expect_err("ca")
            .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let hub = "leafnodes { port: 7422, tls { cert_file: \"/nonexistent/c.pem\", key_file: \"/nonexistent/k.pem\" } }";
        let err = parse_str(hub, Path::new("."))
            .expect_err("hub tls")
            .to_string();
        assert!(err.contains("/nonexistent/c.pem"), "{err}");
        let key = nkeys::KeyPair::new_user().public_key();
        let ok = format!("leafnodes {{ authorization {{ nkey: \"{key}\" }} }}");
        let (o, _) = parse_str(&ok, Path::new(".")).expect("nkey auth");
        assert_eq!(o.leafnodes.expect("lo").nkey.as_deref(), Some(key.as_str()));
        let not_user = "leafnodes { authorization { nkey: \"SUXYZ\" } }";
        assert!(parse_str(not_user, Path::new(".")).is_err());
        let with_users = format!(
            "leafnodes {{ authorization {{ nkey: \"{key}\", users = [ {{ user: a, password: b }} ] }} }}"
        );
        assert!(parse_str(&with_users, Path::new(".")).is_err());
    }
}
