//! Fuzz target bodies: each takes the fuzzer's bytes and panics on a finding.
//! Shared by the AFL harness (`fuzz/`, one binary per target, needs
//! cargo-afl) and by `tests/replay.rs`, which runs every committed corpus and
//! crash file through the same body so `cargo test` catches a regression
//! without a fuzzer.
//!
//! Owns only the checks (whole vs split parsing, models to compare against);
//! must not hold any logic the server needs.

mod leaf;
mod parser;
mod sublist;

pub use leaf::leaf;
pub use parser::parser;
pub use sublist::sublist;

use std::path::Path;

use bytes::BytesMut;

/// Runs a resumable parser over `stream` twice — all bytes at once, then fed
/// in chunks of `sizes` (cycled; each 1..=17, chosen by the fuzzer) — and
/// requires the same ops (and error) both ways. `drain` takes every complete
/// op off the buffer into the list and says whether parsing may go on.
pub(crate) fn whole_equals_split<P, T: PartialEq + std::fmt::Debug>(
    stream: &[u8],
    sizes: [u8; 3],
    new: impl Fn() -> P,
    drain: impl Fn(&mut P, &mut BytesMut, &mut Vec<T>) -> bool,
) {
    let mut whole = Vec::new();
    drain(&mut new(), &mut BytesMut::from(stream), &mut whole);

    let mut split = Vec::new();
    let mut p = new();
    let mut buf = BytesMut::new();
    let sizes = sizes.map(|s| usize::from(s % 17) + 1);
    let (mut at, mut i) = (0, 0);
    while at < stream.len() {
        let n = sizes[i % 3].min(stream.len() - at);
        buf.extend_from_slice(&stream[at..at + n]);
        at += n;
        i += 1;
        if !drain(&mut p, &mut buf, &mut split) {
            break;
        }
    }
    assert_eq!(whole, split, "whole and split parses differ");
}

/// A target body: panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, as `scripts/fuzz.sh` and the replay test know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("parser", parser),
    ("config", config),
    ("connect", connect),
    ("subject", subject),
    ("sublist", sublist),
    ("leaf", leaf),
];

/// The config lexer, parser and the mapping to `Options`: any text gives a
/// value or an error with a position, never a panic. Inputs with `include`
/// are skipped: an include of `/dev/zero` would read forever, which is a
/// property of the file named, not of the parser.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("include") {
        return;
    }
    let base = Path::new("/nonexistent/natrium-fuzz");
    let _ = natrium::config::parse_value(text, base);
    let _ = natrium::config::parse_str(text, base);
}

/// CONNECT's JSON: any bytes give options or a refusal, never a panic.
pub fn connect(data: &[u8]) {
    if let Some(info) = natrium_proto::connect::ConnectInfo::parse(data) {
        // Whatever was accepted must survive a debug print (no invariant
        // broken inside the options).
        let _ = format!("{info:?}");
    }
}

/// Subject validation and matching against a naive model.
pub fn subject(data: &[u8]) {
    use natrium::subject::{subject_matches, validate_publish, validate_queue, validate_subscribe};
    // The first 0x00 byte, if any, separates a pattern from a subject.
    let (pattern, subject) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let sub_ok = model_valid(pattern, false);
    assert_eq!(
        validate_subscribe(pattern).is_ok(),
        sub_ok,
        "subscribe {pattern:?}"
    );
    let pub_ok = model_valid(subject, true);
    assert_eq!(
        validate_publish(subject).is_ok(),
        pub_ok,
        "publish {subject:?}"
    );
    let queue_ok = !pattern.is_empty() && !pattern.iter().any(|&b| is_space(b));
    assert_eq!(
        validate_queue(pattern).is_ok(),
        queue_ok,
        "queue {pattern:?}"
    );
    if sub_ok && pub_ok {
        assert_eq!(
            subject_matches(pattern, subject),
            model_matches(pattern, subject),
            "match {pattern:?} against {subject:?}"
        );
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0c)
}

fn model_valid(s: &[u8], literal: bool) -> bool {
    if s.is_empty() || s.iter().any(|&b| is_space(b)) {
        return false;
    }
    let toks: Vec<&[u8]> = s.split(|&b| b == b'.').collect();
    let last = toks.len() - 1;
    toks.iter().enumerate().all(|(i, t)| match *t {
        b"" => false,
        b"*" | b">" if literal => false,
        b">" => i == last,
        _ => true,
    })
}

/// Token by token; `pattern` may hold wildcards, `subject` is literal.
pub(crate) fn model_matches(pattern: &[u8], subject: &[u8]) -> bool {
    let p: Vec<&[u8]> = pattern.split(|&b| b == b'.').collect();
    let s: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
    for (i, pt) in p.iter().enumerate() {
        if *pt == b">" {
            return s.len() > i;
        }
        match s.get(i) {
            None => return false,
            Some(st) if *pt == b"*" || pt == st => {}
            Some(_) => return false,
        }
    }
    p.len() == s.len()
}
