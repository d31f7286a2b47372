//! Cost of the client-op parser per op (issue 3's profile: `next_op` +
//! `split_args` were ≈ 17% of the server's CPU on pub-only 16 B).
//!
//! Each iteration parses one 64 KiB read buffer of identical ops, as the reader
//! sees them from a busy publisher: PUB with a 16 B payload, PUB with a reply
//! subject and a 128 B payload, and SUB lines. Reported per buffer; divide by
//! the op count printed at start for ns/op.
//!
//! Run: `cargo bench --bench parser -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use natrium::protocol::Parser;

fn buffer(op: &[u8]) -> (Vec<u8>, u64) {
    let mut v = Vec::with_capacity(64 * 1024 + op.len());
    let mut n = 0;
    while v.len() + op.len() <= 64 * 1024 {
        v.extend_from_slice(op);
        n += 1;
    }
    (v, n)
}

fn bench(c: &mut Criterion) {
    let p16 = [&b"PUB bench.load 16\r\n"[..], &[b'x'; 16], b"\r\n"].concat();
    let p128 = [
        &b"PUB orders.eu.created _INBOX.abcdef.1 128\r\n"[..],
        &[b'x'; 128],
        b"\r\n",
    ]
    .concat();
    let sub = b"SUB telemetry.*.cpu workers 42\r\n".to_vec();
    let mut g = c.benchmark_group("parser");
    for (name, op) in [("pub_16", p16), ("pub_reply_128", p128), ("sub", sub)] {
        let (buf, n) = buffer(&op);
        g.throughput(Throughput::Elements(n));
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || (Parser::new(4096, 1 << 20), BytesMut::from(&buf[..])),
                |(parser, bytes)| {
                    let mut ops = 0u64;
                    while let Ok(Some(op)) = parser.next_op(bytes) {
                        black_box(&op);
                        ops += 1;
                    }
                    assert_eq!(ops, n);
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
