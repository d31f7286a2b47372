//! The server's INFO, serialised once and reused for every connection.
//!
//! Owns the INFO JSON shape. It must not hold connection state: per-client fields
//! (`client_id`, `client_ip`) are appended to the cached prefix at connect time.

use serde::Serialize;

/// The fields nats-server puts in INFO that clients read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerInfo {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: u32,
    pub go: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_verify: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_available: bool,
    pub max_payload: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ldm: bool,
}

impl ServerInfo {
    /// `INFO {...` without the closing brace: the shared part of every INFO line.
    pub fn prefix(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        json.pop(); // the closing '}', re-added after the per-client fields
        let mut line = b"INFO ".to_vec();
        line.extend_from_slice(&json);
        line
    }

    /// The full INFO line for one client (ends with a space before CRLF, as the
    /// reference does).
    pub fn line_for_client(
        prefix: &[u8],
        client_id: u64,
        client_ip: &str,
        nonce: Option<&str>,
    ) -> Vec<u8> {
        let mut line = Vec::with_capacity(prefix.len() + 96);
        line.extend_from_slice(prefix);
        line.extend_from_slice(b",\"client_id\":");
        line.extend_from_slice(itoa::Buffer::new().format(client_id).as_bytes());
        line.extend_from_slice(b",\"client_ip\":");
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        line.extend_from_slice(quote(client_ip).as_bytes());
        if let Some(n) = nonce {
            line.extend_from_slice(b",\"nonce\":");
            line.extend_from_slice(quote(n).as_bytes());
        }
        line.extend_from_slice(b"} \r\n");
        line
    }
}
