#!/bin/bash
# Leaf-link throughput: natrium as leaf vs nats-server as leaf, same hub, same run
# (docs/PERFORMANCE.md "Leaf link"). Needs natscli and nats-server (NS, N) and
# a release build; MSGS and SIZE as env. Works in /tmp/perf.
set -u
NS=${NS:-nats-server}; N=${N:-nats}; NAT=${NAT:-$(realpath "$(dirname "$0")/../target/release/natrium")}
MSGS=${MSGS:-1000000}; SIZE=${SIZE:-128}
mkdir -p /tmp/perf && cd /tmp/perf
printf 'port: 24222\nleafnodes { port: 27422 }\n' > hub.conf
printf 'port: 24223\nleafnodes { remotes = [ { url: "nats-leaf://127.0.0.1:27422" } ] }\n' > leafn.conf
printf 'port: 24224\nleafnodes { remotes = [ { url: "nats-leaf://127.0.0.1:27422" } ] }\n' > leafr.conf
$NS -c hub.conf > hub.log 2>&1 & HUB=$!
sleep 0.5
$NAT -c leafn.conf > leafn.log 2>&1 & LN=$!
$NS -c leafr.conf > leafr.log 2>&1 & LR=$!
sleep 2
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
run() { # name leafport leafpid
  local subj="bench.$1"
  timeout 120 $N bench sub $subj --msgs $MSGS --size $SIZE --no-progress -s nats://127.0.0.1:24222 > sub.$1.out 2>&1 &
  local S=$!
  sleep 1.5
  local c0=$(cpu $3) h0=$(cpu $HUB)
  timeout 120 $N bench pub $subj --msgs $MSGS --size $SIZE --no-progress -s nats://127.0.0.1:$2 > pub.$1.out 2>&1
  wait $S
  local c1=$(cpu $3) h1=$(cpu $HUB)
  echo "== $1: leaf CPU ticks $((c1-c0)) hub CPU ticks $((h1-h0)) for $MSGS msgs"
  grep -iE "stats|msgs/sec" sub.$1.out pub.$1.out | head -4
}
run_local() { # natrium client-to-client on the leaf itself: the per-message CPU baseline
  timeout 120 $N bench sub local.x --msgs $MSGS --size $SIZE --no-progress -s nats://127.0.0.1:24223 > sub.local.out 2>&1 &
  local S=$!
  sleep 1.5
  local c0=$(cpu $LN)
  timeout 120 $N bench pub local.x --msgs $MSGS --size $SIZE --no-progress -s nats://127.0.0.1:24223 > pub.local.out 2>&1
  wait $S
  local c1=$(cpu $LN)
  echo "== natrium client->client (no link): natrium CPU ticks $((c1-c0)) for $MSGS msgs"
  grep -iE "stats" sub.local.out | head -2
}
for round in 1 2 3; do
  run natrium 24223 $LN
  run nats-server 24224 $LR
  run_local
done
kill $LN $LR $HUB
