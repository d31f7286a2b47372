//! The system account's own client: answers `$SYS.REQ.SERVER.…` and
//! `$SYS.REQ.ACCOUNT.<acc>.…` requests with the same JSON as the HTTP
//! endpoints (wrapped as nats-server's `ServerAPIResponse`), and announces
//! client connects and disconnects on `$SYS.ACCOUNT.<acc>.CONNECT|DISCONNECT`,
//! so `nats server list|info|ping` and event subscribers work against natrium.
//!
//! Owns the request subjects, the reply and event shapes, and one task that
//! publishes through the ordinary fan-out as the internal client. Requests
//! reach it through the account routes (`account::Route::System`), events
//! through `Accounts::event`; both are bounded and dropped when it is behind.
//! Must not touch the message hot path or hold a lock across an `.await`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{absent, accountz, connz, subsz, varz, Monitor, QueryMap};
use crate::account::{Account, Route, SysMsg, SysRequest, SystemKind};
use crate::client::{Fanout, Message};
use crate::conn::{ConnShared, ConnSnapshot};
use crate::protocol::PubArgs;
use crate::state::ServerState;
use crate::time::rfc3339;

/// Requests and events waiting for the task; more are dropped (a flood of
/// requests must not grow memory, and events are advisory).
const QUEUE: usize = 4096;

/// nats-server's `ServerInfo`, the `server` of every answer and event.
#[derive(Debug, Serialize)]
pub struct ServerInfo {
    pub name: String,
    pub host: String,
    pub id: String,
    pub ver: String,
    pub jetstream: bool,
    pub flags: u64,
    pub seq: u64,
    pub time: String,
}

/// The body of a request: nats-server's `EventFilterOptions` (a server that
/// does not match stays silent) plus the endpoint's own options.
#[derive(Debug, Default, Deserialize)]
struct Filter {
    #[serde(default)]
    server_name: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    exact_match: bool,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    domain: String,
}

/// Starts the system task once (later calls do nothing) and subscribes its
/// request subjects in the system account.
pub fn start(state: &Arc<ServerState>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    if state.accounts.system_tx.set(tx).is_err() {
        return;
    }
    let accounts = &state.accounts;
    let sys = accounts.system().clone();
    let id = state.server_id.clone();
    accounts.add_fixed_route(
        &sys,
        "$SYS.REQ.SERVER.PING",
        Route::System {
            kind: SystemKind::Statsz,
            ping: true,
            account: None,
        },
    );
    for (kind, name) in SystemKind::ALL {
        for (subject, ping) in [
            (format!("$SYS.REQ.SERVER.PING.{name}"), true),
            (format!("$SYS.REQ.SERVER.{id}.{name}"), false),
        ] {
            let route = Route::System {
                kind,
                ping,
                account: None,
            };
            accounts.add_fixed_route(&sys, &subject, route);
        }
    }
    for (kind, name) in [
        (SystemKind::Connz, "CONNZ"),
        (SystemKind::Subsz, "SUBSZ"),
        (SystemKind::Leafz, "LEAFZ"),
        (SystemKind::Statsz, "STATZ"),
    ] {
        let subject = format!("$SYS.REQ.ACCOUNT.*.{name}");
        let route = Route::System {
            kind,
            ping: false,
            account: None,
        };
        accounts.add_fixed_route(&sys, &subject, route);
    }
    let mon = Monitor::new(state.clone(), None);
    tokio::spawn(run(mon, rx));
}

struct Task {
    mon: Monitor,
    fanout: Fanout,
    seq: AtomicU64,
    /// Where the request being answered wants its reply published.
    reply_acc: Arc<Account>,
}

async fn run(mon: Monitor, mut rx: mpsc::Receiver<SysMsg>) {
    let reply_acc = mon.server.accounts.system().clone();
    let mut task = Task {
        mon,
        fanout: Fanout::new(0x5359_5354_454D),
        seq: AtomicU64::new(0),
        reply_acc,
    };
    while let Some(m) = rx.recv().await {
        match m {
            SysMsg::Request(req) => task.answer(&req),
            SysMsg::Connect(c) => task.connect_event(&c),
            SysMsg::Disconnect(snap) => task.disconnect_event(&snap),
        }
    }
}

impl Task {
    fn srv(&self) -> &Arc<ServerState> {
        &self.mon.server
    }

    fn server_info(&self) -> ServerInfo {
        let s = self.srv();
        ServerInfo {
            name: varz::server_name(s),
            host: s.opts().host.clone(),
            id: s.server_id.clone(),
            ver: crate::server::VERSION.to_string(),
            jetstream: false,
            flags: 0,
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            time: rfc3339(SystemTime::now()),
        }
    }

    /// Is this server the one a `PING` body names? (nats-server's `filterRequest`.)
    fn filtered_out(&self, f: &Filter) -> bool {
        let s = self.srv();
        let name = varz::server_name(s);
        let host = s.opts().host.clone();
        let differs = |want: &str, have: &str| {
            !want.is_empty()
                && if f.exact_match {
                    want != have
                } else {
                    !have.contains(want)
                }
        };
        differs(&f.server_name, &name)
            || differs(&f.host, &host)
            || differs(&f.cluster, "")
            || !f.tags.is_empty()
            || !f.domain.is_empty()
    }

    fn answer(&mut self, req: &SysRequest) {
        if req.reply.is_empty() {
            return;
        }
        // An account's own system import is answered in that account (where
        // its requester's inbox is); the system account's requests in it.
        let srv = self.srv().clone();
        self.reply_acc = req
            .account
            .as_deref()
            .and_then(|a| srv.accounts.get(a))
            .unwrap_or_else(|| srv.accounts.system().clone());
        let body: Value = if req.payload.is_empty() {
            Value::Object(Default::default())
        } else {
            match serde_json::from_slice(&req.payload) {
                Ok(v) => v,
                Err(e) => {
                    let err = serde_json::json!({
                        "server": self.server_info(),
                        "error": {"code": 400, "description": e.to_string()},
                    });
                    self.reply(&req.reply, &err);
                    return;
                }
            }
        };
        let filter: Filter = serde_json::from_value(body.clone()).unwrap_or_default();
        if req.ping && self.filtered_out(&filter) {
            return;
        }
        // An account's own system import names it; `$SYS.REQ.ACCOUNT.<acc>.…`
        // names it in the subject.
        let account = req
            .account
            .as_deref()
            .map(str::to_string)
            .or_else(|| account_token(&req.subject));
        if req.kind == SystemKind::UserInfo {
            let msg = serde_json::json!({
                "server": self.server_info(),
                "data": self.user_info(req.requester.as_deref()),
            });
            self.reply(&req.reply, &msg);
            return;
        }
        if req.kind == SystemKind::Statsz && account.is_none() {
            let msg = serde_json::json!({
                "server": self.server_info(),
                "statsz": self.statsz(),
            });
            self.reply(&req.reply, &msg);
            return;
        }
        let data = match self.data(req.kind, &body, account.as_deref()) {
            Ok(d) => d,
            Err(e) => {
                let err = serde_json::json!({
                    "server": self.server_info(),
                    "error": {"code": 400, "description": e},
                });
                self.reply(&req.reply, &err);
                return;
            }
        };
        let msg = serde_json::json!({ "server": self.server_info(), "data": data });
        self.reply(&req.reply, &msg);
    }

    /// The endpoint's JSON for one request; `account` restricts it to one
    /// account (`$SYS.REQ.ACCOUNT.<acc>.…`).
    fn data(&self, kind: SystemKind, body: &Value, account: Option<&str>) -> Result<Value, String> {
        let s = self.srv();
        let mut q = query(body);
        if let Some(a) = account {
            q.insert("acc".into(), a.to_string());
        }
        let v = match kind {
            SystemKind::Varz => to_value(&varz::collect(&self.mon)),
            SystemKind::Connz => {
                let o = connz::ConnzOptions::parse(&q).map_err(|e| e.to_string())?;
                to_value(&connz::collect(s, &o))
            }
            SystemKind::Subsz => {
                if account.is_some() {
                    q.insert("subs".into(), "1".into());
                }
                let o = subsz::SubszOptions::parse(&q).map_err(|e| e.to_string())?;
                to_value(&subsz::collect(s, &o))
            }
            SystemKind::Healthz => serde_json::json!({"status": "ok"}),
            SystemKind::Leafz => to_value(&absent::leafz(s)),
            SystemKind::Accountz => {
                let acc = account.or_else(|| body.get("account").and_then(Value::as_str));
                to_value(&accountz::collect(s, acc)?)
            }
            SystemKind::Routez => to_value(&absent::routez(s)),
            SystemKind::Gatewayz => to_value(&absent::gatewayz(s)),
            SystemKind::Jsz => to_value(&absent::jsz(s)),
            SystemKind::Idz => serde_json::json!({
                "server_id": s.server_id,
                "server_name": varz::server_name(s),
            }),
            SystemKind::Statsz => self.account_statz(&[account.unwrap_or_default()]),
            SystemKind::UserInfo => Value::Null,
        };
        Ok(v)
    }

    /// nats-server's `ServerStats`, from the same counters as `/varz`.
    fn statsz(&self) -> Value {
        let v = to_value(&varz::collect(&self.mon));
        let get = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
        let accounts = self.srv().accounts.list();
        let active = accounts.iter().filter(|a| a.sublist.count() > 0).count();
        serde_json::json!({
            "start": get("start"),
            "mem": get("mem"),
            "cores": get("cores"),
            "cpu": get("cpu"),
            "connections": get("connections"),
            "total_connections": get("total_connections"),
            "active_accounts": active,
            "subscriptions": get("subscriptions"),
            "sent": {"msgs": get("out_msgs"), "bytes": get("out_bytes")},
            "received": {"msgs": get("in_msgs"), "bytes": get("in_bytes")},
            "slow_consumers": get("slow_consumers"),
        })
    }

    /// `$SYS.REQ.ACCOUNT.<acc>.STATZ` (one account) or a `PING.STATZ` body
    /// naming `accounts`: the `/accstatz` figures.
    fn account_statz(&self, names: &[&str]) -> Value {
        to_value(&accountz::statz(self.srv(), Some(names), true))
    }

    /// nats-server's `UserInfo` of the requesting client: its user, account
    /// and configured permissions.
    fn user_info(&self, who: Option<&ConnShared>) -> Value {
        let Some(c) = who else {
            return Value::Null;
        };
        let user = c.meta.lock().user.clone();
        let account = c.account_name().to_string();
        let mut v = serde_json::json!({ "user": user, "account": account });
        let opts = self.srv().opts();
        let configured = opts.users.iter().find(|u| {
            u.user.as_deref().or(u.nkey.as_deref()) == Some(user.as_str())
                && u.account
                    .as_deref()
                    .unwrap_or(crate::options::GLOBAL_ACCOUNT)
                    == account
        });
        if let Some(p) = configured.and_then(|u| u.permissions.as_ref()) {
            let side = |allow: &Option<Vec<String>>, deny: &Option<Vec<String>>| {
                let mut m = serde_json::Map::new();
                if let Some(a) = allow {
                    m.insert("allow".into(), serde_json::json!(a));
                }
                if let Some(d) = deny {
                    m.insert("deny".into(), serde_json::json!(d));
                }
                Value::Object(m)
            };
            v["permissions"] = serde_json::json!({
                "publish": side(&p.publish_allow, &p.publish_deny),
                "subscribe": side(&p.subscribe_allow, &p.subscribe_deny),
            });
        }
        v
    }

    fn connect_event(&mut self, c: &Arc<ConnShared>) {
        let snap = c.snapshot(false);
        let subject = format!("$SYS.ACCOUNT.{}.CONNECT", snap.account);
        if !self.wanted(&subject) {
            return;
        }
        let msg = serde_json::json!({
            "type": "io.nats.server.advisory.v1.client_connect",
            "id": event_id(),
            "timestamp": rfc3339(SystemTime::now()),
            "server": self.server_info(),
            "client": client_info(&snap, false),
        });
        self.publish(subject.as_bytes(), &msg);
    }

    fn disconnect_event(&mut self, snap: &ConnSnapshot) {
        let subject = format!("$SYS.ACCOUNT.{}.DISCONNECT", snap.account);
        if !self.wanted(&subject) {
            return;
        }
        let msg = serde_json::json!({
            "type": "io.nats.server.advisory.v1.client_disconnect",
            "id": event_id(),
            "timestamp": rfc3339(SystemTime::now()),
            "server": self.server_info(),
            "client": client_info(snap, true),
            // nats-server counts from the server's side: what it sent the client.
            "sent": {"msgs": snap.out_msgs, "bytes": snap.out_bytes},
            "received": {"msgs": snap.in_msgs, "bytes": snap.in_bytes},
            "reason": snap.reason.unwrap_or_default(),
        });
        self.publish(subject.as_bytes(), &msg);
    }

    /// Events are built only when someone in the system account listens.
    fn wanted(&self, subject: &str) -> bool {
        !self
            .srv()
            .accounts
            .system()
            .sublist
            .match_subject(subject.as_bytes())
            .is_empty()
    }

    fn reply(&mut self, reply: &[u8], body: &Value) {
        let acc = self.reply_acc.clone();
        self.publish_in(&acc, reply, body);
    }

    /// Publishes `body` (JSON) on `subject` in the system account.
    fn publish(&mut self, subject: &[u8], body: &Value) {
        let sys = self.srv().accounts.system().clone();
        self.publish_in(&sys, subject, body);
    }

    /// Publishes `body` (JSON) on `subject` in `acc`, with no reply.
    fn publish_in(&mut self, acc: &Arc<Account>, subject: &[u8], body: &Value) {
        let Ok(payload) = serde_json::to_vec(body) else {
            return;
        };
        let mut frame = Vec::with_capacity(subject.len() + payload.len());
        frame.extend_from_slice(subject);
        frame.extend_from_slice(&payload);
        let frame = Bytes::from(frame);
        let s = subject.len();
        let args = PubArgs {
            subject: 0..s,
            reply: None,
            header_len: None,
            payload_start: s,
            payload_len: payload.len(),
        };
        let srv = self.mon.server.clone();
        let me = srv.accounts.internal.clone();
        self.fanout.begin_batch(&srv);
        self.fanout
            .publish(&srv, acc, &me, true, &Message::new(&frame, &args));
        self.fanout.end_batch();
        self.fanout.forget_last_match();
    }
}

/// The `<acc>` of `$SYS.REQ.ACCOUNT.<acc>.<KIND>`.
fn account_token(subject: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(subject).ok()?;
    let rest = s.strip_prefix("$SYS.REQ.ACCOUNT.")?;
    let (acc, _) = rest.rsplit_once('.')?;
    Some(acc.to_string())
}

/// A request body's endpoint options as the HTTP query they stand for
/// (nats-server's `ConnzOptions`/`SubszOptions` JSON names).
fn query(body: &Value) -> QueryMap {
    let mut q = QueryMap::new();
    let Some(map) = body.as_object() else {
        return q;
    };
    for (k, v) in map {
        // Go's zero values mean "not set"; `state` is nats-server's ConnState.
        if matches!(k.as_str(), "cid" | "limit" | "offset") && v.as_u64() == Some(0) {
            continue;
        }
        if k == "state" {
            if let Some(n) = v.as_u64() {
                let state = match n {
                    1 => "closed",
                    2 => "any",
                    _ => "open",
                };
                q.insert("state".into(), state.into());
                continue;
            }
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        let key = match k.as_str() {
            "subscriptions" => "subs",
            "subscriptions_detail" if text == "true" => {
                q.insert("subs".into(), "detail".into());
                continue;
            }
            "account" => "acc",
            "test" | "sort" | "offset" | "limit" | "cid" | "state" | "acc" | "auth" | "user" => {
                k.as_str()
            }
            _ => continue,
        };
        q.insert(key.to_string(), text);
    }
    q
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// nats-server's `ClientInfo` of a client in an event.
fn client_info(c: &ConnSnapshot, closed: bool) -> Value {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("start", Value::String(rfc3339(c.start)));
    put("host", Value::String(c.ip.clone()));
    put("id", Value::from(c.cid));
    put("acc", Value::String(c.account.clone()));
    for (k, v) in [
        ("user", &c.user),
        ("name", &c.name),
        ("lang", &c.lang),
        ("ver", &c.version),
    ] {
        if !v.is_empty() {
            put(k, Value::String(v.clone()));
        }
    }
    if !c.rtt.is_zero() {
        put("rtt", Value::from(c.rtt.as_nanos() as u64));
    }
    if closed {
        if let Some(stop) = c.stop {
            put("stop", Value::String(rfc3339(stop)));
        }
    }
    put("kind", Value::String("Client".into()));
    put("client_type", Value::String("nats".into()));
    Value::Object(m)
}

/// A unique event id (nats-server uses a NUID: 22 base62 characters).
fn event_id() -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut raw = [0u8; 22];
    if crate::rand::os_fill(&mut raw).is_err() {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed).to_le_bytes();
        raw[..8].copy_from_slice(&n);
    }
    crate::rand::text(&raw, DIGITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_of_request_subject() {
        assert_eq!(
            account_token(b"$SYS.REQ.ACCOUNT.A.CONNZ").as_deref(),
            Some("A")
        );
        assert_eq!(account_token(b"$SYS.REQ.SERVER.PING.CONNZ"), None);
    }

    #[test]
    fn request_body_becomes_query() {
        let q =
            query(&serde_json::json!({"subscriptions_detail": true, "account": "A", "limit": 5}));
        assert_eq!(q.get("subs").map(String::as_str), Some("detail"));
        assert_eq!(q.get("acc").map(String::as_str), Some("A"));
        assert_eq!(q.get("limit").map(String::as_str), Some("5"));
    }
}
