//! Whether configured accounts fit together, before any of them is built:
//! every import names a defined account and is covered by an export that
//! allows it, mappings are well formed, and no import forms a cycle.
//!
//! Pure functions over `Options`; errors name the entry's `file:line:col`
//! and use nats-server's wording. Must not touch running accounts.

use std::collections::HashMap;

use super::mapping::{mapping_error, SubjectMap};
use super::AccountError;
use crate::auth::{intersects, is_subset};
use crate::options::{
    AccountConfig, ImportConfig, Options, ShareKind, DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT,
};
use crate::subject::validate_subscribe;

/// How deep a cycle search goes, as nats-server's `MaxAccountCycleSearchDepth`.
const MAX_DEPTH: usize = 1024;
/// How many accounts one cycle search may visit in all (each diamond in the
/// import graph doubles the paths to walk).
const MAX_STEPS: usize = 100_000;

fn invalid(origin: &str, message: String) -> AccountError {
    AccountError::Invalid {
        origin: origin.to_string(),
        message,
    }
}

fn find<'a>(opts: &'a Options, name: &str) -> Option<&'a AccountConfig> {
    opts.accounts.iter().find(|a| a.name == name)
}

/// The mapping an import applies: stream imports from the exporter's subject
/// to the local one, service imports from the local subject to the exporter's.
pub(super) fn import_map(i: &ImportConfig) -> Result<SubjectMap, AccountError> {
    let kind = i.kind.as_str();
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
    check_leaf_accounts(opts)?;
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
            let kind = e.kind.as_str();
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
        check_duplicates(acc)?;
        for i in &acc.imports {
            check_import(opts, acc, i)?;
        }
    }
    let mut index = HashMap::new();
    for acc in &opts.accounts {
        index.entry(acc.name.as_str()).or_insert(acc);
    }
    for acc in &opts.accounts {
        for i in &acc.imports {
            let found = match i.kind {
                ShareKind::Service => {
                    Search::new(&index, &acc.name).service(&i.account, &i.subject)
                }
                ShareKind::Stream => {
                    let local = i.local_subject();
                    let found = Search::new(&index, &acc.name).stream(&i.account, &local);
                    if found == Found::Nothing {
                        Search::new(&index, &acc.name).stream(&i.account, &i.subject)
                    } else {
                        found
                    }
                }
            };
            let why = match found {
                Found::Nothing => continue,
                Found::Cycle => "import forms a cycle",
                Found::TooDeep => "search cycle depth exhausted",
            };
            return Err(invalid(
                &i.origin,
                format!(
                    "Error adding {} import {:?}: {why}",
                    i.kind.as_str(),
                    i.subject
                ),
            ));
        }
    }
    Ok(())
}

/// The same stream imported twice from one account, or two service imports
/// from one account on the same local subject, as nats-server refuses them.
fn check_duplicates(acc: &AccountConfig) -> Result<(), AccountError> {
    for (n, i) in acc.imports.iter().enumerate() {
        let earlier = acc.imports.iter().take(n);
        let mut same = earlier.filter(|e| e.kind == i.kind && e.account == i.account);
        match i.kind {
            ShareKind::Stream => {
                if same.any(|e| e.subject == i.subject) {
                    return Err(invalid(
                        &i.origin,
                        format!(
                            "Error adding stream import {:?}: stream import already exists",
                            i.subject
                        ),
                    ));
                }
            }
            ShareKind::Service => {
                let local = i.local_subject();
                if let Some(dup) = same.find(|e| e.local_subject() == local) {
                    return Err(invalid(
                        &i.origin,
                        format!(
                            "Duplicate service import subject {local:?}, previously used in \
                             import for account {:?}, subject {:?}",
                            dup.account, dup.subject
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_import(opts: &Options, acc: &AccountConfig, i: &ImportConfig) -> Result<(), AccountError> {
    let kind = i.kind.as_str();
    let Some(exporter) = find(opts, &i.account) else {
        return Err(invalid(
            &i.origin,
            format!("{:?} account not defined for {kind} import", i.account),
        ));
    };
    if validate_subscribe(i.subject.as_bytes()).is_err()
        || validate_subscribe(i.local_subject().as_bytes()).is_err()
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

/// What a cycle search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Nothing,
    Cycle,
    /// The search went deeper, or took longer, than allowed.
    TooDeep,
}

/// One cycle search from an importing account: a depth-first walk over the
/// imports that would carry a message on, with the accounts on the current
/// path (the importer first). As nats-server's `check*ImportsForCycles`,
/// except that an account leaves the path when its branch is done, so two
/// imports reaching one account (a diamond) are not taken for a cycle.
struct Search<'a> {
    accounts: &'a HashMap<&'a str, &'a AccountConfig>,
    /// How many times each account is on the path (the importer may be
    /// walked through again).
    path: HashMap<&'a str, usize>,
    depth: usize,
    /// Steps left: bounds the walk over many diamonds.
    budget: usize,
}

impl<'a> Search<'a> {
    fn new(accounts: &'a HashMap<&'a str, &'a AccountConfig>, importer: &'a str) -> Self {
        Search {
            accounts,
            path: HashMap::from([(importer, 1)]),
            depth: 1,
            budget: MAX_STEPS,
        }
    }

    fn push(&mut self, name: &'a str) {
        *self.path.entry(name).or_insert(0) += 1;
        self.depth += 1;
    }

    fn pop(&mut self, name: &str) {
        if let Some(n) = self.path.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                self.path.remove(name);
            }
        }
        self.depth -= 1;
    }

    fn enter(&mut self) -> Result<(), Found> {
        if self.depth >= MAX_DEPTH || self.budget == 0 {
            return Err(Found::TooDeep);
        }
        self.budget -= 1;
        Ok(())
    }

    /// Requests on `from` arriving in `name` must not be forwarded, import
    /// by import, back to an account on the path.
    fn service(&mut self, name: &str, from: &str) -> Found {
        if let Err(f) = self.enter() {
            return f;
        }
        let Some(acc) = self.accounts.get(name).copied() else {
            return Found::Nothing;
        };
        for si in acc.imports.iter().filter(|i| i.kind == ShareKind::Service) {
            let to = si.local_subject();
            if !intersects(from.as_bytes(), to.as_bytes()) {
                continue;
            }
            if self.path.contains_key(si.account.as_str()) {
                return Found::Cycle;
            }
            let f = if is_subset(si.subject.as_bytes(), from.as_bytes()) {
                si.subject.as_str()
            } else {
                from
            };
            self.push(&acc.name);
            let found = self.service(&si.account, f);
            self.pop(&acc.name);
            if found != Found::Nothing {
                return found;
            }
        }
        Found::Nothing
    }

    /// Messages on `to` exported by `name` must not come back to an account
    /// on the path through its own imports.
    fn stream(&mut self, name: &str, to: &str) -> Found {
        if let Err(f) = self.enter() {
            return f;
        }
        let Some(acc) = self.accounts.get(name).copied() else {
            return Found::Nothing;
        };
        let exported = acc
            .exports
            .iter()
            .any(|e| e.kind == ShareKind::Stream && is_subset(to.as_bytes(), e.subject.as_bytes()));
        if !exported {
            return Found::Nothing;
        }
        for si in acc.imports.iter().filter(|i| i.kind == ShareKind::Stream) {
            let local = si.local_subject();
            if !intersects(to.as_bytes(), local.as_bytes()) {
                continue;
            }
            if self.path.contains_key(si.account.as_str()) {
                return Found::Cycle;
            }
            let t = if is_subset(local.as_bytes(), to.as_bytes()) {
                local.as_str()
            } else {
                to
            };
            self.push(&acc.name);
            let found = self.stream(&si.account, t);
            self.pop(&acc.name);
            if found != Found::Nothing {
                return found;
            }
        }
        Found::Nothing
    }
}

/// Leaf links bind to accounts that exist (nats-server's wording): a
/// remote's `account`, the leaf `authorization`'s and its users'.
fn check_leaf_accounts(opts: &Options) -> Result<(), AccountError> {
    let Some(lo) = &opts.leafnodes else {
        return Ok(());
    };
    let system = opts
        .system_account
        .as_deref()
        .unwrap_or(DEFAULT_SYSTEM_ACCOUNT);
    let known = |name: &str| {
        name.is_empty() || name == GLOBAL_ACCOUNT || name == system || find(opts, name).is_some()
    };
    let named = |what: &str, name: &Option<String>| match name {
        Some(n) if !known(n) => Err(invalid(
            "leafnodes",
            format!("cannot find local account {n:?} specified in leafnode {what}"),
        )),
        _ => Ok(()),
    };
    named("authorization", &lo.account)?;
    for u in &lo.users {
        named("authorization", &u.account)?;
    }
    for r in &lo.remotes {
        named("remote", &r.account)?;
    }
    Ok(())
}
