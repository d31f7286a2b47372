//! Tests of `outbound`, kept apart so the module reads in one sitting.
use super::writer::{Trim, IDLE_TRIM, KEEP_CAPACITY, SMALL_WRITES_TO_TRIM};
use super::*;
use bytes::Bytes;
use std::time::Duration;
use tokio::io::AsyncReadExt;

fn burst(st: &mut OutState, bytes: usize) {
    st.inline_with(|b| b.resize(b.len() + bytes, b'x'));
}

#[test]
fn burst_buffers_survive_a_lagging_stream_then_shrink_after_small_writes() {
    let mut trim = Trim::default();
    let mut local = Bufs::default();
    let mut st = OutState::new(Kind::Client);
    for _ in 0..10 {
        burst(&mut st, 1 << 20);
        std::mem::swap(&mut st.q, &mut local);
        let len = local.inline.len();
        local.inline.clear();
        local.chunks.clear();
        trim.after_write(&mut local, len, 1);
        assert!(local.inline.capacity() >= 1 << 20, "kept while bursting");
    }
    for i in 0..SMALL_WRITES_TO_TRIM {
        burst(&mut st, 100);
        std::mem::swap(&mut st.q, &mut local);
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
        out.lock().q.inline.capacity() > KEEP_CAPACITY,
        "shared buffer is burst-sized"
    );
    tokio::time::sleep(IDLE_TRIM * 2).await;
    assert!(out.lock().q.inline.capacity() <= KEEP_CAPACITY);
    out.close_with(CloseReason::ServerShutdown, None);
    assert_eq!(writer.await.unwrap(), CloseReason::ServerShutdown);
}

/// A subscriber that alternates between keeping up and lagging gets every
/// message once and in order, whether the publisher's direct write or the
/// writer task (after the socket would block) wrote it; both paths are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_and_writer_paths_keep_order_without_loss() {
    use tokio::net::TcpSocket;

    const MSGS: u32 = 200_000;
    let listener = TcpSocket::new_v4().unwrap();
    // Inherited by the accepted socket: a small send buffer blocks soon.
    listener.set_send_buffer_size(8 * 1024).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = listener.listen(16).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpSocket::new_v4().unwrap();
    client.set_recv_buffer_size(8 * 1024).unwrap();
    let (client, accepted) = tokio::join!(client.connect(addr), listener.accept());
    let (mut client, (server, _)) = (client.unwrap(), accepted.unwrap());

    let out = std::sync::Arc::new(Outbound::new(Kind::Client));
    let (_rd, wr) = server.into_split();
    let sock = out.plain(wr);
    let writer = {
        let out = out.clone();
        tokio::spawn(async move { run_writer(&out, sock, Duration::from_secs(30)).await })
    };

    // The subscriber: reads flat out for 3 ms, then stops reading for 3 ms.
    let reader = tokio::spawn(async move {
        let (mut next, mut pending) = (0u32, Vec::new());
        let mut buf = vec![0u8; 4096];
        let mut phase = tokio::time::Instant::now();
        while next < MSGS {
            if phase.elapsed() > Duration::from_millis(3) {
                tokio::time::sleep(Duration::from_millis(3)).await;
                phase = tokio::time::Instant::now();
            }
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed after {next} messages");
            pending.extend_from_slice(&buf[..n]);
            // Each message: "MSG seq 1 8\r\n" + 8 digits + "\r\n" = 23 bytes.
            let whole = pending.len() / 23 * 23;
            for m in pending[..whole].chunks(23) {
                assert_eq!(&m[..13], b"MSG seq 1 8\r\n");
                let got: u32 = std::str::from_utf8(&m[13..21]).unwrap().parse().unwrap();
                assert_eq!(got, next, "out of order or lost");
                next += 1;
            }
            pending.drain(..whole);
        }
        next
    });

    // The publisher: batches of 50 deliveries, each batch flushed directly
    // (the writer task woken when that cannot be done).
    let mut scratch = FlushBufs::default();
    let (mut written, mut woken) = (0, 0);
    for batch in 0..MSGS / 50 {
        {
            let mut st = out.lock();
            for i in batch * 50..batch * 50 + 50 {
                let frame = Bytes::from(format!("{i:08}\r\n"));
                let d = Delivery {
                    subject: b"seq",
                    sid: b"1",
                    reply: b"",
                    queues: &[],
                    hdr_len: None,
                    frame: &frame,
                    body: 0..8,
                };
                let queued = st.append_delivery(&d, u64::from(batch) + 1, 64 << 20);
                assert!(matches!(queued, Appended::Queued { .. }));
            }
        }
        match out.flush_direct(&mut scratch) {
            Flushed::Written => written += 1,
            Flushed::Wake => {
                woken += 1;
                out.wake.notify_one();
            }
            Flushed::Idle => {}
        }
        // Keep the backlog bounded, as the producer stall does.
        while out.lock().pending() > 256 * 1024 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        if batch % 8 == 0 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(reader.await.unwrap(), MSGS);
    eprintln!("direct writes {written}, writer task {woken}");
    assert!(written > 0, "the direct path wrote some batches");
    assert!(woken > 0, "the writer task wrote some batches");
    out.close_with(CloseReason::ServerShutdown, None);
    assert_eq!(writer.await.unwrap(), CloseReason::ServerShutdown);
}

fn flatten(b: &Bufs) -> Vec<u8> {
    let mut out = Vec::new();
    for c in &b.chunks {
        match c {
            Chunk::Inline { start, end } => out.extend_from_slice(&b.inline[*start..*end]),
            Chunk::Shared(s) => out.extend_from_slice(s),
        }
    }
    out
}

/// A direct write that stopped part-way puts the rest back in front of what
/// other publishers queued meanwhile, byte for byte.
#[test]
fn put_back_keeps_the_unwritten_rest_before_later_appends() {
    let mut st = OutState::new(Kind::Client);
    st.push_inline(b"aaa");
    st.push_shared(Bytes::from_static(b"bbbb"));
    st.push_inline(b"ccc");
    let mut taken = Bufs::default();
    std::mem::swap(&mut st.q, &mut taken);
    // Queued by someone else while the write was under way.
    st.push_inline(b"ddd");
    st.push_shared(Bytes::from_static(b"eeee"));
    // The socket took "aaa" and "b".
    let mut head = 0;
    super::writer::advance(&mut taken.chunks, &mut head, 4);
    assert_eq!(head, 1);
    st.put_back(&mut taken, head);
    assert_eq!(flatten(&st.q), b"bbbcccdddeeee");
    assert!(taken.chunks.is_empty() && taken.inline.is_empty());
}
