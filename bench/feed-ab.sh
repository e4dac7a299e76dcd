#!/usr/bin/env bash
# A/B of the change feed and of the balancer's linearizable cache, each
# variant alternated twice on a fresh local cluster (wal, TLS):
#   writes c=256 straight to the nodes, with 0 or 1 watcher of every order;
#   linearizable reads c=256 through the balancer, cache on or off.
# Usage: bench/feed-ab.sh [duration]   (run with nothing else on the machine)
set -u
cd "$(dirname "$0")/.."
DUR=${1:-8s}
HOST=127.0.0.7
A="$HOST:6001,$HOST:6002,$HOST:6003"
up() { # $1 data dir, $2 orderlb flags
  rm -rf "$1"
  LB_FLAGS="$2" BIN=$PWD/bin DATA=$1 HOST=$HOST setsid ./deploy/local-cluster.sh > "$1.out" 2>&1 &
  sleep 1
  export ORDERLY_CERTS=$1/certs
  ./bin/orderctl health --target $HOST:8000 --wait 30s >/dev/null
}
down() {
  pkill -TERM -f "data-dir $1/"; pkill -TERM -f "orderlb.*$HOST:6000"; sleep 2
  pkill -f local-cluster.sh; sleep 1
}
for round in 1 2; do
  for w in 0 1; do
    d=/tmp/feed-ab-w$w-$round; up $d ""
    r=$(./bin/ordertest bench --addr $A --customers 256 --conns 16 --orders 0 --duration $DUR --watchers $w --quiet 2>&1 | grep -E "ops \(|watchers|write  latency")
    echo "round $round writes c=256 watchers=$w: $(echo $r | tr '\n' ' ')"
    down $d
  done
  for cache in true false; do
    d=/tmp/feed-ab-c$cache-$round; up $d "--cache-linearizable=$cache"
    ./bin/ordertest bench --addr $HOST:6000 --customers 256 --conns 16 --orders 1 --quiet >/dev/null 2>&1 # the records
    r=$(./bin/ordertest bench --addr $HOST:6000 --customers 256 --conns 16 --orders 0 --duration $DUR --reads 100 --consistency linearizable --quiet 2>&1 | grep -E "ops \(|read   latency")
    hits=$(./bin/orderctl --addr $HOST:6000 --json status | grep -o '"cache_linearizable_hits": [0-9]*')
    echo "round $round linearizable reads c=256 via balancer cache-linearizable=$cache: $(echo $r | tr '\n' ' ') $hits"
    down $d
  done
done

# How fast one watcher catches up on a backlog: ~200,000 orders written
# (inside --watch-history), then a watcher from index 1 for 2 s while a
# single customer orders.
d=/tmp/feed-ab-backlog; up $d ""
./bin/ordertest bench --addr $A --customers 256 --conns 16 --orders 0 --duration 10s --quiet >/dev/null 2>&1
for round in 1 2; do
  r=$(./bin/ordertest bench --addr $A --customers 1 --orders 0 --duration 2s --watchers 1 --watch-from 1 --quiet 2>&1 | grep -E "watchers")
  echo "round $round catch-up from index 1: $r"
done
down $d
