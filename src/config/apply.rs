//! Maps a parsed config tree onto `Options`, key by key, with validation.
//!
//! Owns the meaning of every core key in PROTOCOL.md ("Config keys (core)"),
//! their aliases, types and range checks. Unknown keys become warnings, never
//! errors. It does not parse text (that is `parser`) and does not act on the
//! options (that is the server). Errors use `ConfigError` from `config`.

use std::path::PathBuf;
use std::time::Duration;

use super::duration::parse_duration;
use super::lexer::Pos;
use super::parser::{Entry, Map, Node, Value};
use super::ConfigError;
use crate::options::{Options, Permissions, TlsConfig, UserConfig};

type Result<T> = std::result::Result<T, ConfigError>;

/// Applies a config tree (a top-level map) onto `opts`, overwriting only the
/// keys present, so callers can layer file over defaults and flags over file.
/// Returns warnings for unknown keys and deprecated forms.
pub fn apply(value: &Value, opts: &mut Options) -> Result<Vec<String>> {
    let Value::Map(map) = value else {
        return Err(ConfigError::WrongType {
            pos: Pos {
                file: None,
                line: 1,
                col: 1,
            },
            key: "<top level>".into(),
            expected: "map",
            found: value.type_name(),
        });
    };
    let mut warnings = Vec::new();
    let mut payload_pos = None;
    let mut pending_pos = None;
    let mut no_auth_pos = None;
    let mut system_pos = None;
    for e in &map.entries {
        let key = e.key.to_ascii_lowercase();
        match key.as_str() {
            "host" | "net" => opts.host = string(e)?,
            "port" => opts.port = port(e)?,
            "listen" => {
                let (host, port) = host_port(e)?;
                if let Some(h) = host {
                    opts.host = h;
                }
                opts.port = port;
            }
            "server_name" => {
                let name = string(e)?;
                if name.contains(char::is_whitespace) {
                    return Err(invalid(e, "server name cannot contain spaces"));
                }
                opts.server_name = Some(name);
            }
            "max_connections" | "max_conn" => opts.max_connections = size(e)?,
            "max_payload" => {
                opts.max_payload = size(e)?;
                if opts.max_payload > i32::MAX as usize {
                    return Err(invalid(e, "value is too big (at most 2147483647)"));
                }
                payload_pos = Some(e.key_pos.clone());
            }
            "max_pending" => {
                opts.max_pending = size(e)?;
                pending_pos = Some(e.key_pos.clone());
            }
            "max_control_line" => {
                opts.max_control_line = size(e)?;
                if opts.max_control_line == 0 || opts.max_control_line > i32::MAX as usize {
                    return Err(invalid(e, "must be between 1 and 2147483647"));
                }
            }
            "max_subscriptions" | "max_subs" => opts.max_subscriptions = size(e)?,
            "ping_interval" => opts.ping_interval = duration(e, &mut warnings)?,
            "ping_max" => {
                opts.ping_max =
                    u32::try_from(size(e)?).map_err(|_| invalid(e, "value is too big"))?;
            }
            "write_deadline" => opts.write_deadline = duration(e, &mut warnings)?,
            "lame_duck_duration" => opts.lame_duck_duration = duration(e, &mut warnings)?,
            "lame_duck_grace_period" => opts.lame_duck_grace_period = duration(e, &mut warnings)?,
            "http_port" | "monitor_port" => opts.http_port = Some(port(e)?),
            "http" | "monitor" => {
                let (host, port) = host_port(e)?;
                if let Some(h) = host {
                    opts.http_host = h;
                }
                opts.http_port = Some(port);
            }
            "debug" => opts.debug = boolean(e)?,
            "trace" => opts.trace = boolean(e)?,
            "logtime" => opts.logtime = boolean(e)?,
            "log_file" | "logfile" => opts.log_file = Some(PathBuf::from(string(e)?)),
            "pid_file" | "pidfile" => opts.pid_file = Some(PathBuf::from(string(e)?)),
            "authorization" => authorization(e, opts, &mut warnings)?,
            "no_auth_user" => {
                opts.no_auth_user = Some(string(e)?);
                no_auth_pos = Some(e.node.pos.clone());
            }
            "tls" => opts.tls = Some(tls(e, &mut warnings)?),
            "accounts" => opts.accounts = super::accounts::accounts(e, opts, &mut warnings)?,
            "system_account" | "system" => {
                opts.system_account = Some(string(e)?);
                system_pos = Some(e.node.pos.clone());
            }
            "leafnodes" | "leaf" => {
                opts.leafnodes = Some(super::leaf::leafnodes(e, &mut warnings)?)
            }
            _ if e.used_as_variable => {}
            _ => warnings.push(unknown(e)),
        }
    }
    super::accounts::check_users(map)?;
    if let Some(pos) = system_pos {
        super::accounts::check_system_account(opts, pos)?;
    }
    crate::account::check(opts)?;
    if let Some(pos) = no_auth_pos {
        check_no_auth_user(opts, pos)?;
    }
    if opts.max_payload > opts.max_pending {
        let pos = payload_pos.or(pending_pos);
        if let Some(pos) = pos {
            return Err(ConfigError::Invalid {
                pos,
                key: "max_payload".into(),
                reason: format!(
                    "max_payload ({}) cannot be higher than max_pending ({})",
                    opts.max_payload, opts.max_pending
                ),
            });
        }
    }
    Ok(warnings)
}

/// `no_auth_user` must name a user or nkey of `authorization` or of any
/// account, as nats-server. With no users at all the parse lets it through
/// (the config tests read it alone); the authenticator refuses it at start.
fn check_no_auth_user(opts: &Options, pos: Pos) -> Result<()> {
    let Some(name) = &opts.no_auth_user else {
        return Ok(());
    };
    let known = opts
        .users
        .iter()
        .any(|u| u.user.as_ref() == Some(name) || u.nkey.as_ref() == Some(name));
    if opts.users.is_empty() || known {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        pos,
        key: "no_auth_user".into(),
        reason: format!(
            "{name:?} not present as user or nkey in authorization block or account configuration"
        ),
    })
}

pub(super) fn unknown(e: &Entry) -> String {
    format!("unknown field \"{}\" at {}", e.key, e.key_pos)
}

pub(super) fn wrong(e: &Entry, expected: &'static str) -> ConfigError {
    wrong_node(&e.key, &e.node, expected)
}

pub(super) fn wrong_node(key: &str, n: &Node, expected: &'static str) -> ConfigError {
    ConfigError::WrongType {
        pos: n.pos.clone(),
        key: key.to_string(),
        expected,
        found: n.value.type_name(),
    }
}

pub(super) fn invalid(e: &Entry, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        pos: e.node.pos.clone(),
        key: e.key.clone(),
        reason: reason.into(),
    }
}

pub(super) fn string(e: &Entry) -> Result<String> {
    match &e.node.value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(wrong(e, "a string")),
    }
}

pub(super) fn boolean(e: &Entry) -> Result<bool> {
    match &e.node.value {
        Value::Bool(b) => Ok(*b),
        _ => Err(wrong(e, "a boolean (true/false/yes/no/on/off)")),
    }
}

pub(super) fn map(e: &Entry) -> Result<&Map> {
    match &e.node.value {
        Value::Map(m) => Ok(m),
        _ => Err(wrong(e, "a map { ... }")),
    }
}

/// A non-negative count or byte size (size units already applied by the parser).
fn size(e: &Entry) -> Result<usize> {
    match &e.node.value {
        Value::Integer(n) if *n < 0 => Err(invalid(e, format!("{n} must not be negative"))),
        Value::Integer(n) => usize::try_from(*n).map_err(|_| invalid(e, "value is too big")),
        _ => Err(wrong(e, "an integer")),
    }
}

/// A TCP port; `-1` means "pick a random port" as in nats-server, stored as 0.
fn port_number(e: &Entry, n: i64) -> Result<u16> {
    match n {
        -1 => Ok(0),
        0..=65535 => Ok(n as u16),
        _ => Err(invalid(
            e,
            format!("port {n} out of range (0-65535, or -1)"),
        )),
    }
}

pub(super) fn port(e: &Entry) -> Result<u16> {
    match &e.node.value {
        Value::Integer(n) => port_number(e, *n),
        _ => Err(wrong(e, "an integer port")),
    }
}

/// `host:port`, `[::1]:port`, `:port` or a bare port number.
pub(super) fn host_port(e: &Entry) -> Result<(Option<String>, u16)> {
    let text = match &e.node.value {
        Value::Integer(n) => return Ok((None, port_number(e, *n)?)),
        Value::String(s) => s,
        _ => return Err(wrong(e, "\"host:port\"")),
    };
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(invalid(e, format!("{text:?} is not host:port")));
    };
    let n: i64 = port
        .parse()
        .map_err(|_| invalid(e, format!("{port:?} in {text:?} is not a port number")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = (!host.is_empty()).then(|| host.to_string());
    Ok((host, port_number(e, n)?))
}

/// Durations for ping_interval, write_deadline and the lame duck keys: a string
/// such as "2m"; a bare number is taken as seconds with a warning, as
/// nats-server does for ping_interval and write_deadline.
pub(super) fn duration(e: &Entry, warnings: &mut Vec<String>) -> Result<Duration> {
    match &e.node.value {
        Value::String(s) => parse_duration(s).map_err(|err| invalid(e, err.to_string())),
        Value::Integer(_) | Value::Float(_) => {
            warnings.push(format!(
                "{} at {} should be a duration string such as \"{}s\" (bare numbers are seconds)",
                e.key,
                e.key_pos,
                seconds_text(&e.node.value)
            ));
            seconds(e)
        }
        _ => Err(wrong(e, "a duration string like \"10s\"")),
    }
}

fn seconds_text(v: &Value) -> String {
    match v {
        Value::Integer(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        _ => String::new(),
    }
}

/// Timeouts that nats-server reads as (fractional) seconds: auth and TLS
/// `timeout`. Duration strings are accepted too.
pub(super) fn seconds(e: &Entry) -> Result<Duration> {
    let secs = match &e.node.value {
        Value::Integer(n) => *n as f64,
        Value::Float(f) => *f,
        Value::String(s) => return parse_duration(s).map_err(|err| invalid(e, err.to_string())),
        _ => return Err(wrong(e, "a number of seconds or a duration string")),
    };
    Duration::try_from_secs_f64(secs)
        .map_err(|_| invalid(e, format!("{secs} is not a valid number of seconds")))
}

fn authorization(e: &Entry, opts: &mut Options, warnings: &mut Vec<String>) -> Result<()> {
    let m = map(e)?;
    let mut users_entry = None;
    let mut default_perms = None;
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            "user" | "username" => opts.username = Some(string(a)?),
            "password" | "pass" => opts.password = Some(string(a)?),
            "token" => opts.token = Some(string(a)?),
            "timeout" => opts.auth_timeout = seconds(a)?,
            "users" => users_entry = Some(a),
            "permissions" => default_perms = Some(permissions(a, warnings)?),
            _ => warnings.push(unknown(a)),
        }
    }
    // Users of an `accounts` block read before this one.
    if opts.users.iter().any(|u| u.account.is_some()) {
        if opts.username.is_some() {
            return Err(invalid(
                e,
                "Can not have a single user/pass and a users array",
            ));
        }
        if opts.token.is_some() {
            return Err(invalid(e, "Can not have a token and a users array"));
        }
    }
    if let Some(u) = users_entry {
        if opts.username.is_some() {
            return Err(invalid(
                u,
                "cannot have a single user/pass and a users array",
            ));
        }
        if opts.token.is_some() {
            return Err(invalid(u, "cannot have a token and a users array"));
        }
        let Value::Array(items) = &u.node.value else {
            return Err(wrong(u, "an array of users"));
        };
        let users = items
            .iter()
            .map(|n| user(n, default_perms.as_ref(), warnings))
            .collect::<Result<Vec<_>>>()?;
        // Users of `accounts` blocks may already be there (either block may come first).
        opts.users.retain(|u| u.account.is_some());
        opts.users.extend(users);
    }
    Ok(())
}

pub(super) fn user(
    n: &Node,
    defaults: Option<&Permissions>,
    warnings: &mut Vec<String>,
) -> Result<UserConfig> {
    let Value::Map(m) = &n.value else {
        return Err(wrong_node("users", n, "a map { user, password, ... }"));
    };
    let mut u = UserConfig::default();
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            "user" | "username" => u.user = Some(string(a)?),
            "password" | "pass" => u.password = Some(string(a)?),
            "nkey" => u.nkey = Some(string(a)?),
            "permissions" => u.permissions = Some(permissions(a, warnings)?),
            _ => warnings.push(unknown(a)),
        }
    }
    let bad = |reason: &str| ConfigError::Invalid {
        pos: n.pos.clone(),
        key: "users".into(),
        reason: reason.into(),
    };
    if u.user.is_none() && u.nkey.is_none() {
        return Err(bad("a user entry needs \"user\" or \"nkey\""));
    }
    if let Some(nkey) = &u.nkey {
        // As nats-server: checked here so `-t` reports it, not only the start.
        if !nkey.starts_with('U') || nkeys::KeyPair::from_public_key(nkey).is_err() {
            return Err(bad("Not a valid public nkey for a user"));
        }
        if u.user.is_some() || u.password.is_some() {
            return Err(bad("Nkey users do not take usernames or passwords"));
        }
    }
    if u.permissions.is_none() {
        u.permissions = defaults.cloned();
    }
    Ok(u)
}

pub(super) fn permissions(e: &Entry, warnings: &mut Vec<String>) -> Result<Permissions> {
    let m = map(e)?;
    let mut p = Permissions::default();
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            "publish" | "pub" => (p.publish_allow, p.publish_deny) = subject_rules(a, warnings)?,
            "subscribe" | "sub" => {
                (p.subscribe_allow, p.subscribe_deny) = subject_rules(a, warnings)?
            }
            "allow_responses" => {
                p.allow_responses = match &a.node.value {
                    Value::Bool(b) => *b,
                    // `{ max: N, expires: "1m" }` enables responses with limits
                    // we do not model yet.
                    Value::Map(_) => true,
                    _ => return Err(wrong(a, "a boolean or a map")),
                }
            }
            _ => warnings.push(unknown(a)),
        }
    }
    Ok(p)
}

type Rules = (Option<Vec<String>>, Option<Vec<String>>);

/// `"subj"`, `["a", "b"]` (both allow lists) or `{ allow: ..., deny: ... }`.
fn subject_rules(e: &Entry, warnings: &mut Vec<String>) -> Result<Rules> {
    match &e.node.value {
        Value::Map(m) => {
            let mut rules: Rules = (None, None);
            for a in &m.entries {
                match a.key.to_ascii_lowercase().as_str() {
                    "allow" => rules.0 = Some(subjects(&a.key, &a.node)?),
                    "deny" => rules.1 = Some(subjects(&a.key, &a.node)?),
                    _ => warnings.push(unknown(a)),
                }
            }
            Ok(rules)
        }
        _ => Ok((Some(subjects(&e.key, &e.node)?), None)),
    }
}

pub(super) fn subjects(key: &str, n: &Node) -> Result<Vec<String>> {
    match &n.value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match &i.value {
                Value::String(s) => Ok(s.clone()),
                _ => Err(wrong_node(key, i, "a subject string")),
            })
            .collect(),
        _ => Err(wrong_node(key, n, "a subject or a list of subjects")),
    }
}

fn tls(e: &Entry, warnings: &mut Vec<String>) -> Result<TlsConfig> {
    let m = map(e)?;
    let mut t = TlsConfig::default();
    for a in &m.entries {
        match a.key.to_ascii_lowercase().as_str() {
            "cert_file" => t.cert_file = Some(PathBuf::from(string(a)?)),
            "key_file" => t.key_file = Some(PathBuf::from(string(a)?)),
            "ca_file" => t.ca_file = Some(PathBuf::from(string(a)?)),
            "verify" => t.verify = boolean(a)?,
            "timeout" => t.timeout = Some(seconds(a)?),
            _ => warnings.push(unknown(a)),
        }
    }
    Ok(t)
}
