//! Every integration test that drives a running natrium, in one test binary
//! (one link instead of one per file). Each module is one area; `common`
//! starts servers and speaks raw protocol, `monitor_util` reads the HTTP
//! endpoints. `tests/alloc.rs` stays a binary of its own: it installs a
//! counting global allocator, which must not see other tests' allocations.

mod common;
mod monitor_util;

mod accounts;
mod accounts_config;
mod accounts_natscli;
mod auth_config;
mod cli;
mod client_async_nats;
mod config_grammar;
mod config_options;
mod dashboard;
mod delivery_paths;
mod leaf_accounts;
mod leaf_hub;
mod leaf_nodes;
mod leaf_permissions;
mod leaf_secure;
mod leaf_support;
mod lifecycle;
mod monitor_accounts;
mod monitor_connz;
mod monitor_endpoints;
mod protocol_raw;
mod reference_diff;
mod security_e2e;
mod security_tls;
mod slow_consumer;
mod tls_handshake;
mod wire_fuzz;
