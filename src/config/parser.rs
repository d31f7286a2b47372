//! Parser for the NATS configuration language: tokens → a positioned [`Value`] tree.
//!
//! Owns the grammar (`k = v`, `k: v`, `k v`, maps, arrays, separators), the
//! meaning of bare words (integers with size units, floats, booleans, strings),
//! `include` (relative to the including file, cycle-guarded) and `$VAR`
//! resolution (enclosing maps first, then the environment). It knows nothing about
//! server options: mapping the tree into `Options` is `config::apply`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lexer::{LexError, Lexer, Mode, Pos, Tok, Token};

/// Nesting limit for includes, a backstop behind the cycle check.
const MAX_INCLUDE_DEPTH: usize = 16;

/// A parsed config value. Durations stay strings: only the key decides whether
/// `"2m"` is a duration.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Map(Map),
    Array(Vec<Node>),
}

impl Value {
    /// A short type name for "expected X, found Y" errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Integer(_) => "integer",
            Value::Float(_) => "float",
            Value::Bool(_) => "boolean",
            Value::Map(_) => "map",
            Value::Array(_) => "array",
        }
    }
}

/// A value together with where it starts in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// One `key = value` of a map; `key_pos` is what validation errors point at.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub node: Node,
    /// Referenced as `$key` later on: such keys are variables, so an unknown
    /// one is not warned about (as nats-server).
    pub used_as_variable: bool,
}

/// A map in source order; a repeated key replaces the earlier value in place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map {
    pub entries: Vec<Entry>,
}

impl Map {
    /// The value of `key` (exact match), if present.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    fn insert(&mut self, entry: Entry) {
        match self.entries.iter_mut().find(|e| e.key == entry.key) {
            Some(slot) => *slot = entry,
            None => self.entries.push(entry),
        }
    }
}

/// Syntax and resolution errors, each pointing at a line and column.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Lex(#[from] LexError),
    #[error("{pos}: expected {expected}, found {found}")]
    Expected {
        pos: Pos,
        expected: String,
        found: String,
    },
    #[error("{pos}: expected '{close}' to close {what} opened at {}", open.short())]
    Unclosed {
        pos: Pos,
        close: char,
        what: &'static str,
        open: Pos,
    },
    #[error("{pos}: unknown variable ${name} (not defined earlier and not in the environment)")]
    UnknownVariable { pos: Pos, name: String },
    #[error("{pos}: variable ${name} refers to itself through the environment")]
    VariableCycle { pos: Pos, name: String },
    #[error("{pos}: integer '{text}' is out of range")]
    IntegerRange { pos: Pos, text: String },
    #[error("{pos}: cannot read include file {}: {source}", path.display())]
    Include {
        pos: Pos,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{pos}: include cycle: {} is already being included", path.display())]
    IncludeCycle { pos: Pos, path: PathBuf },
    #[error("{pos}: maps and arrays nested more than {max} deep")]
    TooDeep { pos: Pos, max: usize },
}

/// Deepest nesting of maps and arrays accepted. Real configs nest a handful
/// of levels; the bound keeps a hostile or corrupt file (`[[[[…`) from
/// exhausting the stack of the recursive parser, which would abort the
/// server on a reload.
pub const MAX_NESTING: usize = 64;

/// Parses config text whose includes resolve against `base_dir`.
/// `file` names the text in positions (None for inline text).
pub fn parse(text: &str, file: Option<&Path>, base_dir: &Path) -> Result<Map, ParseError> {
    let mut including = Vec::new();
    if let Some(f) = file {
        including.push(canonical(f));
    }
    let mut p = Parser {
        lexer: Lexer::new(text, file.map(path_label)),
        pending: None,
        scopes: vec![Map::default()],
        base_dir: base_dir.to_path_buf(),
        including,
        env_resolving: HashSet::new(),
        depth: 0,
    };
    p.body(None)?;
    Ok(p.scopes.pop().unwrap_or_default())
}

fn path_label(p: &Path) -> Arc<str> {
    Arc::from(p.display().to_string())
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

struct Parser {
    lexer: Lexer,
    pending: Option<Token>,
    /// Maps being built, outermost first; variables resolve innermost-out.
    scopes: Vec<Map>,
    base_dir: PathBuf,
    /// Files currently being parsed, for include cycle detection.
    including: Vec<PathBuf>,
    /// Environment variables being expanded, to stop `A=$A` recursing.
    env_resolving: HashSet<String>,
    /// Maps and arrays open around the current value.
    depth: usize,
}

impl Parser {
    fn next(&mut self, mode: Mode) -> Result<Token, ParseError> {
        match self.pending.take() {
            Some(t) => Ok(t),
            None => Ok(self.lexer.next_token(mode)?),
        }
    }

    /// Parses `key value` entries into the innermost scope until `}` (when
    /// `open` is the position of the `{`) or end of file.
    fn body(&mut self, open: Option<&Pos>) -> Result<(), ParseError> {
        loop {
            let t = self.next(Mode::Key)?;
            let (key, key_pos) = match t.tok {
                Tok::Newline | Tok::Comma | Tok::Semicolon => continue,
                Tok::Eof => {
                    return match open {
                        Some(open) => Err(ParseError::Unclosed {
                            pos: t.pos,
                            close: '}',
                            what: "map",
                            open: open.clone(),
                        }),
                        None => Ok(()),
                    }
                }
                Tok::RBrace if open.is_some() => return Ok(()),
                Tok::Word(w) => {
                    if w.eq_ignore_ascii_case("include") {
                        self.include(&t.pos)?;
                        self.end_of_entry()?;
                        continue;
                    }
                    (w, t.pos)
                }
                Tok::Quoted(q) => (q, t.pos),
                other => {
                    return Err(ParseError::Expected {
                        pos: t.pos,
                        expected: "a key".into(),
                        found: other.describe(),
                    })
                }
            };
            self.lexer.skip_separator();
            let vt = self.next(Mode::Value)?;
            let node = self.value(vt, &key)?;
            if let Some(scope) = self.scopes.last_mut() {
                scope.insert(Entry {
                    key,
                    key_pos,
                    node,
                    used_as_variable: false,
                });
            }
            self.end_of_entry()?;
        }
    }

    /// After a value: a separator, newline, closing brace or end of file.
    fn end_of_entry(&mut self) -> Result<(), ParseError> {
        let t = self.next(Mode::Key)?;
        match t.tok {
            Tok::Newline | Tok::Comma | Tok::Semicolon => Ok(()),
            Tok::RBrace | Tok::Eof => {
                self.pending = Some(t);
                Ok(())
            }
            other => Err(ParseError::Expected {
                pos: t.pos,
                expected: "a new line, ',' or ';' after the value".into(),
                found: other.describe(),
            }),
        }
    }

    fn value(&mut self, t: Token, key: &str) -> Result<Node, ParseError> {
        let pos = t.pos;
        let nested = matches!(t.tok, Tok::LBrace | Tok::LBracket);
        if nested {
            if self.depth >= MAX_NESTING {
                return Err(ParseError::TooDeep {
                    pos,
                    max: MAX_NESTING,
                });
            }
            self.depth += 1;
        }
        let value = self.value_of(t.tok, &pos, key);
        if nested {
            self.depth -= 1;
        }
        Ok(Node { value: value?, pos })
    }

    fn value_of(&mut self, tok: Tok, pos: &Pos, key: &str) -> Result<Value, ParseError> {
        Ok(match tok {
            Tok::LBrace => {
                self.scopes.push(Map::default());
                let r = self.body(Some(pos));
                let map = self.scopes.pop().unwrap_or_default();
                r?;
                Value::Map(map)
            }
            Tok::LBracket => self.array(pos)?,
            Tok::Quoted(s) => Value::String(s),
            Tok::Word(w) => classify(&w, pos)?,
            Tok::Variable(name) => self.variable(&name, pos)?,
            other => {
                return Err(ParseError::Expected {
                    pos: pos.clone(),
                    expected: format!("a value for \"{key}\""),
                    found: other.describe(),
                })
            }
        })
    }

    fn array(&mut self, open: &Pos) -> Result<Value, ParseError> {
        let mut items = Vec::new();
        loop {
            let t = self.next(Mode::Value)?;
            match t.tok {
                Tok::Newline | Tok::Comma => continue,
                Tok::RBracket => return Ok(Value::Array(items)),
                Tok::Eof => {
                    return Err(ParseError::Unclosed {
                        pos: t.pos,
                        close: ']',
                        what: "array",
                        open: open.clone(),
                    })
                }
                _ => {}
            }
            items.push(self.value(t, "array element")?);
            let after = self.next(Mode::Value)?;
            match after.tok {
                Tok::Newline | Tok::Comma => {}
                Tok::RBracket => return Ok(Value::Array(items)),
                Tok::Eof => {
                    return Err(ParseError::Unclosed {
                        pos: after.pos,
                        close: ']',
                        what: "array",
                        open: open.clone(),
                    })
                }
                other => {
                    return Err(ParseError::Expected {
                        pos: after.pos,
                        expected: "',' or ']' after array element".into(),
                        found: other.describe(),
                    })
                }
            }
        }
    }

    fn variable(&mut self, name: &str, pos: &Pos) -> Result<Value, ParseError> {
        for scope in self.scopes.iter_mut().rev() {
            if let Some(e) = scope.entries.iter_mut().find(|e| e.key == name) {
                e.used_as_variable = true;
                return Ok(e.node.value.clone());
            }
        }
        let Ok(raw) = std::env::var(name) else {
            return Err(ParseError::UnknownVariable {
                pos: pos.clone(),
                name: name.to_string(),
            });
        };
        if !self.env_resolving.insert(name.to_string()) {
            return Err(ParseError::VariableCycle {
                pos: pos.clone(),
                name: name.to_string(),
            });
        }
        // As nats-server: the environment value is read as a config value, so
        // `8222` is an integer and `[a, b]` an array; if it does not parse as one
        // value, it is taken as a plain string.
        let text = format!("v = {raw}");
        let mut sub = Parser {
            lexer: Lexer::new(&text, None),
            pending: None,
            scopes: vec![Map::default()],
            base_dir: self.base_dir.clone(),
            including: self.including.clone(),
            env_resolving: std::mem::take(&mut self.env_resolving),
            depth: self.depth,
        };
        let parsed = sub.body(None);
        self.env_resolving = std::mem::take(&mut sub.env_resolving);
        self.env_resolving.remove(name);
        match parsed {
            // Report nested failures at the outer reference, not in the
            // synthetic text the environment value was parsed from.
            Err(ParseError::VariableCycle { name, .. }) => Err(ParseError::VariableCycle {
                pos: pos.clone(),
                name,
            }),
            Err(ParseError::UnknownVariable { name, .. }) => Err(ParseError::UnknownVariable {
                pos: pos.clone(),
                name,
            }),
            Err(_) => Ok(Value::String(raw)),
            Ok(()) => {
                let map = sub.scopes.pop().unwrap_or_default();
                match map.entries.as_slice() {
                    [one] => Ok(one.node.value.clone()),
                    _ => Ok(Value::String(raw)),
                }
            }
        }
    }

    /// `include path`: parses another file into the current map.
    fn include(&mut self, pos: &Pos) -> Result<(), ParseError> {
        self.lexer.skip_separator();
        let t = self.next(Mode::Value)?;
        let rel = match t.tok {
            Tok::Quoted(s) | Tok::Word(s) => s,
            other => {
                return Err(ParseError::Expected {
                    pos: t.pos,
                    expected: "a file name after include".into(),
                    found: other.describe(),
                })
            }
        };
        let path = self.base_dir.join(&rel);
        let canon = canonical(&path);
        if self.including.contains(&canon) || self.including.len() > MAX_INCLUDE_DEPTH {
            return Err(ParseError::IncludeCycle {
                pos: pos.clone(),
                path,
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ParseError::Include {
            pos: pos.clone(),
            path: path.clone(),
            source,
        })?;
        let new_base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let saved_lexer =
            std::mem::replace(&mut self.lexer, Lexer::new(&text, Some(path_label(&path))));
        let saved_pending = self.pending.take();
        let saved_base = std::mem::replace(&mut self.base_dir, new_base);
        self.including.push(canon);
        let r = self.body(None);
        self.including.pop();
        self.base_dir = saved_base;
        self.pending = saved_pending;
        self.lexer = saved_lexer;
        r
    }
}

/// Gives a bare word its meaning: boolean, integer (with size unit), float, or
/// else a string (`127.0.0.1:4222`, `10s`, `localhost` stay strings).
fn classify(word: &str, pos: &Pos) -> Result<Value, ParseError> {
    match word.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => return Ok(Value::Bool(true)),
        "false" | "no" | "off" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let digits_end = word
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(word.len(), |(i, _)| i);
    let (num, suffix) = word.split_at(digits_end);
    if num.is_empty() || num == "-" {
        return Ok(Value::String(word.to_string()));
    }
    // nats-server: K/M/G are powers of 1000, KB/MB/GB powers of 1024.
    let mult: i64 = match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1_000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => {
            if looks_like_float(word) {
                if let Ok(f) = word.parse::<f64>() {
                    return Ok(Value::Float(f));
                }
            }
            return Ok(Value::String(word.to_string()));
        }
    };
    let range_err = || ParseError::IntegerRange {
        pos: pos.clone(),
        text: word.to_string(),
    };
    let n: i64 = num.parse().map_err(|_| range_err())?;
    n.checked_mul(mult)
        .map(Value::Integer)
        .ok_or_else(range_err)
}

fn looks_like_float(w: &str) -> bool {
    let body = w.strip_prefix('-').unwrap_or(w);
    let mut parts = body.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'e' | b'E' | b'-' | b'+'))
}
