//! The `leafnodes { ... }` block: listen address, authorization for leaf
//! connections accepted here, remotes to solicit, reconnect delay.
//!
//! Owns the meaning of the leaf keys only (as nats-server names them); it uses
//! `apply`'s typed readers and must not act on the options.

use super::apply::{boolean, duration, host_port, map, port, seconds, string, unknown, wrong_node};
use super::parser::{Entry, Node, Value};
use super::ConfigError;
use crate::options::{LeafOptions, LeafRemote};

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
                        "timeout" => lo.auth_timeout = seconds(x)?,
                        "users" => lo.users = users(x)?,
                        _ => warnings.push(unknown(x)),
                    }
                }
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
            "advertise" | "no_advertise" | "compression" | "tls" => {
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

/// `users = [ { user, password } ]` of the leaf authorization block.
fn users(e: &Entry) -> Result<Vec<(String, String)>> {
    let Value::Array(items) = &e.node.value else {
        return Err(wrong_node(&e.key, &e.node, "an array of users"));
    };
    let mut out = Vec::new();
    for n in items {
        let Value::Map(m) = &n.value else {
            return Err(wrong_node("users", n, "a map { user, password }"));
        };
        let (mut user, mut pass) = (None, None);
        for a in &m.entries {
            match a.key.to_ascii_lowercase().as_str() {
                "user" | "username" => user = Some(string(a)?),
                "password" | "pass" => pass = Some(string(a)?),
                _ => {}
            }
        }
        match (user, pass) {
            (Some(u), Some(p)) => out.push((u, p)),
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
            "account" | "local" => {
                let acc = string(a)?;
                if acc != "$G" {
                    warnings.push(format!(
                        "leafnodes remote account {acc:?} at {}: natrium has one account, $G is used",
                        a.key_pos
                    ));
                }
            }
            "hub" => {
                if boolean(a)? {
                    warnings.push(format!("leafnodes remote hub at {} is ignored", a.key_pos));
                }
            }
            "credentials" | "tls" | "nkey" | "deny_imports" | "deny_exports" | "compression" => {
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

fn invalid_url(n: &Node, u: &str) -> ConfigError {
    ConfigError::Invalid {
        pos: n.pos.clone(),
        key: "url".into(),
        reason: format!("{u:?} is not a leaf node url (nats-leaf://host:port)"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::parse_str;

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
        assert_eq!(lo.users, [("x".to_string(), "y".to_string())]);
        assert_eq!(lo.reconnect, Duration::from_secs(2));
        assert_eq!(lo.remotes.len(), 2);
        assert_eq!(lo.remotes[0].user.as_deref(), Some("u"));
        assert_eq!(lo.remotes[1].urls, ["nats-leaf://h2", "h3:1"]);
        assert_eq!(lo.remotes[1].token.as_deref(), Some("t"));
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
}
