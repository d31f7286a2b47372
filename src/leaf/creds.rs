//! The leaf's proof of identity for a hub that asks for a signature: a
//! remote's `nkey` seed or its `credentials` file (a user JWT and a seed), and
//! the signature of the hub's INFO nonce that CONNECT carries (`nkey` or `jwt`,
//! and `sig`, unpadded base64url as nats-server sends it).
//!
//! Owns reading and parsing creds files, seeds and signing. Must not send
//! anything nor decide what a failure means for the link (the dialler logs it
//! and backs off; config loading turns it into a positioned error).

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;

use crate::options::LeafRemote;

/// Why a remote's credentials cannot be used. Never carries the seed itself.
#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    #[error("reading credentials file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "credentials file {path} is malformed: no user JWT block (-----BEGIN NATS USER JWT-----)"
    )]
    NoJwt { path: String },
    #[error("credentials file {path} is malformed: no nkey seed block after the JWT (-----BEGIN USER NKEY SEED-----)")]
    NoSeed { path: String },
    #[error(
        "credentials file {path}, line {line}: the user JWT is not a JWT (header.claims.signature)"
    )]
    BadJwt { path: String, line: usize },
    #[error("credentials file {path}, line {line}: malformed nkey seed")]
    BadCredsSeed { path: String, line: usize },
    #[error("nkey is not a valid user seed (SU...)")]
    BadSeed,
    #[error("signing the nonce: {0}")]
    Sign(String),
}

/// What CONNECT carries to prove who we are (all absent without `nkey` or
/// `credentials`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The user JWT, from a creds file.
    pub jwt: Option<String>,
    /// The public user key, with a bare `nkey` seed.
    pub nkey: Option<String>,
    /// The nonce signed with the seed, unpadded base64url.
    pub sig: Option<String>,
}

/// A user JWT and the seed that signs for it, as read from a creds file.
pub struct Creds {
    pub jwt: String,
    key: KeyPair,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("jwt", &self.jwt)
            .field("public_key", &self.key.public_key())
            .finish()
    }
}

/// A `nkey` seed as a key pair; it must be a user seed (`SU…`), as
/// nats-server requires of a remote's `nkey`.
pub fn user_seed(seed: &str) -> Result<KeyPair, CredsError> {
    let key = KeyPair::from_seed(seed.trim()).map_err(|_| CredsError::BadSeed)?;
    if !key.public_key().starts_with('U') {
        return Err(CredsError::BadSeed);
    }
    Ok(key)
}

/// `~/` at the start of a path is the home directory, as nats-server expands.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Reads and parses a creds file.
pub fn load(path: &Path) -> Result<Creds, CredsError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

fn is_delimiter(line: &str) -> bool {
    line.len() >= 6 && line.starts_with("---") && line.ends_with("---")
}

/// The creds format: blocks between `-----BEGIN …-----` / `------END …------`
/// lines; the first is the user JWT, the second the seed (text outside the
/// blocks, such as nsc's warning, is ignored).
fn parse(text: &str, path: &str) -> Result<Creds, CredsError> {
    let mut blocks: Vec<(String, usize)> = Vec::new();
    let mut open: Option<(String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        let Some((mut content, mut first)) = open.take() else {
            if is_delimiter(line) {
                open = Some((String::new(), n));
            }
            continue;
        };
        if is_delimiter(line) {
            if !content.is_empty() {
                blocks.push((content, first));
            }
            if blocks.len() == 2 {
                break;
            }
            continue;
        }
        if !line.is_empty() {
            if content.is_empty() {
                first = n;
            }
            content.push_str(line);
        }
        open = Some((content, first));
    }
    let mut blocks = blocks.into_iter();
    let path = path.to_string();
    let (jwt, jwt_line) = blocks
        .next()
        .ok_or_else(|| CredsError::NoJwt { path: path.clone() })?;
    if jwt.split('.').count() != 3 || jwt.split('.').any(str::is_empty) {
        return Err(CredsError::BadJwt {
            path,
            line: jwt_line,
        });
    }
    let (seed, seed_line) = blocks
        .next()
        .ok_or_else(|| CredsError::NoSeed { path: path.clone() })?;
    let key = KeyPair::from_seed(&seed).map_err(|_| CredsError::BadCredsSeed {
        path,
        line: seed_line,
    })?;
    Ok(Creds { jwt, key })
}

fn sign(key: &KeyPair, nonce: &[u8]) -> Result<String, CredsError> {
    let sig = key
        .sign(nonce)
        .map_err(|e| CredsError::Sign(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(sig))
}

/// The proof for one CONNECT: a creds file takes precedence over `nkey`, as in
/// nats-server; the file is read now, so a rotated one is used at the next
/// dial. `nonce` is the hub's INFO nonce as sent (empty when it sent none).
pub fn prove(remote: &LeafRemote, nonce: &[u8]) -> Result<Proof, CredsError> {
    if let Some(path) = &remote.credentials {
        let creds = load(path)?;
        return Ok(Proof {
            sig: Some(sign(&creds.key, nonce)?),
            jwt: Some(creds.jwt),
            nkey: None,
        });
    }
    if let Some(seed) = &remote.nkey {
        let key = user_seed(seed)?;
        return Ok(Proof {
            sig: Some(sign(&key, nonce)?),
            nkey: Some(key.public_key()),
            jwt: None,
        });
    }
    Ok(Proof::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds_text(jwt: &str, seed: &str) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        )
    }

    #[test]
    fn creds_file_parses_and_signs_the_nonce() {
        let kp = KeyPair::new_user();
        let seed = kp.seed().expect("seed");
        let creds = parse(&creds_text("aaa.bbb.ccc", &seed), "x.creds").expect("parses");
        assert_eq!(creds.jwt, "aaa.bbb.ccc");
        let sig = sign(&creds.key, b"nonce").expect("sign");
        let raw = URL_SAFE_NO_PAD.decode(sig).expect("base64url raw");
        kp.verify(b"nonce", &raw)
            .expect("verifies with the public key");
    }

    #[test]
    fn creds_errors_say_what_and_where() {
        let seed = KeyPair::new_user().seed().expect("seed");
        let err = parse("nothing here\n", "a.creds").expect_err("no blocks");
        assert!(err.to_string().contains("no user JWT block"), "{err}");
        let only_jwt = "-----BEGIN NATS USER JWT-----\na.b.c\n------END NATS USER JWT------\n";
        let err = parse(only_jwt, "a.creds").expect_err("no seed");
        assert!(err.to_string().contains("no nkey seed block"), "{err}");
        let err = parse(&creds_text("notajwt", &seed), "a.creds").expect_err("bad jwt");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = parse(&creds_text("a.b.c", "SUBOGUS"), "a.creds").expect_err("bad seed");
        assert!(
            err.to_string()
                .contains("a.creds, line 9: malformed nkey seed"),
            "{err}"
        );
        assert!(
            !err.to_string().contains("SUBOGUS"),
            "never echoes the seed"
        );
    }

    #[test]
    fn nkey_proof_carries_the_public_key() {
        let kp = KeyPair::new_user();
        let remote = LeafRemote {
            nkey: Some(kp.seed().expect("seed")),
            ..LeafRemote::default()
        };
        let p = prove(&remote, b"abc").expect("proof");
        assert_eq!(p.nkey.as_deref(), Some(kp.public_key().as_str()));
        assert!(p.jwt.is_none());
        let raw = URL_SAFE_NO_PAD.decode(p.sig.expect("sig")).expect("b64");
        kp.verify(b"abc", &raw).expect("verifies");
        assert!(user_seed(&KeyPair::new_account().seed().expect("seed")).is_err());
        assert!(prove(&LeafRemote::default(), b"n").expect("none") == Proof::default());
    }
}
