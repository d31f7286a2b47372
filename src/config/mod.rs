//! The config file: the NATS configuration language and its mapping onto `Options`.
//!
//! Owns reading config files (`lexer`, `parser`), duration parsing and the mapping
//! of every core key into [`Options`] with validation (`apply`). It must not touch
//! the running server: reload and command-line precedence are the caller's job
//! (load or apply here, then override with flags, then hand the result over).
//!
//! ```text
//! load(path) ── read ──▶ lexer ──▶ parser (include, $VAR) ──▶ Value tree
//!                                                              │ apply
//!                                                              ▼
//!                                              (Options, warnings) / ConfigError
//! ```

// Peer and file bytes reach this code: no unchecked indexing or unwrap (tests may).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

mod accounts;
mod apply;
mod duration;
mod leaf;
pub mod lexer;
pub mod parser;

use std::path::{Path, PathBuf};

use crate::options::Options;

pub use apply::apply;
pub use duration::parse_duration;
pub use lexer::{LexError, Pos};
pub use parser::{Entry, Map, Node, ParseError, Value};

/// Everything that can make a config file unusable. Each variant past `Io`
/// points at `file:line:col` (or `line:col` for inline text).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("{pos}: \"{key}\" expected {expected}, found {found}")]
    WrongType {
        pos: Pos,
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{pos}: invalid \"{key}\": {reason}")]
    Invalid {
        pos: Pos,
        key: String,
        reason: String,
    },
    /// Accounts that do not fit together (an import of no export, a cycle);
    /// the text names the entry's `file:line:col`.
    #[error(transparent)]
    Account(#[from] crate::account::AccountError),
}

/// Loads a config file into default `Options` (with `config_file` set), so `-c`
/// and `-t` share one path. Returns warnings (unknown keys, deprecated forms)
/// for the caller to log.
pub fn load(path: &Path) -> Result<(Options, Vec<String>), ConfigError> {
    let value = read(path)?;
    let mut opts = Options::default();
    let warnings = apply(&value, &mut opts)?;
    opts.config_file = Some(path.to_path_buf());
    Ok((opts, warnings))
}

/// Parses config text (e.g. from a test or stdin) into default `Options`;
/// `include` paths resolve against `base_dir`.
pub fn parse_str(text: &str, base_dir: &Path) -> Result<(Options, Vec<String>), ConfigError> {
    let value = parse_value(text, base_dir)?;
    let mut opts = Options::default();
    let warnings = apply(&value, &mut opts)?;
    Ok((opts, warnings))
}

/// Reads and parses a config file into its value tree without mapping it, for
/// callers that apply it onto existing options (reload, flags precedence).
pub fn read(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    Ok(Value::Map(parser::parse(&text, Some(path), base)?))
}

/// Parses config text into its value tree without mapping it.
pub fn parse_value(text: &str, base_dir: &Path) -> Result<Value, ConfigError> {
    Ok(Value::Map(parser::parse(text, None, base_dir)?))
}
