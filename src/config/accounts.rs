//! The `accounts { NAME { users, default_permissions, exports, imports } }`
//! block (or a plain list of names), and the rule that a user or nkey is
//! defined once across all accounts and `authorization`.
//!
//! Owns the meaning of the account keys as nats-server names them, and its
//! error texts (`file:line:col: message`, as `nats-server -t` prints them).
//! Whether imports and exports fit together is checked by `account::check`
//! (it needs every account); this module must not act on the options.

use super::apply::{map, permissions, string, unknown, user, wrong, wrong_node};
use super::lexer::Pos;
use super::parser::{Entry, Map, Node, Value};
use super::ConfigError;
use crate::account::AccountError;
use crate::options::{
    AccountConfig, ExportConfig, ImportConfig, Options, ResponseType, ShareKind,
    DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT,
};

type Result<T> = std::result::Result<T, ConfigError>;

/// An error in nats-server's words, at `pos`: `file:line:col: message`.
fn at(pos: &Pos, message: impl Into<String>) -> ConfigError {
    ConfigError::Account(AccountError::Invalid {
        origin: pos.to_string(),
        message: message.into(),
    })
}

fn not_supported(what: &str, e: &Entry) -> String {
    format!(
        "{what} \"{}\" at {} is not supported by natrium and is ignored",
        e.key, e.key_pos
    )
}

/// Reads the block; users go into `opts.users` tagged with their account.
pub(super) fn accounts(
    e: &Entry,
    opts: &mut Options,
    warnings: &mut Vec<String>,
) -> Result<Vec<AccountConfig>> {
    // Users of accounts this block no longer defines go with them.
    opts.users.retain(|u| u.account.is_none());
    let mut out: Vec<AccountConfig> = Vec::new();
    match &e.node.value {
        Value::Array(names) => {
            for n in names {
                let Value::String(name) = &n.value else {
                    return Err(wrong_node(&e.key, n, "an account name"));
                };
                check_name(name, &n.pos, &out)?;
                out.push(AccountConfig {
                    name: name.clone(),
                    origin: n.pos.to_string(),
                    ..AccountConfig::default()
                });
            }
        }
        // A name given twice in the map is one account, the last definition
        // winning (the parser merges repeated keys, as nats-server).
        Value::Map(m) => {
            for a in &m.entries {
                if a.used_as_variable {
                    continue;
                }
                let Value::Map(body) = &a.node.value else {
                    return Err(at(&a.node.pos, "Expected map entries for accounts"));
                };
                check_name(&a.key, &a.key_pos, &out)?;
                out.push(account(a, body, opts, warnings)?);
            }
        }
        _ => return Err(wrong(e, "a map of accounts or a list of names")),
    }
    Ok(out)
}

/// `system_account` must be `$SYS`, `$G` or an account of the block
/// (nats-server finds out only at start: "error resolving system account").
pub(super) fn check_system_account(opts: &Options, pos: Pos) -> Result<()> {
    let Some(sys) = &opts.system_account else {
        return Ok(());
    };
    let known = sys == DEFAULT_SYSTEM_ACCOUNT
        || sys == GLOBAL_ACCOUNT
        || opts.accounts.iter().any(|a| a.name == *sys);
    if known {
        return Ok(());
    }
    Err(at(
        &pos,
        format!("system account {sys:?} is not defined in accounts"),
    ))
}

fn check_name(name: &str, pos: &Pos, seen: &[AccountConfig]) -> Result<()> {
    if name == GLOBAL_ACCOUNT {
        return Err(at(pos, format!("{name:?} is a Reserved Account")));
    }
    if seen.iter().any(|a| a.name == name) {
        return Err(at(pos, format!("Duplicate Account Entry: {name}")));
    }
    Ok(())
}

fn account(
    e: &Entry,
    m: &Map,
    opts: &mut Options,
    warnings: &mut Vec<String>,
) -> Result<AccountConfig> {
    let mut acc = AccountConfig {
        name: e.key.clone(),
        origin: e.key_pos.to_string(),
        ..AccountConfig::default()
    };
    let mut users = None;
    let mut defaults = None;
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            "users" => users = Some(a),
            "default_permissions" => defaults = Some(permissions(a, warnings)?),
            "exports" => {
                for n in list(a)? {
                    acc.exports.push(export(n, warnings)?);
                }
            }
            "imports" => {
                for n in list(a)? {
                    acc.imports.push(import(n, warnings)?);
                }
            }
            "nkey" | "jetstream" | "mappings" | "maps" | "limits" | "msg_trace" | "trace_dest" => {
                warnings.push(not_supported("account", a))
            }
            _ if a.used_as_variable => {}
            _ => warnings.push(unknown(a)),
        }
    }
    let Some(u) = users else {
        return Ok(acc);
    };
    let items = list(u)?;
    if !items.is_empty() && opts.username.is_some() {
        return Err(at(
            &u.key_pos,
            "Can not have a single user/pass and accounts",
        ));
    }
    if !items.is_empty() && opts.token.is_some() {
        return Err(at(&u.key_pos, "Can not have a token and accounts"));
    }
    for n in items {
        let mut cfg = user(n, defaults.as_ref(), warnings)?;
        cfg.account = Some(acc.name.clone());
        opts.users.push(cfg);
    }
    Ok(acc)
}

fn list(e: &Entry) -> Result<&[Node]> {
    match &e.node.value {
        Value::Array(items) => Ok(items),
        _ => Err(wrong(e, "an array")),
    }
}

fn entry_map<'a>(n: &'a Node, key: &str, expected: &'static str) -> Result<&'a Map> {
    match &n.value {
        Value::Map(m) => Ok(m),
        _ => Err(wrong_node(key, n, expected)),
    }
}

fn kind_of(key: &str) -> ShareKind {
    if key == "stream" {
        ShareKind::Stream
    } else {
        ShareKind::Service
    }
}

/// `{ stream: "subj" | service: "subj", accounts: [..], response_type: .. }`.
fn export(n: &Node, warnings: &mut Vec<String>) -> Result<ExportConfig> {
    let m = entry_map(n, "exports", "a map with a stream or service entry")?;
    let mut shared: Option<(ShareKind, String)> = None;
    let mut accounts = None;
    let mut response: Option<(ResponseType, &Entry)> = None;
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            k @ ("stream" | "service") => {
                let kind = kind_of(k);
                let subject = string(a)?;
                if let Some((seen, _)) = &shared {
                    if *seen != kind {
                        return Err(at(
                            &a.node.pos,
                            format!(
                                "Detected {k} {subject:?} but already saw a {}",
                                seen.as_str()
                            ),
                        ));
                    }
                }
                shared = Some((kind, subject));
            }
            "accounts" => {
                let names = list(a)?
                    .iter()
                    .map(|i| match &i.value {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(wrong_node("accounts", i, "an account name")),
                    })
                    .collect::<Result<Vec<_>>>()?;
                // An empty list is a public export, as with nats-server.
                accounts = (!names.is_empty()).then_some(names);
            }
            "response" | "response_type" => {
                if response.is_some() {
                    return Err(at(&a.node.pos, "Duplicate response type definition"));
                }
                let text = string(a)?;
                let rt = match text.to_ascii_lowercase().as_str() {
                    "single" | "singleton" => ResponseType::Singleton,
                    "stream" => ResponseType::Stream,
                    "chunk" | "chunked" => ResponseType::Chunked,
                    _ => return Err(at(&a.node.pos, format!("Unknown response type: {text:?}"))),
                };
                response = Some((rt, a));
            }
            "response_threshold"
            | "threshold"
            | "response_max_time"
            | "response_time"
            | "latency"
            | "allow_trace"
            | "account_token_position" => warnings.push(not_supported("export", a)),
            _ if a.used_as_variable => {}
            _ => warnings.push(unknown(a)),
        }
    }
    let Some((kind, subject)) = shared else {
        return Err(at(
            &n.pos,
            "An export needs a \"stream\" or \"service\" subject",
        ));
    };
    if let (ShareKind::Stream, Some((_, a))) = (kind, &response) {
        return Err(at(
            &a.node.pos,
            "Detected response directive on non-service",
        ));
    }
    Ok(ExportConfig {
        kind,
        subject,
        accounts,
        response: response.map(|(rt, _)| rt).unwrap_or_default(),
    })
}

/// `{ stream|service: { account, subject }, prefix?, to? }`.
fn import(n: &Node, warnings: &mut Vec<String>) -> Result<ImportConfig> {
    let m = entry_map(n, "imports", "a map with a stream or service entry")?;
    let mut source: Option<(ShareKind, String, String)> = None;
    let (mut to, mut prefix) = (None, None);
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            k @ ("stream" | "service") => {
                let kind = kind_of(k);
                if let Some((seen, _, _)) = &source {
                    return Err(at(
                        &a.node.pos,
                        format!("Detected {k} but already saw a {}", seen.as_str()),
                    ));
                }
                let (mut account, mut subject) = (None, None);
                for x in &map(a)?.entries {
                    match x.key.to_ascii_lowercase().as_str() {
                        "account" => account = Some(string(x)?),
                        "subject" => subject = Some(string(x)?),
                        _ if x.used_as_variable => {}
                        _ => warnings.push(unknown(x)),
                    }
                }
                match (account, subject) {
                    (Some(acc), Some(subj)) if !acc.is_empty() && !subj.is_empty() => {
                        source = Some((kind, acc, subj))
                    }
                    _ => {
                        return Err(at(&a.node.pos, "Expect an account name and a subject"));
                    }
                }
            }
            "to" => to = Some((string(a)?, a)),
            "prefix" => prefix = Some((string(a)?, a)),
            "share" | "allow_trace" => warnings.push(not_supported("import", a)),
            _ if a.used_as_variable => {}
            _ => warnings.push(unknown(a)),
        }
    }
    let Some((kind, account, subject)) = source else {
        return Err(at(
            &n.pos,
            "An import needs a \"stream\" or \"service\" entry",
        ));
    };
    if let (Some(_), Some((_, p))) = (&to, &prefix) {
        if kind == ShareKind::Stream {
            return Err(at(
                &p.key_pos,
                "Stream import can not have a 'prefix' and a 'to' property",
            ));
        }
    }
    let prefix = match (kind, prefix) {
        // nats-server takes `prefix` from stream imports only.
        (ShareKind::Service, Some((_, p))) => {
            warnings.push(format!(
                "\"prefix\" at {} is ignored on a service import (use \"to\")",
                p.key_pos
            ));
            None
        }
        (_, p) => p.map(|(s, _)| s),
    };
    Ok(ImportConfig {
        kind,
        account,
        subject,
        to: to.map(|(t, _)| t),
        prefix,
        origin: n.pos.to_string(),
    })
}

fn users_of(m: &Map) -> impl Iterator<Item = &Node> {
    m.entries
        .iter()
        .filter(|a| a.key.eq_ignore_ascii_case("users"))
        .map(|a| &a.node)
}

/// A user name or nkey defined twice (across `authorization` and every
/// account) is an error at the second definition, as nats-server.
pub(super) fn check_users(top: &Map) -> Result<()> {
    let mut seen: Vec<String> = Vec::new();
    let mut check = |users: &Node| -> Result<()> {
        let Value::Array(items) = &users.value else {
            return Ok(());
        };
        for n in items {
            let Value::Map(m) = &n.value else { continue };
            for a in &m.entries {
                let what = match a.key.to_ascii_lowercase().as_str() {
                    "user" | "username" => "user",
                    "nkey" => "nkey",
                    _ => continue,
                };
                let Value::String(name) = &a.node.value else {
                    continue;
                };
                if seen.contains(name) {
                    return Err(at(
                        &a.node.pos,
                        format!("Duplicate {what} {name:?} detected"),
                    ));
                }
                seen.push(name.clone());
            }
        }
        Ok(())
    };
    for e in &top.entries {
        match (e.key.to_ascii_lowercase().as_str(), &e.node.value) {
            ("authorization", Value::Map(m)) => {
                for u in users_of(m) {
                    check(u)?;
                }
            }
            ("accounts", Value::Map(m)) => {
                for acc in &m.entries {
                    if let Value::Map(am) = &acc.node.value {
                        for u in users_of(am) {
                            check(u)?;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
