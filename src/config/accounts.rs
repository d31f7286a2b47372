//! The `accounts { NAME { users, default_permissions, exports, imports } }`
//! block (or a plain list of names), and the rule that a user or nkey is
//! defined once across all accounts and `authorization`.
//!
//! Owns the meaning of the account keys as nats-server names them. Whether
//! imports and exports fit together is checked by `account::check` (it needs
//! every account); this module must not act on the options.

use super::apply::{map, permissions, string, unknown, user, wrong, wrong_node};
use super::lexer::Pos;
use super::parser::{Entry, Map, Node, Value};
use super::ConfigError;
use crate::options::{
    AccountConfig, ExportConfig, ImportConfig, Options, ResponseType, ShareKind, GLOBAL_ACCOUNT,
};

type Result<T> = std::result::Result<T, ConfigError>;

fn invalid_at(pos: &Pos, key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        pos: pos.clone(),
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Reads the block; users go into `opts.users` tagged with their account.
pub(super) fn accounts(
    e: &Entry,
    opts: &mut Options,
    warnings: &mut Vec<String>,
) -> Result<Vec<AccountConfig>> {
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
        Value::Map(m) => {
            // A removed or renamed account takes its users with it.
            opts.users.retain(|u| u.account.is_none());
            for a in &m.entries {
                if a.used_as_variable {
                    continue;
                }
                check_name(&a.key, &a.key_pos, &out)?;
                out.push(account(a, opts, warnings)?);
            }
        }
        _ => return Err(wrong(e, "a map of accounts or a list of names")),
    }
    Ok(out)
}

fn check_name(name: &str, pos: &Pos, seen: &[AccountConfig]) -> Result<()> {
    if name == GLOBAL_ACCOUNT {
        return Err(invalid_at(
            pos,
            "accounts",
            format!("{name:?} is a Reserved Account"),
        ));
    }
    if seen.iter().any(|a| a.name == name) {
        return Err(invalid_at(
            pos,
            "accounts",
            format!("Duplicate Account Entry: {name}"),
        ));
    }
    Ok(())
}

fn account(e: &Entry, opts: &mut Options, warnings: &mut Vec<String>) -> Result<AccountConfig> {
    let Value::Map(m) = &e.node.value else {
        return Err(invalid_at(
            &e.node.pos,
            &e.key,
            "Expected map entries for accounts",
        ));
    };
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
            "nkey" | "jetstream" | "mappings" | "maps" | "limits" => warnings.push(format!(
                "account \"{}\" at {} is not supported by natrium and is ignored",
                a.key, a.key_pos
            )),
            _ if a.used_as_variable => {}
            _ => warnings.push(unknown(a)),
        }
    }
    if let Some(u) = users {
        if opts.username.is_some() {
            return Err(invalid_at(
                &u.key_pos,
                "users",
                "Can not have a single user/pass and accounts",
            ));
        }
        if opts.token.is_some() {
            return Err(invalid_at(
                &u.key_pos,
                "users",
                "Can not have a token and accounts",
            ));
        }
        for n in list(u)? {
            let mut cfg = user(n, defaults.as_ref(), warnings)?;
            cfg.account = Some(acc.name.clone());
            opts.users.push(cfg);
        }
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

/// `{ stream: "subj" | service: "subj", accounts: [..], response_type: .. }`.
fn export(n: &Node, warnings: &mut Vec<String>) -> Result<ExportConfig> {
    let m = entry_map(n, "exports", "a map with a stream or service entry")?;
    let mut kind = None;
    let mut subject = None;
    let mut accounts = None;
    let mut response = None;
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            k @ ("stream" | "service") => {
                let k = if k == "stream" {
                    ShareKind::Stream
                } else {
                    ShareKind::Service
                };
                if kind.is_some_and(|seen| seen != k) {
                    return Err(invalid_at(
                        &a.key_pos,
                        &a.key,
                        "Detected stream and service in one export",
                    ));
                }
                kind = Some(k);
                subject = Some(string(a)?);
            }
            "accounts" => {
                let names = list(a)?
                    .iter()
                    .map(|i| match &i.value {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(wrong_node("accounts", i, "an account name")),
                    })
                    .collect::<Result<Vec<_>>>()?;
                accounts = Some(names);
            }
            "response" | "response_type" => {
                let text = string(a)?;
                response = Some(match text.to_ascii_lowercase().as_str() {
                    "single" | "singleton" => ResponseType::Singleton,
                    "stream" => ResponseType::Stream,
                    "chunk" | "chunked" => ResponseType::Chunked,
                    _ => {
                        return Err(invalid_at(
                            &a.node.pos,
                            &a.key,
                            format!("Unknown response type: {text:?}"),
                        ))
                    }
                });
                response_pos_check(&a.key_pos, kind)?;
            }
            "response_threshold" | "threshold" | "latency" | "allow_trace" => {
                warnings.push(format!(
                    "export \"{}\" at {} is not supported by natrium and is ignored",
                    a.key, a.key_pos
                ))
            }
            _ => warnings.push(unknown(a)),
        }
    }
    let (Some(kind), Some(subject)) = (kind, subject) else {
        return Err(invalid_at(
            &n.pos,
            "exports",
            "an export needs a \"stream\" or \"service\" subject",
        ));
    };
    if response.is_some() {
        response_pos_check(&n.pos, Some(kind))?;
    }
    Ok(ExportConfig {
        kind,
        subject,
        accounts,
        response: response.unwrap_or_default(),
    })
}

fn response_pos_check(pos: &Pos, kind: Option<ShareKind>) -> Result<()> {
    if kind == Some(ShareKind::Stream) {
        return Err(invalid_at(
            pos,
            "response_type",
            "Detected response directive on non-service",
        ));
    }
    Ok(())
}

/// `{ stream|service: { account, subject }, prefix?, to? }`.
fn import(n: &Node, warnings: &mut Vec<String>) -> Result<ImportConfig> {
    let m = entry_map(n, "imports", "a map with a stream or service entry")?;
    let mut source: Option<(ShareKind, String, String)> = None;
    let (mut to, mut prefix) = (None, None);
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            k @ ("stream" | "service") => {
                let kind = if k == "stream" {
                    ShareKind::Stream
                } else {
                    ShareKind::Service
                };
                if source.is_some() {
                    return Err(invalid_at(
                        &a.key_pos,
                        &a.key,
                        "Detected stream and service in one import",
                    ));
                }
                let (mut account, mut subject) = (None, None);
                for x in &map(a)?.entries {
                    match x.key.to_ascii_lowercase().as_str() {
                        "account" => account = Some(string(x)?),
                        "subject" => subject = Some(string(x)?),
                        _ => warnings.push(unknown(x)),
                    }
                }
                match (account, subject) {
                    (Some(acc), Some(subj)) if !acc.is_empty() && !subj.is_empty() => {
                        source = Some((kind, acc, subj))
                    }
                    _ => {
                        return Err(invalid_at(
                            &a.node.pos,
                            &a.key,
                            "Expect an account name and a subject",
                        ))
                    }
                }
            }
            "to" => to = Some(string(a)?),
            "prefix" => prefix = Some(string(a)?),
            "share" | "allow_trace" => warnings.push(format!(
                "import \"{}\" at {} is not supported by natrium and is ignored",
                a.key, a.key_pos
            )),
            _ => warnings.push(unknown(a)),
        }
    }
    let Some((kind, account, subject)) = source else {
        return Err(invalid_at(
            &n.pos,
            "imports",
            "an import needs a \"stream\" or \"service\" entry",
        ));
    };
    if to.is_some() && prefix.is_some() {
        return Err(invalid_at(
            &n.pos,
            "imports",
            "Stream import can not have a 'prefix' and a 'to' property",
        ));
    }
    if kind == ShareKind::Service && prefix.is_some() {
        return Err(invalid_at(
            &n.pos,
            "prefix",
            "a service import has no prefix (use \"to\")",
        ));
    }
    Ok(ImportConfig {
        kind,
        account,
        subject,
        to,
        prefix,
        origin: n.pos.to_string(),
    })
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
                    return Err(invalid_at(
                        &a.node.pos,
                        "users",
                        format!("Duplicate {what} {name:?} detected"),
                    ));
                }
                seen.push(name.clone());
            }
        }
        Ok(())
    };
    for e in &top.entries {
        match e.key.to_ascii_lowercase().as_str() {
            "authorization" => {
                if let Value::Map(m) = &e.node.value {
                    for a in m
                        .entries
                        .iter()
                        .filter(|a| a.key.eq_ignore_ascii_case("users"))
                    {
                        check(&a.node)?;
                    }
                }
            }
            "accounts" => {
                if let Value::Map(m) = &e.node.value {
                    for acc in &m.entries {
                        if let Value::Map(am) = &acc.node.value {
                            for a in am
                                .entries
                                .iter()
                                .filter(|a| a.key.eq_ignore_ascii_case("users"))
                            {
                                check(&a.node)?;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
