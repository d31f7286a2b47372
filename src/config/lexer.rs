//! Lexer for the NATS configuration language: turns text into positioned tokens.
//!
//! Owns tokenisation only (strings, words, punctuation, comments, line/column
//! tracking). It does not decide what a bare word means (number, bool, string:
//! that is the parser) and never touches `Options`. The grammar is context
//! sensitive (`:` ends a key but is part of the value `127.0.0.1:4222`), so the
//! parser asks for the next token in [`Mode::Key`] or [`Mode::Value`].

use std::fmt;
use std::sync::Arc;

/// A place in a config file, so errors and warnings can point at the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file the text came from; `None` for text given directly to `parse_str`.
    pub file: Option<Arc<str>>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

impl Pos {
    /// `line:col` without the file name, for "opened at 1:8" style references.
    pub fn short(&self) -> String {
        format!("{}:{}", self.line, self.col)
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{}:{}", file, self.line, self.col),
            None => write!(f, "{}:{}", self.line, self.col),
        }
    }
}

/// What a token is; quoted strings and bare words are kept apart because only
/// bare words are interpreted as numbers, booleans or directives.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    /// `=` or `:` between a key and its value.
    Assign,
    Comma,
    Semicolon,
    Newline,
    /// A `"..."` (escapes processed) or `'...'` (raw) string.
    Quoted(String),
    /// An unquoted run of characters.
    Word(String),
    /// `$NAME` in value position.
    Variable(String),
    Eof,
}

impl Tok {
    /// How the token reads in an error message ("found ...").
    pub fn describe(&self) -> String {
        match self {
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Assign => "'=' or ':'".into(),
            Tok::Comma => "','".into(),
            Tok::Semicolon => "';'".into(),
            Tok::Newline => "end of line".into(),
            Tok::Quoted(s) => format!("string \"{s}\""),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Variable(v) => format!("variable ${v}"),
            Tok::Eof => "end of file".into(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// Whether a bare word is being read as a key (ends at `=`, `:`, `{`...) or as a
/// value (may contain `:`, `=`, `/`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Key,
    Value,
}

/// Lexical errors; each carries the position of the offending text.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LexError {
    #[error("{pos}: unterminated string, expected closing {quote}")]
    UnterminatedString { pos: Pos, quote: char },
    #[error("{pos}: invalid escape sequence '\\{found}' in string")]
    InvalidEscape { pos: Pos, found: String },
    #[error("{pos}: expected a variable name after '$'")]
    EmptyVariable { pos: Pos },
}

/// A cursor over config text that produces tokens on demand.
pub struct Lexer {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    file: Option<Arc<str>>,
}

impl Lexer {
    /// Starts lexing `text`; `file` names it in positions (None for inline text).
    pub fn new(text: &str, file: Option<Arc<str>>) -> Self {
        Lexer {
            chars: text.chars().collect(),
            i: 0,
            line: 1,
            col: 1,
            file,
        }
    }

    /// The current position (where the next character is).
    pub fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    fn peek_at(&self, off: usize) -> Option<char> {
        self.chars.get(self.i + off).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.i).copied()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// Skips spaces, tabs, carriage returns and comments, stopping before a newline.
    fn skip_blank(&mut self) {
        while let Some(c) = self.peek_at(0) {
            match c {
                ' ' | '\t' | '\r' => {
                    self.bump();
                }
                '#' => self.skip_comment(),
                '/' if self.peek_at(1) == Some('/') => self.skip_comment(),
                _ => break,
            }
        }
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek_at(0) {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    /// Consumes the optional `=`/`:` after a key together with surrounding blanks,
    /// so `k = v`, `k: v` and `k v` all leave the cursor at the value.
    pub fn skip_separator(&mut self) {
        self.skip_blank();
        if matches!(self.peek_at(0), Some('=') | Some(':')) {
            self.bump();
        }
        self.skip_blank();
    }

    /// Reads the next token; bare words end differently in key and value mode.
    pub fn next_token(&mut self, mode: Mode) -> Result<Token, LexError> {
        self.skip_blank();
        let pos = self.pos();
        let Some(c) = self.peek_at(0) else {
            return Ok(Token { tok: Tok::Eof, pos });
        };
        let single = match c {
            '\n' => Some(Tok::Newline),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            ';' => Some(Tok::Semicolon),
            '=' | ':' if mode == Mode::Key => Some(Tok::Assign),
            _ => None,
        };
        if let Some(tok) = single {
            self.bump();
            return Ok(Token { tok, pos });
        }
        let tok = match c {
            '"' => Tok::Quoted(self.double_quoted(&pos)?),
            '\'' => Tok::Quoted(self.single_quoted(&pos)?),
            '$' if mode == Mode::Value => {
                self.bump();
                let name = self.word(mode);
                // nats-server keeps unquoted bcrypt hashes ($2a$...) as strings.
                if name.starts_with("2a$") || name.starts_with("2b$") {
                    Tok::Word(format!("${name}"))
                } else if name.is_empty() {
                    return Err(LexError::EmptyVariable { pos });
                } else {
                    Tok::Variable(name)
                }
            }
            _ => Tok::Word(self.word(mode)),
        };
        Ok(Token { tok, pos })
    }

    fn word(&mut self, mode: Mode) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek_at(0) {
            let end = match c {
                ' ' | '\t' | '\r' | '\n' | ',' | ';' | '}' | ']' => true,
                '=' | ':' | '{' | '[' | '#' | '"' | '\'' => mode == Mode::Key,
                '/' => mode == Mode::Key && self.peek_at(1) == Some('/'),
                _ => false,
            };
            if end {
                break;
            }
            out.push(c);
            self.bump();
        }
        out
    }

    fn single_quoted(&mut self, start: &Pos) -> Result<String, LexError> {
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(LexError::UnterminatedString {
                        pos: start.clone(),
                        quote: '\'',
                    })
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self, start: &Pos) -> Result<String, LexError> {
        self.bump();
        let mut out = String::new();
        loop {
            let esc_pos = self.pos();
            match self.bump() {
                None => {
                    return Err(LexError::UnterminatedString {
                        pos: start.clone(),
                        quote: '"',
                    })
                }
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.escape(esc_pos)?),
                Some(c) => out.push(c),
            }
        }
    }

    fn escape(&mut self, pos: Pos) -> Result<char, LexError> {
        let c = self.bump().ok_or_else(|| LexError::UnterminatedString {
            pos: pos.clone(),
            quote: '"',
        })?;
        Ok(match c {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            '/' => '/',
            'u' => {
                let mut hex = String::new();
                for _ in 0..4 {
                    match self.peek_at(0) {
                        Some(h) if h.is_ascii_hexdigit() => {
                            hex.push(h);
                            self.bump();
                        }
                        _ => break,
                    }
                }
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or(LexError::InvalidEscape {
                        pos,
                        found: format!("u{hex}"),
                    })?
            }
            other => {
                return Err(LexError::InvalidEscape {
                    pos,
                    found: other.to_string(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str, mode: Mode) -> Vec<Tok> {
        let mut lx = Lexer::new(text, None);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token(mode).map(|t| t.tok);
            match t {
                Ok(Tok::Eof) => return out,
                Ok(t) => out.push(t),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn value_words_keep_colons_and_slashes() {
        assert_eq!(
            toks("127.0.0.1:4222 nats://a:1", Mode::Value),
            vec![
                Tok::Word("127.0.0.1:4222".into()),
                Tok::Word("nats://a:1".into())
            ]
        );
    }

    #[test]
    fn key_words_stop_at_separators() {
        assert_eq!(
            toks("a:b=c", Mode::Key),
            vec![
                Tok::Word("a".into()),
                Tok::Assign,
                Tok::Word("b".into()),
                Tok::Assign,
                Tok::Word("c".into())
            ]
        );
    }

    #[test]
    fn strings_comments_and_positions() {
        let mut lx = Lexer::new("# c\n  \"a\\tb\\u0041\" // x\n'r\\n'", None);
        assert_eq!(lx.next_token(Mode::Value).map(|t| t.tok), Ok(Tok::Newline));
        let t = lx.next_token(Mode::Value);
        assert_eq!(
            t,
            Ok(Token {
                tok: Tok::Quoted("a\tbA".into()),
                pos: Pos {
                    file: None,
                    line: 2,
                    col: 3
                }
            })
        );
        assert_eq!(lx.next_token(Mode::Value).map(|t| t.tok), Ok(Tok::Newline));
        let t = lx.next_token(Mode::Value).map(|t| t.tok);
        assert_eq!(t, Ok(Tok::Quoted("r\\n".into())));
    }

    #[test]
    fn unterminated_string_points_at_quote() {
        let mut lx = Lexer::new("  \"abc", None);
        let err = lx.next_token(Mode::Value).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("1:3: unterminated string, expected closing \"")
        );
    }

    #[test]
    fn variables_and_bcrypt() {
        assert_eq!(
            toks("$FOO $2a$11$abc", Mode::Value),
            vec![Tok::Variable("FOO".into()), Tok::Word("$2a$11$abc".into())]
        );
    }
}
