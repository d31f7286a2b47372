#!/bin/bash
# Leaf link vs client delivery at equal offered load (issue 11: "the leaf
# link must not cost more CPU per message than a client connection does").
# One nats-server hub (CPU 1), natrium as its leaf (CPU 0), natrium-bench
# `latency` (paced, CPU 1) publishing on the leaf at RATE msgs/s with two
# subscribers:
#   A: both subscribers on the leaf        -> two client deliveries per message
#   B: one on the leaf, one on the hub     -> one client delivery + one LMSG
# Same messages, same rate, same pacing: B - A is what the link costs more (or
# less) than a client. Rounds alternate A B A B; CPU is natrium's
# utime+stime from /proc (10 ms ticks).
# Usage: NS=nats-server RATE=100000 SECS=5 ROUNDS=3 scripts/leaf_equal_load.sh
set -u
cd "$(dirname "$0")/.."
NS=${NS:-nats-server}; RATE=${RATE:-100000}; SECS=${SECS:-5}; ROUNDS=${ROUNDS:-3}
NAT=target/release/natrium; NB=target/release/natrium-bench
cargo build --release -q --bin natrium -p natrium && cargo build --release -q -p natrium-bench || exit 1
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'; }
hp=$(free); lp=$(free); np=$(free)
printf 'host: 127.0.0.1\nport: %s\nleafnodes { port: %s }\n' "$hp" "$lp" > "$tmp/hub.conf"
printf 'port: %s\nleafnodes { remotes = [ { url: "nats-leaf://127.0.0.1:%s" } ] }\n' "$np" "$lp" > "$tmp/leaf.conf"
taskset -c 1 "$NS" -c "$tmp/hub.conf" > "$tmp/hub.log" 2>&1 &
sleep 0.5
taskset -c 0 "$NAT" -c "$tmp/leaf.conf" > "$tmp/leaf.log" 2>&1 &
LEAF=$!
sleep 2
cpu() { awk '{print $14+$15}' /proc/$LEAF/stat; }
run() { # label servers
  local c0 c1 out
  c0=$(cpu)
  out=$(taskset -c 1 "$NB" latency -s "$2" -c 2 --rate "$RATE" -d "${SECS}s" --size 128 \
        --subject "eq.$1" --progress never --json)
  c1=$(cpu)
  local exp rec lost
  exp=$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["expected"], d["received"], d["lost"])')
  echo "$1 ticks $((c1-c0)) (expected received lost: $exp)"
}
for r in $(seq "$ROUNDS"); do
  echo "# round $r, $RATE msgs/s for $SECS s"
  run A "nats://127.0.0.1:$np,nats://127.0.0.1:$np"
  run B "nats://127.0.0.1:$np,nats://127.0.0.1:$hp"
done
