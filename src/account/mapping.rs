//! Subject rewriting across an account boundary: a stream import's `prefix`
//! or `to`, a service import's local subject onto the exporter's.
//!
//! Owns the token arithmetic only (wildcard tokens carried over by position,
//! or by `$N`); it must not know accounts or deliver anything.

use super::AccountError;
use crate::subject::{has_wildcard, tokens};

/// One token of a mapping's destination.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Literal(Vec<u8>),
    /// The n-th wildcard token (0-based) of the source pattern.
    Wildcard(usize),
    /// Every token from the source's `>` on.
    Rest,
}

/// How a subject seen on one side is named on the other.
#[derive(Debug, Clone, PartialEq)]
pub enum SubjectMap {
    Identity,
    /// `prefix.` + the subject.
    Prefix(Vec<u8>),
    /// Tokens of the destination, filled from the source's wildcards.
    Template {
        /// Index of the source's first `>` token, if any.
        rest_at: Option<usize>,
        /// Source token positions of its `*` wildcards, in order.
        stars: Vec<usize>,
        to: Vec<Part>,
    },
}

impl SubjectMap {
    /// A prefix mapping; wildcards in the prefix are refused, as nats-server.
    pub fn prefix(prefix: &str) -> Result<SubjectMap, String> {
        let p = prefix.trim_end_matches('.');
        if p.is_empty() || has_wildcard(p.as_bytes()) {
            return Err("stream import prefix can not contain wildcard tokens".into());
        }
        let mut v = p.as_bytes().to_vec();
        v.push(b'.');
        Ok(SubjectMap::Prefix(v))
    }

    /// Maps subjects matching `from` onto `to`: `*` (or `$N`) in `to` takes the
    /// source's wildcard tokens in order, `>` its tail.
    pub fn template(from: &str, to: &str) -> Result<SubjectMap, String> {
        if from == to {
            return Ok(SubjectMap::Identity);
        }
        let mut stars = Vec::new();
        let mut rest_at = None;
        for (i, t) in tokens(from.as_bytes()).enumerate() {
            match t {
                b"*" => stars.push(i),
                b">" => rest_at = Some(i),
                _ => {}
            }
        }
        let mut next = 0;
        let mut parts = Vec::new();
        for t in tokens(to.as_bytes()) {
            let part = match t {
                b"*" => {
                    next += 1;
                    Part::Wildcard(next - 1)
                }
                b">" => Part::Rest,
                _ if t.first() == Some(&b'$') => {
                    let n: usize = std::str::from_utf8(&t[1..])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| format!("invalid mapping token {:?}", lossy(t)))?;
                    Part::Wildcard(n - 1)
                }
                _ => Part::Literal(t.to_vec()),
            };
            match part {
                Part::Wildcard(n) if n >= stars.len() => {
                    return Err(format!(
                        "mapping {to:?} uses more wildcards than {from:?} has"
                    ))
                }
                Part::Rest if rest_at.is_none() => {
                    return Err(format!("mapping {to:?} uses '>' but {from:?} has none"))
                }
                _ => parts.push(part),
            }
        }
        Ok(SubjectMap::Template {
            rest_at,
            stars,
            to: parts,
        })
    }

    /// Writes the mapped form of the literal `subject` into `out` (cleared first).
    pub fn apply(&self, subject: &[u8], out: &mut Vec<u8>) {
        out.clear();
        match self {
            SubjectMap::Identity => out.extend_from_slice(subject),
            SubjectMap::Prefix(p) => {
                out.extend_from_slice(p);
                out.extend_from_slice(subject);
            }
            SubjectMap::Template { rest_at, stars, to } => {
                for (i, part) in to.iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    match part {
                        Part::Literal(l) => out.extend_from_slice(l),
                        Part::Wildcard(n) => {
                            let tok = stars.get(*n).and_then(|p| tokens(subject).nth(*p));
                            out.extend_from_slice(tok.unwrap_or_default());
                        }
                        Part::Rest => {
                            let skip = rest_at.unwrap_or(0);
                            for (j, t) in tokens(subject).skip(skip).enumerate() {
                                if j > 0 {
                                    out.push(b'.');
                                }
                                out.extend_from_slice(t);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The error an import's mapping gives, naming where it was configured.
pub(super) fn mapping_error(origin: &str, kind: &str, subject: &str, why: String) -> AccountError {
    AccountError::Invalid {
        origin: origin.to_string(),
        message: format!("Error adding {kind} import {subject:?}: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(m: &SubjectMap, s: &str) -> String {
        let mut out = Vec::new();
        m.apply(s.as_bytes(), &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn prefix_and_templates() {
        let p = SubjectMap::prefix("from_a").expect("prefix");
        assert_eq!(map(&p, "foo.bar"), "from_a.foo.bar");
        assert!(SubjectMap::prefix("a.*").is_err());
        let t = SubjectMap::template("req.*.x.>", "svc.*.>").expect("template");
        assert_eq!(map(&t, "req.one.x.two.three"), "svc.one.two.three");
        let d = SubjectMap::template("a.*.*", "b.$2.$1").expect("dollar");
        assert_eq!(map(&d, "a.x.y"), "b.y.x");
        let l = SubjectMap::template("a.*", "fixed").expect("literal");
        assert_eq!(map(&l, "a.z"), "fixed");
        assert!(SubjectMap::template("a.b", "c.*").is_err());
        assert!(SubjectMap::template("a.*", "c.>").is_err());
        assert_eq!(
            SubjectMap::template("a.>", "a.>").expect("same"),
            SubjectMap::Identity
        );
    }
}
