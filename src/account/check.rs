//! Whether configured accounts fit together, before any of them is built:
//! every import names a defined account and is covered by an export that
//! allows it, mappings are well formed, and no import forms a cycle.
//!
//! Pure functions over `Options`; errors name the entry's `file:line:col`
//! and use nats-server's wording. Must not touch running accounts.

use super::mapping::{mapping_error, SubjectMap};
use super::AccountError;
use crate::options::{
    AccountConfig, ImportConfig, Options, ShareKind, DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT,
};
use crate::subject::{collide, is_subset, validate_subscribe};

/// How deep a cycle search goes, as nats-server's `MaxAccountCycleSearchDepth`.
const MAX_DEPTH: usize = 1024;

fn kind_name(k: ShareKind) -> &'static str {
    match k {
        ShareKind::Stream => "stream",
        ShareKind::Service => "service",
    }
}

fn invalid(origin: &str, message: String) -> AccountError {
    AccountError::Invalid {
        origin: origin.to_string(),
        message,
    }
}

fn find<'a>(opts: &'a Options, name: &str) -> Option<&'a AccountConfig> {
    opts.accounts.iter().find(|a| a.name == name)
}

/// The import's subject as clients of the importing account see it.
pub(super) fn local_subject(i: &ImportConfig) -> String {
    match (&i.prefix, &i.to) {
        (Some(p), _) => format!("{}.{}", p.trim_end_matches('.'), i.subject),
        (None, Some(t)) => t.clone(),
        (None, None) => i.subject.clone(),
    }
}

/// The mapping an import applies: stream imports from the exporter's subject
/// to the local one, service imports from the local subject to the exporter's.
pub(super) fn import_map(i: &ImportConfig) -> Result<SubjectMap, AccountError> {
    let kind = kind_name(i.kind);
    let made = match (i.kind, &i.prefix, &i.to) {
        (ShareKind::Stream, Some(p), _) => SubjectMap::prefix(p),
        (ShareKind::Stream, None, Some(t)) => SubjectMap::template(&i.subject, t),
        (ShareKind::Service, _, Some(t)) => SubjectMap::template(t, &i.subject),
        _ => Ok(SubjectMap::Identity),
    };
    made.map_err(|why| mapping_error(&i.origin, kind, &i.subject, why))
}

/// Checks every account, export and import of `opts`.
pub fn check(opts: &Options) -> Result<(), AccountError> {
    if let Some(sys) = &opts.system_account {
        if sys != DEFAULT_SYSTEM_ACCOUNT && sys != GLOBAL_ACCOUNT && find(opts, sys).is_none() {
            return Err(invalid(
                "system_account",
                format!("system account {sys:?} is not defined in accounts"),
            ));
        }
    }
    for acc in &opts.accounts {
        for e in &acc.exports {
            let kind = kind_name(e.kind);
            if validate_subscribe(e.subject.as_bytes()).is_err() {
                return Err(invalid(
                    &acc.origin,
                    format!(
                        "Error adding {kind} export {:?}: invalid subject",
                        e.subject
                    ),
                ));
            }
            for name in e.accounts.iter().flatten() {
                if find(opts, name).is_none() {
                    return Err(invalid(
                        &acc.origin,
                        format!("{name:?} account not defined for {kind} export"),
                    ));
                }
            }
        }
        for i in &acc.imports {
            check_import(opts, acc, i)?;
        }
    }
    for acc in &opts.accounts {
        for i in &acc.imports {
            let cyclic = match i.kind {
                ShareKind::Service => {
                    service_cycle(opts, &i.account, &i.subject, &mut vec![acc.name.as_str()])
                }
                ShareKind::Stream => {
                    let local = local_subject(i);
                    stream_cycle(opts, &i.account, &local, &mut vec![acc.name.as_str()])
                        || stream_cycle(opts, &i.account, &i.subject, &mut vec![&acc.name])
                }
            };
            if cyclic {
                return Err(invalid(
                    &i.origin,
                    format!(
                        "Error adding {} import {:?}: import forms a cycle",
                        kind_name(i.kind),
                        i.subject
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_import(opts: &Options, acc: &AccountConfig, i: &ImportConfig) -> Result<(), AccountError> {
    let kind = kind_name(i.kind);
    let Some(exporter) = find(opts, &i.account) else {
        return Err(invalid(
            &i.origin,
            format!("{:?} account not defined for {kind} import", i.account),
        ));
    };
    if validate_subscribe(i.subject.as_bytes()).is_err()
        || validate_subscribe(local_subject(i).as_bytes()).is_err()
    {
        return Err(invalid(
            &i.origin,
            format!(
                "Error adding {kind} import {:?}: invalid subject",
                i.subject
            ),
        ));
    }
    let allowed = exporter.exports.iter().any(|e| {
        e.kind == i.kind
            && is_subset(i.subject.as_bytes(), e.subject.as_bytes())
            && e.accounts.as_ref().is_none_or(|a| a.contains(&acc.name))
    });
    if !allowed {
        return Err(invalid(
            &i.origin,
            format!(
                "Error adding {kind} import {:?}: {kind} import not authorized",
                i.subject
            ),
        ));
    }
    import_map(i).map(|_| ())
}

/// nats-server's `checkServiceImportsForCycles`: requests on `from` arriving
/// in `name` must not be forwarded, import by import, back to a visited account.
fn service_cycle<'a>(
    opts: &'a Options,
    name: &str,
    from: &str,
    visited: &mut Vec<&'a str>,
) -> bool {
    if visited.len() >= MAX_DEPTH {
        return true;
    }
    let Some(acc) = find(opts, name) else {
        return false;
    };
    for si in acc.imports.iter().filter(|i| i.kind == ShareKind::Service) {
        let to = local_subject(si);
        if !collide(from.as_bytes(), to.as_bytes()) {
            continue;
        }
        if visited.contains(&si.account.as_str()) {
            return true;
        }
        visited.push(&acc.name);
        let f = if is_subset(si.subject.as_bytes(), from.as_bytes()) {
            si.subject.as_str()
        } else {
            from
        };
        if service_cycle(opts, &si.account, f, visited) {
            return true;
        }
    }
    false
}

/// nats-server's `checkStreamImportsForCycles`: messages on `to` exported by
/// `name` must not come back to a visited account through its own imports.
fn stream_cycle<'a>(opts: &'a Options, name: &str, to: &str, visited: &mut Vec<&'a str>) -> bool {
    if visited.len() >= MAX_DEPTH {
        return true;
    }
    let Some(acc) = find(opts, name) else {
        return false;
    };
    let exported = acc
        .exports
        .iter()
        .any(|e| e.kind == ShareKind::Stream && is_subset(to.as_bytes(), e.subject.as_bytes()));
    if !exported {
        return false;
    }
    for si in acc.imports.iter().filter(|i| i.kind == ShareKind::Stream) {
        let local = local_subject(si);
        if !collide(to.as_bytes(), local.as_bytes()) {
            continue;
        }
        if visited.contains(&si.account.as_str()) {
            return true;
        }
        visited.push(&acc.name);
        let t = if is_subset(local.as_bytes(), to.as_bytes()) {
            local.as_str()
        } else {
            to
        };
        if stream_cycle(opts, &si.account, t, visited) {
            return true;
        }
    }
    false
}
