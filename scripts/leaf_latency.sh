#!/bin/bash
# Request/reply latency across a leaf link: a service on the nats-server hub,
# requests from a client of the leaf (natrium, then nats-server), same run
# (docs/PERFORMANCE.md "Leaf link"). NS, N, NAT, MSGS as env. Works in /tmp/perf.
set -u
NS=${NS:-nats-server}; N=${N:-nats}; NAT=${NAT:-$(realpath "$(dirname "$0")/../target/release/natrium")}
MSGS=${MSGS:-20000}
mkdir -p /tmp/perf && cd /tmp/perf
printf 'port: 24222\nleafnodes { port: 27422 }\n' > hub.conf
printf 'port: 24223\nleafnodes { remotes = [ { url: "nats-leaf://127.0.0.1:27422" } ] }\n' > leafn.conf
printf 'port: 24224\nleafnodes { remotes = [ { url: "nats-leaf://127.0.0.1:27422" } ] }\n' > leafr.conf
$NS -c hub.conf > hub.log 2>&1 & HUB=$!
sleep 0.5
$NAT -c leafn.conf > leafn.log 2>&1 & LN=$!
$NS -c leafr.conf > leafr.log 2>&1 & LR=$!
sleep 2
$N bench service serve svc.lat --no-progress -s nats://127.0.0.1:24222 > serve.out 2>&1 & SV=$!
sleep 1.5
for round in 1 2 3; do
  for leaf in natrium:24223 nats-server:24224 hub-direct:24222; do
    name=${leaf%%:*}; port=${leaf##*:}
    timeout 120 $N bench service request svc.lat --msgs $MSGS --no-progress -s nats://127.0.0.1:$port > req.$name.out 2>&1
    echo "== round $round $name: $(grep -iE 'stats' req.$name.out | head -1)"
  done
done
kill $SV $LN $LR $HUB
