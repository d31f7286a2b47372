//! Deterministic parser cost for a noisy machine: parses 100,000 identical ops
//! so that `valgrind --tool=callgrind` can count instructions per op, which do
//! not drift with the neighbours the way criterion's timings do.
//!
//! Run: `cargo build --release --example parser_instructions && valgrind
//! --tool=callgrind --callgrind-out-file=/tmp/cg target/release/examples/parser_instructions pub`
//! then `callgrind_annotate --inclusive=yes /tmp/cg | grep 'Parser::next_op \['`
//! and divide by 100,000. Kinds: `pub` (16 B), `reply` (reply subject, 128 B), `sub`.

use bytes::BytesMut;
use natrium::protocol::Parser;

const OPS: usize = 100_000;

fn main() {
    let kind = std::env::args().nth(1).unwrap_or_else(|| "pub".into());
    let op: Vec<u8> = match kind.as_str() {
        "sub" => b"SUB telemetry.*.cpu workers 42\r\n".to_vec(),
        "reply" => [
            &b"PUB orders.eu.created _INBOX.abcdef.1 128\r\n"[..],
            &[b'x'; 128],
            b"\r\n",
        ]
        .concat(),
        "pub" => [&b"PUB bench.load 16\r\n"[..], &[b'x'; 16], b"\r\n"].concat(),
        other => {
            eprintln!("unknown kind {other:?}: pub, reply or sub");
            std::process::exit(2);
        }
    };
    let mut buf = BytesMut::from(&op.repeat(OPS)[..]);
    let mut parser = Parser::new(4096, 1 << 20);
    let mut n = 0;
    while let Ok(Some(op)) = parser.next_op(&mut buf) {
        std::hint::black_box(&op);
        n += 1;
    }
    assert_eq!(n, OPS, "every op parsed");
    println!("{n} ops");
}
