//! Tests of `outbound`, kept apart so the module reads in one sitting.
use super::*;
use tokio::io::AsyncReadExt;

fn burst(st: &mut OutState, bytes: usize) {
    st.inline_with(|b| b.resize(b.len() + bytes, b'x'));
}

#[test]
fn burst_buffers_survive_a_lagging_stream_then_shrink_after_small_writes() {
    let mut trim = Trim::default();
    let mut local = OutState::new(Kind::Client);
    for _ in 0..10 {
        burst(&mut local, 1 << 20);
        let len = local.inline.len();
        local.inline.clear();
        local.chunks.clear();
        trim.after_write(&mut local, len, 1);
        assert!(local.inline.capacity() >= 1 << 20, "kept while bursting");
    }
    for i in 0..SMALL_WRITES_TO_TRIM {
        burst(&mut local, 100);
        local.inline.clear();
        local.chunks.clear();
        trim.after_write(&mut local, 100, 1);
        let shrunk = local.inline.capacity() <= KEEP_CAPACITY;
        assert_eq!(shrunk, i + 1 == SMALL_WRITES_TO_TRIM, "write {i}");
    }
}

#[tokio::test(start_paused = true)]
async fn idle_writer_gives_back_both_buffers() {
    let out = std::sync::Arc::new(Outbound::new(Kind::Client));
    let (client, server) = tokio::io::duplex(4 << 20);
    let writer = {
        let out = out.clone();
        tokio::spawn(async move { run_writer(&out, server, Duration::from_secs(30)).await })
    };
    let (mut rd, _wr) = tokio::io::split(client);
    let mut sink = vec![0u8; 4 << 20];
    for _ in 0..3 {
        burst(&mut out.lock(), 2 << 20);
        out.wake.notify_one();
        rd.read_exact(&mut sink[..2 << 20]).await.unwrap();
    }
    tokio::task::yield_now().await;
    assert!(
        out.lock().inline.capacity() > KEEP_CAPACITY,
        "shared buffer is burst-sized"
    );
    tokio::time::sleep(IDLE_TRIM * 2).await;
    assert!(out.lock().inline.capacity() <= KEEP_CAPACITY);
    out.close_with(CloseReason::ServerShutdown, None);
    assert_eq!(writer.await.unwrap(), CloseReason::ServerShutdown);
}
