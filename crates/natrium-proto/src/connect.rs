//! The CONNECT options a client declares, parsed once per connection.
//!
//! Owns the JSON shape only; it must not decide what the server does with the
//! options (auth, protocol checks) — the client module does.

use serde::Deserialize;

/// CONNECT JSON. Unknown fields are ignored, as by nats-server; missing ones take
/// nats-server's defaults: `verbose`, `pedantic` and `echo` on (every real client
/// sends the first two explicitly).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct ConnectInfo {
    pub verbose: bool,
    pub pedantic: bool,
    pub echo: bool,
    pub tls_required: bool,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth_token: Option<String>,
    pub nkey: Option<String>,
    pub sig: Option<String>,
    pub jwt: Option<String>,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    pub protocol: i64,
    pub account: Option<String>,
    pub headers: bool,
    pub no_responders: bool,
}

impl Default for ConnectInfo {
    fn default() -> Self {
        ConnectInfo {
            verbose: true,
            pedantic: true,
            echo: true,
            tls_required: false,
            user: None,
            pass: None,
            auth_token: None,
            nkey: None,
            sig: None,
            jwt: None,
            name: None,
            lang: None,
            version: None,
            protocol: 0,
            account: None,
            headers: false,
            no_responders: false,
        }
    }
}

impl ConnectInfo {
    /// Parses the JSON after `CONNECT`; any syntax or type error is `None`
    /// (the reference closes such a connection without an `-ERR`).
    pub fn parse(json: &[u8]) -> Option<ConnectInfo> {
        serde_json::from_slice(json).ok()
    }
}
