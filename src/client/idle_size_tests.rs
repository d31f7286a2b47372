//! Guards what an idle client connection costs (issue 13: ≤ 8 KB each at
//! 10,000 connections, measured by `scripts/mem_churn.py`): its reader and
//! writer tasks are heap cells as large as their futures, so a buffer or a
//! rarely used future kept across an `.await` is paid by every connection.

use std::sync::Arc;
use std::time::Duration;

use crate::conn::{ConnShared, Kind};
use crate::options::Options;
use crate::state::ServerState;

#[tokio::test]
async fn connection_tasks_stay_small() {
    let srv = Arc::new(ServerState::new(Options::default(), 4222).expect("state"));
    let addr = "127.0.0.1:1".parse().expect("addr");
    let me = Arc::new(ConnShared::new(Kind::Client, 1, addr));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let at = l.local_addr().expect("addr");
    let (rd, wr) = tokio::net::TcpStream::connect(at)
        .await
        .expect("connect")
        .into_split();
    let start = super::ConnStart {
        nonce: None,
        info_sent: true,
    };
    // 1,504 and 456 bytes when written (debug build, rustc 1.95, tokio 1.54); the
    // writer was 4.5 KiB while its writev slices lived in the future.
    let reader = super::serve(srv, me.clone(), rd, wr, start);
    assert!(
        std::mem::size_of_val(&reader) <= 2048,
        "{}",
        std::mem::size_of_val(&reader)
    );
    let (_, wr) = tokio::net::TcpStream::connect(at)
        .await
        .expect("connect")
        .into_split();
    let writer = crate::conn::outbound::run_writer(&me.out, wr, Duration::from_secs(1));
    assert!(
        std::mem::size_of_val(&writer) <= 1024,
        "{}",
        std::mem::size_of_val(&writer)
    );
}
