//! Endpoints for what natrium does not have — clustering (`/routez`),
//! gateways (`/gatewayz`) and JetStream (`/jsz`) — answered in nats-server's
//! shapes with the honest empty values, so dashboards and surveyors that poll
//! them see "none configured" instead of a 404; and `/leafz`, the leaf links
//! in the same small shape. (`/accountz` is real now: `accountz.rs`.)
//!
//! Owns only these response shapes; it reads the server's identity and, for
//! `/leafz`, the leaf link registry. Must not change any state.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::varz;
use crate::state::ServerState;
use crate::time as timefmt;

/// `/routez`: always zero routes.
#[derive(Debug, Serialize)]
pub struct Routez {
    pub server_id: String,
    pub server_name: String,
    pub now: String,
    pub num_routes: u64,
    pub routes: Vec<serde_json::Value>,
}

/// `/gatewayz`: no gateways either way.
#[derive(Debug, Serialize)]
pub struct Gatewayz {
    pub server_id: String,
    pub now: String,
    pub outbound_gateways: BTreeMap<String, serde_json::Value>,
    pub inbound_gateways: BTreeMap<String, serde_json::Value>,
}

/// `/leafz`: the leaf links (nats-server writes `null` for an empty list).
#[derive(Debug, Serialize)]
pub struct Leafz {
    pub server_id: String,
    pub now: String,
    pub leafnodes: u64,
    pub leafs: Option<Vec<serde_json::Value>>,
}

/// `/jsz`: JetStream disabled, as nats-server reports it when not enabled.
#[derive(Debug, Serialize)]
pub struct Jsz {
    pub server_id: String,
    pub now: String,
    pub disabled: bool,
    pub config: JszConfig,
    pub memory: u64,
    pub storage: u64,
    pub reserved_memory: u64,
    pub reserved_storage: u64,
    pub accounts: u64,
    pub ha_assets: u64,
    pub api: JszApi,
    pub streams: u64,
    pub consumers: u64,
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct JszConfig {
    pub max_memory: u64,
    pub max_storage: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct JszApi {
    pub total: u64,
    pub errors: u64,
}

fn now() -> String {
    timefmt::rfc3339(SystemTime::now())
}

pub(crate) fn routez(s: &ServerState) -> Routez {
    Routez {
        server_id: s.server_id.clone(),
        server_name: varz::server_name(s),
        now: now(),
        num_routes: 0,
        routes: Vec::new(),
    }
}

pub(crate) fn gatewayz(s: &ServerState) -> Gatewayz {
    Gatewayz {
        server_id: s.server_id.clone(),
        now: now(),
        outbound_gateways: BTreeMap::new(),
        inbound_gateways: BTreeMap::new(),
    }
}

/// `/leafz` with the links up now, in nats-server's per-leaf fields.
pub(crate) fn leafz(s: &ServerState) -> Leafz {
    let links = s.leafs.list();
    let leafs: Vec<serde_json::Value> = links
        .iter()
        .map(|l| {
            let c = l.conn.snapshot(false);
            serde_json::json!({
                "name": l.remote_name,
                "is_spoke": l.solicited,
                "account": l.conn.account_name(),
                "ip": c.ip,
                "port": c.port,
                "rtt": format!("{:?}", c.rtt),
                "in_msgs": c.in_msgs,
                "out_msgs": c.out_msgs,
                "in_bytes": c.in_bytes,
                "out_bytes": c.out_bytes,
                "subscriptions": l.remote.lock().len(),
                "compression": "off",
            })
        })
        .collect();
    Leafz {
        server_id: s.server_id.clone(),
        now: now(),
        leafnodes: leafs.len() as u64,
        leafs: (!leafs.is_empty()).then_some(leafs),
    }
}

pub(crate) fn jsz(s: &ServerState) -> Jsz {
    Jsz {
        server_id: s.server_id.clone(),
        now: now(),
        disabled: true,
        config: JszConfig::default(),
        memory: 0,
        storage: 0,
        reserved_memory: 0,
        reserved_storage: 0,
        accounts: 0,
        ha_assets: 0,
        api: JszApi::default(),
        streams: 0,
        consumers: 0,
        messages: 0,
        bytes: 0,
    }
}
