#!/usr/bin/env bash
# What accounts cost on the hot path (issue 12: "a server with one account must
# not pay for the feature"). Two natrium servers, both pinned to CPU 0, the
# load generator on CPU 1, natrium-bench --compare alternating A B A B:
#   A = users in `authorization` (everyone in $G),
#   B = the same user inside `accounts { A { ... } }`, beside two other
#       accounts with an import and an export (so the route table is not empty).
# Same credentials on both sides, so only the account machinery differs.
# Usage: scripts/accounts_cost.sh [ROUNDS] [SECS]   (default 3 rounds, 2 s each)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-2}
cargo build --release -q --bin natrium -p natrium
cargo build --release -q -p natrium-bench
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

cat >"$tmp/global.conf" <<'EOF'
authorization { users = [ { user: a, password: a } ] }
EOF
cat >"$tmp/accounts.conf" <<'EOF'
accounts {
  A { users = [ { user: a, password: a } ]
      exports = [ { stream: "feed.>" }, { service: "svc.>" } ] }
  B { users = [ { user: b, password: b } ]
      imports = [ { stream: { account: A, subject: "feed.>" }, prefix: "a" }
                  { service: { account: A, subject: "svc.x" } } ] }
  C { users = [ { user: c, password: c } ] }
}
EOF
pa=$(python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])')
pb=$(python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])')
taskset -c 0 target/release/natrium -c "$tmp/global.conf" -p "$pa" 2>"$tmp/a.log" &
taskset -c 0 target/release/natrium -c "$tmp/accounts.conf" -p "$pb" 2>"$tmp/b.log" &
for p in $pa $pb; do
  for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done
A="nats://a:a@127.0.0.1:$pa"
B="nats://a:a@127.0.0.1:$pb"
nb=target/release/natrium-bench
echo "# A = \$G (authorization users), B = account A among three (accounts block)"
for w in "pub --size 16" "pubsub --size 16 -p 1 -c 1" "pubsub --size 128 -p 1 -c 1" \
         "fanout --size 128 -c 4" "pubsub --size 128 -p 4 -c 4"; do
  echo "## $w"
  # shellcheck disable=SC2086
  taskset -c 1 $nb $w -d "${secs}s" --compare "$A" "$B" --rounds "$rounds"
done
echo "## reqrep --size 16 -c 1 --rate 500"
taskset -c 1 $nb reqrep --size 16 -c 1 --rate 500 -d "${secs}s" --compare "$A" "$B" --rounds "$rounds"
