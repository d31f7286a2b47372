//! Server options: every tunable the server reads, with nats-server's defaults.
//!
//! Owns the `Options` value and its defaults only. It does not parse command lines
//! (that is `bin/natrium.rs`) or config files (that is `config`), and holds no
//! runtime state.

use std::path::PathBuf;
use std::time::Duration;

/// Default client port, as nats-server.
pub const DEFAULT_PORT: u16 = 4222;
/// Default maximum length of a control line (op + arguments), in bytes.
pub const DEFAULT_MAX_CONTROL_LINE: usize = 4096;
/// Default maximum payload, 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
/// Default outbound bytes a client may have pending before it is a slow consumer.
pub const DEFAULT_MAX_PENDING: usize = 64 * 1024 * 1024;
/// Default cap on concurrent client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64 * 1024;

/// One user of the `authorization { users = [...] }` block (used by auth).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserConfig {
    pub user: Option<String>,
    pub password: Option<String>,
    pub nkey: Option<String>,
    pub permissions: Option<Permissions>,
    /// The account the user belongs to (`accounts { NAME { users } }`);
    /// `None` is the global account `$G`.
    pub account: Option<String>,
}

/// The global account: users and links outside any `accounts` block.
pub const GLOBAL_ACCOUNT: &str = "$G";
/// The system account's name when `system_account` is not set.
pub const DEFAULT_SYSTEM_ACCOUNT: &str = "$SYS";

/// Stream (one-way) or service (request/reply) export or import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareKind {
    Stream,
    Service,
}

impl ShareKind {
    /// The config key naming it (`stream` / `service`), as in nats-server's
    /// messages and `/accountz`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShareKind::Stream => "stream",
            ShareKind::Service => "service",
        }
    }
}

/// How many responses a service import's reply mapping lets through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResponseType {
    /// One response, then the mapping is gone.
    #[default]
    Singleton,
    /// Any number of responses until the mapping times out.
    Stream,
    /// As `Stream`: a response in several messages.
    Chunked,
}

/// One `exports = [ ... ]` entry of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    pub kind: ShareKind,
    pub subject: String,
    /// `accounts = [ ... ]`: only these may import; `None` is public.
    pub accounts: Option<Vec<String>>,
    pub response: ResponseType,
}

/// One `imports = [ ... ]` entry of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportConfig {
    pub kind: ShareKind,
    /// The exporting account.
    pub account: String,
    /// The subject as the exporter names it.
    pub subject: String,
    /// Stream: the subject it arrives on here; service: the subject clients
    /// here publish to (default: `subject`).
    pub to: Option<String>,
    /// Stream only: prepended (with a dot) to the exporter's subject.
    pub prefix: Option<String>,
    /// Where it was configured (`file:line:col`), for errors found later.
    pub origin: String,
}

impl ImportConfig {
    /// The subject as clients of the importing account see it: a stream
    /// arrives on `prefix.subject`, else on `to`, else on `subject`; a
    /// service is published to on `to`, else on `subject`.
    pub fn local_subject(&self) -> String {
        match (&self.prefix, &self.to) {
            (Some(p), _) => format!("{}.{}", p.trim_end_matches('.'), self.subject),
            (None, Some(t)) => t.clone(),
            (None, None) => self.subject.clone(),
        }
    }
}

/// One `accounts { NAME { ... } }` entry (its users are in `Options::users`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountConfig {
    pub name: String,
    pub exports: Vec<ExportConfig>,
    pub imports: Vec<ImportConfig>,
    pub origin: String,
}

/// Publish/subscribe allow and deny lists of one user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permissions {
    pub publish_allow: Option<Vec<String>>,
    pub publish_deny: Option<Vec<String>>,
    pub subscribe_allow: Option<Vec<String>>,
    pub subscribe_deny: Option<Vec<String>>,
    pub allow_responses: bool,
}

/// TLS settings (`tls { ... }` block or `--tls*` flags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub verify: bool,
    pub timeout: Option<Duration>,
}

/// Default leaf-node port (`leafnodes { port }`), as nats-server.
pub const DEFAULT_LEAF_PORT: u16 = 7422;

/// TLS of a leaf link (`leafnodes { tls }` for the hub side, a remote's `tls`
/// for the leaf side): kept apart from [`TlsConfig`] because links have two
/// keys client connections do not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeafTls {
    /// Hub side: our certificate, and with `verify` the CA leaves' certificates
    /// must chain to. Leaf side: `cert_file`/`key_file` are the certificate we
    /// present if asked, `ca_file` the CAs the hub's certificate must chain to
    /// (the system's when absent); `verify` means nothing there.
    pub config: TlsConfig,
    /// `insecure` (leaf side): accept any hub certificate; for tests only.
    pub insecure: bool,
    /// `handshake_first`: TLS before the INFO instead of after it (both ends
    /// must agree, as with nats-server).
    pub handshake_first: bool,
}

/// One `leafnodes { remotes = [...] }` entry: a hub this server dials as a leaf.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeafRemote {
    /// `url`/`urls`, tried in turn (`nats-leaf://host:port`, `nats://…`,
    /// `tls://…`, `host:port`).
    pub urls: Vec<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// `nkey`: a user seed (`SU…`); the CONNECT carries its public key and its
    /// signature of the hub's nonce.
    pub nkey: Option<String>,
    /// `credentials`: a NATS creds file (user JWT and seed), read at every
    /// dial as nats-server does, so a rotated file is picked up.
    pub credentials: Option<PathBuf>,
    /// `tls { ... }`: upgrade the link (also done without it when the hub's
    /// INFO says `tls_required`, then with the system's CAs).
    pub tls: Option<LeafTls>,
    /// `account` (or `local`): the local account the link is bound to
    /// (`None`: `$G`); only its interest and messages cross.
    pub account: Option<String>,
    /// `deny_imports`: subjects the hub must not send us; interest inside
    /// them is not told and messages on them are dropped. Also sent to the
    /// hub (CONNECT `deny_pub`), as nats-server does.
    pub deny_imports: Vec<String>,
    /// `deny_exports`: subjects we never send the hub, whatever it asks for.
    pub deny_exports: Vec<String>,
}

/// One `leafnodes { authorization { users = [ ... ] } }` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafUser {
    pub user: String,
    /// Plain or bcrypt.
    pub password: String,
    /// The account its links are bound to (`None`: the block's, else `$G`).
    pub account: Option<String>,
}

/// A remote's URL taken apart: where to dial and any credentials in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafUrl {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Parses `nats-leaf://[user[:pass]@]host[:port]` (also `nats://` and
/// `tls://`; `ws://`/`wss://` are refused: not supported; a bare `host:port`
/// is taken).
/// The port defaults to 7422.
pub fn parse_leaf_url(u: &str) -> Option<LeafUrl> {
    let rest = match u.split_once("://") {
        // `tls://` does not by itself turn TLS on: as nats-server, a `tls`
        // block or the hub's `tls_required` does.
        Some(("nats-leaf" | "nats" | "tls", rest)) => rest,
        Some(_) => return None,
        None => u,
    };
    let rest = rest.trim_end_matches('/');
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let (user, password) = match auth {
        Some(a) => match a.split_once(':') {
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
            None => (Some(a.to_string()), None),
        },
        None => (None, None),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, p) = v6.split_once(']')?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => DEFAULT_LEAF_PORT,
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (hostport.to_string(), DEFAULT_LEAF_PORT),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(LeafUrl {
        host,
        port,
        user,
        password,
    })
}

/// The `leafnodes { ... }` block: remotes to solicit, and whether to accept.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafOptions {
    pub host: String,
    /// Accept leaf connections on this port (`None`: do not listen; 0: any).
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// `authorization { nkey }`: the public user key (`U…`) a leaf must sign
    /// our INFO's nonce with (nats-server 2.11+).
    pub nkey: Option<String>,
    /// `authorization { users = [ { user, password, account } ] }` for leaf links.
    pub users: Vec<LeafUser>,
    /// `authorization { account }`: where links admitted by the single
    /// user, token or nkey go (`None`: `$G`).
    pub account: Option<String>,
    pub auth_timeout: Duration,
    pub remotes: Vec<LeafRemote>,
    /// Delay between reconnect attempts (nats-server's `reconnect`, default 1 s).
    pub reconnect: Duration,
    /// `tls { ... }`: every accepted leaf must upgrade (INFO says
    /// `tls_required`).
    pub tls: Option<LeafTls>,
}

impl Default for LeafOptions {
    fn default() -> Self {
        LeafOptions {
            host: "0.0.0.0".to_string(),
            port: None,
            username: None,
            password: None,
            token: None,
            nkey: None,
            users: Vec::new(),
            account: None,
            auth_timeout: Duration::from_secs(2),
            remotes: Vec::new(),
            reconnect: Duration::from_secs(1),
            tls: None,
        }
    }
}

/// Everything the server can be told; cloned into the server at start and on reload.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub host: String,
    /// Client port; `-1` on the command line becomes 0 here (pick a free port).
    pub port: u16,
    pub server_name: Option<String>,
    pub max_connections: usize,
    pub max_payload: usize,
    pub max_pending: usize,
    pub max_control_line: usize,
    /// 0 means unlimited.
    pub max_subscriptions: usize,
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub write_deadline: Duration,
    pub lame_duck_duration: Duration,
    pub lame_duck_grace_period: Duration,
    pub http_host: String,
    /// Monitoring port; `None` = monitoring off.
    pub http_port: Option<u16>,
    pub debug: bool,
    pub trace: bool,
    pub logtime: bool,
    pub log_file: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub auth_timeout: Duration,
    pub users: Vec<UserConfig>,
    pub no_auth_user: Option<String>,
    pub tls: Option<TlsConfig>,
    /// Leaf nodes: `None` when the block is absent.
    pub leafnodes: Option<LeafOptions>,
    /// `accounts { ... }`; `$G` and the system account exist without an entry.
    pub accounts: Vec<AccountConfig>,
    /// `system_account`; `None` means `$SYS`.
    pub system_account: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "0.0.0.0".to_string(),
            port: DEFAULT_PORT,
            server_name: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_pending: DEFAULT_MAX_PENDING,
            max_control_line: DEFAULT_MAX_CONTROL_LINE,
            max_subscriptions: 0,
            ping_interval: Duration::from_secs(120),
            ping_max: 2,
            write_deadline: Duration::from_secs(10),
            lame_duck_duration: Duration::from_secs(120),
            lame_duck_grace_period: Duration::from_secs(10),
            http_host: "0.0.0.0".to_string(),
            http_port: None,
            debug: false,
            trace: false,
            logtime: true,
            log_file: None,
            pid_file: None,
            config_file: None,
            username: None,
            password: None,
            token: None,
            auth_timeout: Duration::from_secs(2),
            users: Vec::new(),
            no_auth_user: None,
            tls: None,
            leafnodes: None,
            accounts: Vec::new(),
            system_account: None,
        }
    }
}
