#!/usr/bin/env bash
# A/B of the log stores: boltdb and wal alternated, writes at 1 and 256 clients.
set -u
cd "$(dirname "$0")/.."
for round in 1 2; do
  for store in boltdb wal; do
    data=/tmp/ls-$store-$round; rm -rf $data
    BIN=$PWD/bin DATA=$data HOST=127.0.0.7 setsid ./deploy/local-cluster.sh --log-store $store > $data.out 2>&1 &
    sleep 1
    export ORDERLY_CERTS=$data/certs
    ./bin/orderctl health --target 127.0.0.7:8000 --wait 30s >/dev/null
    for c in 1 256; do
      conns=16; [ $c = 1 ] && conns=1
      r=$(./bin/ordertest bench --addr 127.0.0.7:6001,127.0.0.7:6002,127.0.0.7:6003 --customers $c --conns $conns --orders 0 --duration 8s --quiet 2>&1 | grep -E "ops \(|write  latency")
      echo "round $round $store c=$c: $(echo $r | tr '\n' ' ')"
    done
    pkill -TERM -f "data-dir $data/"; pkill -TERM -f "orderlb.*127.0.0.7:6000"; sleep 2; pkill -f "DATA=$data" ; pkill -f local-cluster.sh; sleep 1
  done
done
