//! Soliciting: this server as the leaf. One task per configured remote dials
//! its URLs in turn, does the leaf side of the handshake (read the hub's INFO,
//! upgrade to TLS when the remote has a `tls` block or the hub requires it,
//! send CONNECT — signed with the remote's nkey or creds when it has them,
//! with its `deny_imports` as `deny_pub` — and PING) and runs the link; when it ends, waits the reconnect delay with
//! jitter (longer after failures, refused credentials or a loop) and dials
//! again.
//!
//! Owns the dial loop, its back-off and the order of the leaf's handshake
//! (INFO then TLS, as nats-server; TLS first with `handshake_first`). Must not
//! parse ops beyond the INFO it waits for, nor touch interest (the link does).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::creds;
use super::handshake::{connect_line, read_op, Hello, PeerInfo};
use super::link::{self, LinkEnd, LinkRules, LOOP_DELAY};
use super::upgrade::RemoteTls;
use super::LeafError;
use crate::conn::outbound::run_writer;
use crate::conn::{ConnShared, Kind};
use crate::options::{parse_leaf_url, LeafUrl};
use crate::protocol::{encode, LeafOp, LeafParser};
use crate::rand::XorShift64;
use crate::state::{LeafLink, RemoteRun, ServerState};

/// Longest wait between attempts after repeated refusals.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts one dial loop per remote in `leafnodes { remotes }`.
pub fn spawn_remotes(srv: &Arc<ServerState>) {
    reload_remotes(srv);
}

/// Brings the running dial loops in line with the options (at start and
/// after a reload): removed or changed remotes stop and close their link,
/// added ones start, unchanged ones keep their link.
pub fn reload_remotes(srv: &Arc<ServerState>) {
    let lo = srv.opts().leafnodes.clone().unwrap_or_default();
    for remote in srv.leafs.remotes.reconcile(&lo.remotes) {
        let run = Arc::new(RemoteRun::new(remote));
        srv.leafs.remotes.add(run.clone());
        let srv = srv.clone();
        let delay = lo.reconnect;
        tokio::spawn(async move { dial_loop(srv, run, delay).await });
    }
}

async fn dial_loop(srv: Arc<ServerState>, run: Arc<RemoteRun>, delay: Duration) {
    let remote = &run.remote;
    let urls: Vec<LeafUrl> = remote
        .urls
        .iter()
        .filter_map(|u| parse_leaf_url(u))
        .collect();
    if urls.is_empty() {
        return;
    }
    let mut rng = XorShift64::new(srv.next_cid() ^ 0xA076_1D64_78BD_642F);
    let mut tls = RemoteTls::new(remote);
    let mut next = 0usize;
    let mut failures: u32 = 0;
    while !srv.is_shutting_down() && !run.is_stopped() {
        let Some(url) = urls.get(next % urls.len()) else {
            return;
        };
        next = next.wrapping_add(1);
        let wait = match attempt(&srv, &run, url, &mut tls).await {
            Ok(LinkEnd::Closed(_)) => {
                failures = 0;
                delay
            }
            Ok(LinkEnd::Loop) => LOOP_DELAY,
            Ok(LinkEnd::Refused) => {
                failures = failures.saturating_add(1);
                backoff(delay, failures)
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                // As nats-server: reported on the first failure, then now and then.
                if failures == 1 || failures % 60 == 0 {
                    tracing::error!(
                        "Error trying to connect as leafnode to remote server {}:{} (attempt {failures}): {e}",
                        url.host,
                        url.port
                    );
                } else {
                    tracing::debug!(
                        "Error trying to connect as leafnode to remote server {}:{} (attempt {failures}): {e}",
                        url.host,
                        url.port
                    );
                }
                backoff(delay, failures)
            }
        };
        // Jitter of up to a fifth of the wait, so leaves do not return in step.
        let jitter_ms = wait.as_millis() as usize / 5;
        let wait = wait.saturating_add(Duration::from_millis(rng.below(jitter_ms.max(1)) as u64));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = run.wake.notified() => {}
        }
    }
}

/// The wait after `failures` failed attempts in a row: the reconnect delay
/// doubling per failure, at most `MAX_BACKOFF` (and never below the delay).
fn backoff(delay: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(5);
    delay
        .checked_mul(factor)
        .unwrap_or(Duration::MAX)
        .min(MAX_BACKOFF.max(delay))
}

async fn attempt(
    srv: &Arc<ServerState>,
    remote: &RemoteRun,
    url: &LeafUrl,
    tls: &mut RemoteTls,
) -> Result<LinkEnd, LeafError> {
    let mut stream = tokio::time::timeout(
        DIAL_TIMEOUT,
        TcpStream::connect((url.host.as_str(), url.port)),
    )
    .await
    .map_err(|_| LeafError::Timeout("the connection"))??;
    let _ = stream.set_nodelay(true);
    let addr: SocketAddr = stream.peer_addr()?;
    let opts = srv.opts();
    let mut parser = LeafParser::new(opts.max_control_line, opts.max_payload);
    drop(opts);
    let mut buf = BytesMut::with_capacity(4096);
    if tls.handshake_first() {
        let secure = tls.connect(&url.host, stream).await?;
        let (mut rd, wr) = tokio::io::split(secure);
        let info = read_info(&mut rd, &mut buf, &mut parser).await?;
        return run(srv, remote, url, addr, info, rd, wr, buf).await;
    }
    let info = read_info(&mut stream, &mut buf, &mut parser).await?;
    if tls.configured() || info.tls_required {
        if !buf.is_empty() {
            // The hub waits for our ClientHello: anything else is not a hub.
            return Err(LeafError::Unexpected {
                expected: "nothing before the TLS handshake",
            });
        }
        let secure = tls.connect(&url.host, stream).await?;
        let (rd, wr) = tokio::io::split(secure);
        return run(srv, remote, url, addr, info, rd, wr, buf).await;
    }
    let (rd, wr) = stream.into_split();
    run(srv, remote, url, addr, info, rd, wr, buf).await
}

async fn read_info<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    parser: &mut LeafParser,
) -> Result<PeerInfo, LeafError> {
    let op = read_op(rd, buf, parser, DIAL_TIMEOUT, "INFO").await?;
    let LeafOp::Info { frame, json } = op else {
        return Err(LeafError::Unexpected { expected: "INFO" });
    };
    serde_json::from_slice(&frame[json]).map_err(|_| LeafError::Json("INFO"))
}

/// After the hub's INFO (and TLS): CONNECT, PING, and the link until it ends.
#[allow(clippy::too_many_arguments)]
async fn run<R, W>(
    srv: &Arc<ServerState>,
    started: &RemoteRun,
    url: &LeafUrl,
    addr: SocketAddr,
    info: PeerInfo,
    rd: R,
    wr: W,
    buf: BytesMut,
) -> Result<LinkEnd, LeafError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let remote = &started.remote;
    // Signed before anything is queued: an unreadable creds file ends the
    // attempt here, and the dial loop logs it and backs off.
    let nonce = info.nonce.as_deref().unwrap_or_default();
    let proof = creds::prove(remote, nonce.as_bytes())?;
    let acc = match remote.account.as_deref() {
        None => srv.accounts.global().clone(),
        Some(name) => srv.accounts.get(name).ok_or_else(|| {
            LeafError::Refused(format!(
                "unable to find local account {name:?} for the remote"
            ))
        })?,
    };
    let conn = Arc::new(ConnShared::new(Kind::Leaf, srv.next_cid(), addr));
    // Bound before the link starts: only this account's interest crosses.
    let _ = conn.account.set(acc.clone());
    conn.headers
        .store(info.headers, std::sync::atomic::Ordering::Relaxed);
    conn.peer_max_payload
        .store(info.max_payload, std::sync::atomic::Ordering::Relaxed);
    {
        let mut meta = conn.meta.lock();
        meta.name = info.server_name.clone();
    }
    let hello = Hello {
        account: &acc.name,
        user: remote.user.as_deref().or(url.user.as_deref()),
        pass: remote.password.as_deref().or(url.password.as_deref()),
        token: remote.token.as_deref(),
        proof,
        deny_pub: &remote.deny_imports,
    };
    let mut line = connect_line(srv, &hello);
    line.extend_from_slice(encode::PING);
    conn.out.send_now(&line);
    // A reload that removes this remote closes the link through this.
    started.set_link(Some(conn.clone()));
    let writer = {
        let (conn, deadline) = (conn.clone(), srv.opts().write_deadline);
        tokio::spawn(async move { run_writer(&conn.out, wr, deadline).await })
    };
    tracing::info!(
        "{} Leafnode connection created for account: {} ({}:{})",
        conn.log(),
        acc.name,
        url.host,
        url.port
    );
    let name = if info.server_name.is_empty() {
        info.server_id.clone()
    } else {
        info.server_name.clone()
    };
    let rec = Arc::new(LeafLink::new(conn.clone(), true, name, info.server_id));
    let rules = LinkRules::Spoke {
        deny_imports: remote.deny_imports.clone(),
        deny_exports: remote.deny_exports.clone(),
    };
    let end = link::run(srv.clone(), rec, rd, buf, rules).await;
    started.set_link(None);
    let _ = writer.await;
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        let d = Duration::from_secs(1);
        assert_eq!(backoff(d, 1), d);
        assert_eq!(backoff(d, 2), d * 2);
        assert_eq!(backoff(d, 3), d * 4);
        assert_eq!(backoff(d, 50), MAX_BACKOFF);
        assert_eq!(backoff(Duration::from_secs(60), 3), Duration::from_secs(60));
        let huge = Duration::from_secs(u64::MAX / 2);
        assert_eq!(backoff(huge, 9), huge, "no overflow panic");
    }
}
