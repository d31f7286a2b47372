#!/usr/bin/env bash
# Delivery throughput with the dashboard page polling (its three requests once
# a second, as the page does) against no polling, alternating, same server.
# Usage: scripts/dashboard_cost.sh [ROUNDS] [NATRIUM_BINARY]
set -u
cd "$(dirname "$0")/.."
rounds=${1:-5}
bin=${2:-target/release/natrium}
bench=target/release/natrium-bench
taskset -c 0 "$bin" -a 127.0.0.1 -p 4666 -m 8666 >/dev/null 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null' EXIT
sleep 1
for round in $(seq "$rounds"); do
  for mode in closed open; do
    poller=""
    if [ "$mode" = open ]; then
      ( while true; do
          for p in dashboard/data leafz accountz; do curl -s "http://127.0.0.1:8666/$p" >/dev/null; done
          sleep 1
        done ) &
      poller=$!
    fi
    rate=$(taskset -c 1 "$bench" pubsub -s nats://127.0.0.1:4666 -p 1 -c 1 --size 128 -d 5s --json 2>/dev/null \
      | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["subscribers"]["msgs_per_s"]))')
    [ -n "$poller" ] && kill "$poller"
    echo "round $round page $mode: $rate delivered msgs/s"
  done
done
