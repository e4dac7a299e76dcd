#!/usr/bin/env bash
# Runs a local 3-node orderly cluster and its balancer in the foreground.
# Ctrl-C (or SIGTERM) stops everything cleanly: each process gets SIGTERM,
# and a leader hands its leadership over before it exits.
set -euo pipefail
BIN=${BIN:-$(dirname "$0")/../bin}
DATA=${DATA:-./data}
HOST=${HOST:-127.0.0.1}
PEERS="n1=$HOST:7001,n2=$HOST:7002,n3=$HOST:7003"
mkdir -p "$DATA"

pids=()
stop() {
  trap - INT TERM
  echo
  echo "stopping the cluster..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
  echo "stopped."
}
trap stop INT TERM

for i in 1 2 3; do
  "$BIN/orderd" --id "n$i" --data-dir "$DATA/n$i" \
    --raft-addr "$HOST:700$i" --client-addr "$HOST:600$i" \
    --peers "$PEERS" "$@" 2>>"$DATA/n$i.log" &
  pids+=($!)
done
"$BIN/orderlb" --listen "$HOST:6000" --legacy-listen "$HOST:12347" \
  --backends "$HOST:6001,$HOST:6002,$HOST:6003" 2>>"$DATA/orderlb.log" &
pids+=($!)

cat <<MSG
orderly is running: 3 nodes and a balancer, data under $DATA (logs: $DATA/*.log)
  balancer      $HOST:6000 (orderly protocol)  $HOST:12347 (the seed's protocol)
  client ports  $HOST:6001 $HOST:6002 $HOST:6003
  raft ports    $HOST:7001 $HOST:7002 $HOST:7003
try:
  $BIN/orderctl --addr $HOST:6000 order --customer 1 --number 1 --type custom
  $BIN/orderctl --addr $HOST:6000 get --customer 1
  $BIN/orderctl --addr $HOST:6000 status      # the balancer: leader, cache hits
  $BIN/orderctl status --all                  # every node
Ctrl-C stops everything.
MSG
# If a node dies on its own, say so and keep the others running until Ctrl-C.
wait
