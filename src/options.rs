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
        }
    }
}
