//! The exact `-ERR` texts nats-server sends, and the parser's error type.
//!
//! Owns the wording clients and test harnesses match on; it must not decide
//! whether a connection closes (the client module does, from `closes()`).

/// `-ERR` texts, spelled (and cased) exactly as the reference server sends them.
pub mod text {
    pub const UNKNOWN_OP: &str = "Unknown Protocol Operation";
    pub const MAX_CONTROL_LINE: &str = "maximum control line exceeded";
    pub const MAX_PAYLOAD: &str = "Maximum Payload Violation";
    pub const AUTH_VIOLATION: &str = "Authorization Violation";
    pub const AUTH_TIMEOUT: &str = "Authentication Timeout";
    pub const MAX_CONNECTIONS: &str = "maximum connections exceeded";
    pub const STALE_CONNECTION: &str = "Stale Connection";
    pub const TLS_REQUIRED: &str = "Secure Connection - TLS Required";
    pub const INVALID_PROTOCOL: &str = "invalid client protocol";
    pub const NO_RESPONDERS_HEADERS: &str = "no responders requires headers support";
    pub const INVALID_SUBJECT: &str = "Invalid Subject";
    pub const INVALID_PUB_SUBJECT: &str = "Invalid Publish Subject";
    pub const MAX_SUBSCRIPTIONS: &str = "maximum subscriptions exceeded";
}

/// Why the parser refused the input. Every variant ends the connection; the
/// `err_text` says whether the client is told why (`Some`) or just closed (`None`),
/// matching the reference server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("unknown protocol operation")]
    UnknownOp,
    #[error("control line longer than {0} bytes")]
    ControlLineTooLong(usize),
    #[error("payload of {size} bytes over max_payload {max}")]
    PayloadTooLarge { size: usize, max: usize },
    #[error("malformed {op} arguments")]
    BadArgs { op: &'static str },
    #[error("payload not followed by CRLF")]
    BadPayloadEnd,
    /// The client sent `-ERR`; the reference closes it without a reply.
    #[error("client sent -ERR")]
    ClientErr,
}

impl ProtocolError {
    /// The `-ERR` text sent before closing, or `None` when the reference server
    /// closes silently (malformed arguments).
    pub fn err_text(&self) -> Option<&'static str> {
        match self {
            ProtocolError::UnknownOp | ProtocolError::BadPayloadEnd => Some(text::UNKNOWN_OP),
            ProtocolError::ControlLineTooLong(_) => Some(text::MAX_CONTROL_LINE),
            ProtocolError::PayloadTooLarge { .. } => Some(text::MAX_PAYLOAD),
            ProtocolError::BadArgs { .. } | ProtocolError::ClientErr => None,
        }
    }
}
