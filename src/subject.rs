//! Subject syntax: validation, wildcard detection and pattern matching of NATS
//! subjects, as pure functions over raw bytes.
//!
//! Owns the rules of shared/PROTOCOL.md §Subjects: tokens separated by `.`, each
//! non-empty, no space, tab, `\r`, `\n` or `\f`; `*` and `>` are wildcards only as
//! whole tokens and `>` only last. Must not touch the interest graph (that is
//! `sublist`) nor decide which `-ERR` a client gets (that is `protocol`).

/// Token separator.
pub const TSEP: u8 = b'.';
/// The one-token wildcard, `*`.
pub const PWC: &[u8] = b"*";
/// The one-or-more trailing tokens wildcard, `>`.
pub const FWC: &[u8] = b">";

/// Why a subject or queue name was rejected; the server maps every variant of a
/// SUB to `-ERR 'Invalid Subject'` and of a PUB to `-ERR 'Invalid Publish Subject'`,
/// the variants exist so logs and tests can say what exactly was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// The whole subject is empty.
    #[error("subject is empty")]
    Empty,
    /// A token is empty: leading, trailing or doubled `.`.
    #[error("subject has an empty token (leading, trailing or doubled '.')")]
    EmptyToken,
    /// Space, tab, `\r`, `\n` or `\f` inside a subject or queue name.
    #[error("subject or queue contains whitespace (space, tab, CR, LF or FF)")]
    InvalidCharacter,
    /// `>` used as a token other than the last one.
    #[error("full wildcard '>' is only allowed as the last token")]
    FullWildcardNotLast,
    /// A publish subject contains a `*` or `>` token.
    #[error("publish subject must not contain wildcard tokens")]
    WildcardInPublish,
    /// A queue group name is empty.
    #[error("queue group name is empty")]
    EmptyQueue,
}

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0c)
}

/// Shared single pass for both validators: checks tokens and characters, and
/// (when `literal_only`) rejects wildcard tokens.
#[inline]
fn validate(subject: &[u8], literal_only: bool) -> Result<(), SubjectError> {
    if subject.is_empty() {
        return Err(SubjectError::Empty);
    }
    let mut start = 0;
    for (i, &b) in subject.iter().enumerate() {
        if b == TSEP {
            check_token(&subject[start..i], false, literal_only)?;
            start = i + 1;
        } else if is_space(b) {
            return Err(SubjectError::InvalidCharacter);
        }
    }
    check_token(&subject[start..], true, literal_only)
}

#[inline]
fn check_token(tok: &[u8], last: bool, literal_only: bool) -> Result<(), SubjectError> {
    match tok {
        [] => Err(SubjectError::EmptyToken),
        b"*" | b">" if literal_only => Err(SubjectError::WildcardInPublish),
        b">" if !last => Err(SubjectError::FullWildcardNotLast),
        _ => Ok(()),
    }
}

/// Validates a SUB subject: well-formed tokens, wildcards allowed as whole tokens,
/// `>` only last. `foo*` is a valid literal token.
pub fn validate_subscribe(subject: &[u8]) -> Result<(), SubjectError> {
    validate(subject, false)
}

/// Validates a publish subject strictly (what `pedantic` asks): well-formed and no
/// wildcard token. Non-pedantic servers only need [`has_wildcard`].
pub fn validate_publish(subject: &[u8]) -> Result<(), SubjectError> {
    validate(subject, true)
}

/// True if any token is exactly `*` or `>`. Called on every PUB, so it scans with
/// `memchr` for the two bytes and only then looks at token boundaries.
#[inline]
pub fn has_wildcard(subject: &[u8]) -> bool {
    memchr::memchr2_iter(b'*', b'>', subject).any(|i| {
        let before_ok = i == 0 || subject[i - 1] == TSEP;
        let after_ok = i + 1 == subject.len() || subject[i + 1] == TSEP;
        before_ok && after_ok
    })
}

/// Validates a queue group name: non-empty, no whitespace. Dots and `*` are
/// allowed (nats-server accepts them).
pub fn validate_queue(queue: &[u8]) -> Result<(), SubjectError> {
    if queue.is_empty() {
        return Err(SubjectError::EmptyQueue);
    }
    if queue.iter().any(|&b| is_space(b)) {
        return Err(SubjectError::InvalidCharacter);
    }
    Ok(())
}

/// Iterates the tokens of a subject (no validation; empty tokens are yielded).
pub fn tokens(subject: &[u8]) -> impl Iterator<Item = &[u8]> {
    subject.split(|&b| b == TSEP)
}

/// True if the subscription `pattern` (may hold wildcards) matches the literal
/// `subject`. Token by token, no allocation; used by baselines, tests and
/// permission checks, not by the trie.
pub fn subject_matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut subj = tokens(subject);
    for ptok in tokens(pattern) {
        match subj.next() {
            None => return false,
            Some(stok) => match ptok {
                b">" => return true,
                b"*" => {}
                _ if ptok == stok => {}
                _ => return false,
            },
        }
    }
    subj.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_accepts_wildcards() {
        for s in [
            "foo", "foo.bar", "*", ">", "foo.*", "foo.>", "*.*.>", "foo*", "foo*.bar", "f>o",
        ] {
            assert_eq!(validate_subscribe(s.as_bytes()), Ok(()), "{s}");
        }
    }

    #[test]
    fn subscribe_rejects_malformed() {
        use SubjectError::*;
        let cases: &[(&str, SubjectError)] = &[
            ("", Empty),
            (".", EmptyToken),
            (".foo", EmptyToken),
            ("foo.", EmptyToken),
            ("foo..bar", EmptyToken),
            ("foo.>.bar", FullWildcardNotLast),
            (">.foo", FullWildcardNotLast),
            ("foo bar", InvalidCharacter),
            ("foo\tbar", InvalidCharacter),
            ("foo\r\n", InvalidCharacter),
            ("foo\x0c", InvalidCharacter),
        ];
        for (s, e) in cases {
            assert_eq!(validate_subscribe(s.as_bytes()), Err(*e), "{s:?}");
        }
    }

    #[test]
    fn publish_rejects_wildcards() {
        assert_eq!(validate_publish(b"foo.bar"), Ok(()));
        assert_eq!(validate_publish(b"foo*.b>r"), Ok(()));
        assert_eq!(
            validate_publish(b"foo.*"),
            Err(SubjectError::WildcardInPublish)
        );
        assert_eq!(validate_publish(b">"), Err(SubjectError::WildcardInPublish));
        assert_eq!(validate_publish(b"a..b"), Err(SubjectError::EmptyToken));
    }

    #[test]
    fn wildcard_detection_is_token_exact() {
        assert!(has_wildcard(b"*"));
        assert!(has_wildcard(b">"));
        assert!(has_wildcard(b"foo.*.bar"));
        assert!(has_wildcard(b"foo.>"));
        assert!(has_wildcard(b"*.foo"));
        assert!(!has_wildcard(b"foo*"));
        assert!(!has_wildcard(b"foo.*bar"));
        assert!(!has_wildcard(b"foo.b>"));
        assert!(!has_wildcard(b""));
        assert!(!has_wildcard(b"foo.bar"));
    }

    #[test]
    fn queue_names() {
        assert_eq!(validate_queue(b"workers"), Ok(()));
        assert_eq!(validate_queue(b"a.b*"), Ok(()));
        assert_eq!(validate_queue(b""), Err(SubjectError::EmptyQueue));
        assert_eq!(validate_queue(b"a b"), Err(SubjectError::InvalidCharacter));
        assert_eq!(validate_queue(b"a\tb"), Err(SubjectError::InvalidCharacter));
    }

    #[test]
    fn pattern_matching() {
        assert!(subject_matches(b"foo.>", b"foo.bar"));
        assert!(subject_matches(b"foo.>", b"foo.bar.baz"));
        assert!(!subject_matches(b"foo.>", b"foo"));
        assert!(subject_matches(b">", b"foo"));
        assert!(subject_matches(b"*", b"foo"));
        assert!(!subject_matches(b"*", b"foo.bar"));
        assert!(subject_matches(b"foo.*.baz", b"foo.bar.baz"));
        assert!(!subject_matches(b"foo.*", b"foo"));
        assert!(!subject_matches(b"foo*", b"foox"));
        assert!(subject_matches(b"foo*", b"foo*"));
    }
}

/// What a PUB subject is, found in one pass over its dots: it runs on every
/// publish, so wildcard tokens and empty tokens are detected together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishSubject {
    /// Some token is exactly `*` or `>` (the publish is not expanded).
    pub wildcard: bool,
    /// Some token is empty (`foo..bar`, `.foo`, `foo.`, or the subject is empty):
    /// such a publish reaches nobody, as in nats-server.
    pub empty_token: bool,
}

/// Classifies a publish subject; see `PublishSubject`.
pub fn classify_publish(subject: &[u8]) -> PublishSubject {
    let mut out = PublishSubject::default();
    let mut start = 0;
    let mut check = |start: usize, end: usize| match end - start {
        0 => out.empty_token = true,
        1 if subject[start] == b'*' || subject[start] == b'>' => out.wildcard = true,
        _ => {}
    };
    for dot in memchr::memchr_iter(TSEP, subject) {
        check(start, dot);
        start = dot + 1;
    }
    check(start, subject.len());
    out
}

/// True if a subject has an empty token (`foo..bar`, `.foo`, `foo.`, or is
/// empty).
pub fn has_empty_token(subject: &[u8]) -> bool {
    classify_publish(subject).empty_token
}

#[cfg(test)]
mod publish_tests {
    use super::*;

    #[test]
    fn classify_publish_subjects() {
        let c = |s: &str| classify_publish(s.as_bytes());
        assert_eq!(c("foo.bar"), PublishSubject::default());
        assert!(c("foo.*").wildcard && !c("foo.*").empty_token);
        assert!(c(">").wildcard);
        assert!(c("a.>.b").wildcard);
        assert!(!c("foo*.bar").wildcard && !c("a.b>").wildcard);
        for bad in ["", ".", "foo..bar", ".foo", "foo."] {
            assert!(c(bad).empty_token, "{bad:?}");
        }
        assert!(c("*..x").wildcard && c("*..x").empty_token);
    }
}
