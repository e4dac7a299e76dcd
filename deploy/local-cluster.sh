#!/usr/bin/env bash
# Runs a local 3-node orderly cluster and its balancer in the foreground.
# It refuses to start (and starts nothing) when another make run holds its
# data dir or any of its ports is taken. When a process exits on its own it
# says which, why (the end of its log) and how to start it again; the
# others keep running. Ctrl-C (or SIGTERM) stops everything cleanly, exit
# status 0: each process gets SIGTERM, and a leader hands its leadership
# over before it exits.
set -euo pipefail
BIN=${BIN:-$(dirname "$0")/../bin}
DATA=${DATA:-./data}
HOST=${HOST:-127.0.0.1}
PEERS="n1=$HOST:7001,n2=$HOST:7002,n3=$HOST:7003"
PORTS=(6000 12347 6001 6002 6003 7001 7002 7003 8000 8001 8002 8003)
mkdir -p "$DATA"

# One make run per data dir: the lock goes with this shell's life.
exec 9>"$DATA/.make-run.lock"
if ! flock -n 9; then
  echo "make run: another make run is up on $DATA (it holds $DATA/.make-run.lock); nothing started" >&2
  exit 1
fi
busy=()
for p in "${PORTS[@]}"; do
  if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then busy+=("$p"); fi
done
if ((${#busy[@]})); then
  echo "make run: port(s) ${busy[*]} on $HOST already taken; nothing started" >&2
  command -v ss >/dev/null && ss -ltnp 2>/dev/null | grep -E ":($(IFS='|'; echo "${busy[*]}"))\b" >&2 || true
  exit 1
fi

# Mutual TLS on every port but the seed's: a development CA and the
# certificates of the nodes, the balancer and one client per role, made on
# the first start and reused after (orderctl finds them in $DATA/certs).
CERTS="$DATA/certs"
"$BIN/orderctl" certs dev --dir "$CERTS" --nodes n1,n2,n3 --hosts "$HOST,localhost" >/dev/null
tls() { echo --ca "$CERTS/ca.crt" --cert "$CERTS/$1.crt" --key "$CERTS/$1.key"; }

declare -A name cmdline
start() { # start NAME LOG CMD...
  local n=$1 log=$2
  shift 2
  "$@" 2>>"$log" &
  name[$!]=$n
  cmdline[$!]="$* 2>>$log &"
}

stopping=0
stop() {
  stopping=1
  trap - INT TERM
  echo
  echo "stopping the cluster..."
  for pid in "${!name[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
  echo "stopped."
  exit 0
}
trap stop INT TERM

# SHARDS=S (make run SHARDS=3) creates a cluster of S shards; a data dir
# keeps the count it was created with.
shards=()
[[ -n ${SHARDS:-} ]] && shards=(--shards "$SHARDS")
for i in 1 2 3; do
  start "orderd n$i" "$DATA/n$i.log" "$BIN/orderd" --id "n$i" --data-dir "$DATA/n$i" \
    --raft-addr "$HOST:700$i" --client-addr "$HOST:600$i" --http-addr "$HOST:800$i" --peers "$PEERS" "${shards[@]}" $(tls "n$i") "$@"
done
start orderlb "$DATA/orderlb.log" "$BIN/orderlb" --listen "$HOST:6000" --legacy-listen "$HOST:12347" \
  --backends "$HOST:6001,$HOST:6002,$HOST:6003" --http-addr "$HOST:8000" $(tls orderlb) ${LB_FLAGS:-}

cat <<MSG
orderly is running: 3 nodes and a balancer, data under $DATA (logs: $DATA/*.log)
  mutual TLS on every port but the seed's; certificates in $CERTS
  (orderctl run from here finds them; elsewhere: export ORDERLY_CERTS=$CERTS)
  balancer      $HOST:6000 (orderly protocol)  $HOST:12347 (the seed's protocol)
  client ports  $HOST:6001 $HOST:6002 $HOST:6003
  raft ports    $HOST:7001 $HOST:7002 $HOST:7003
  http side ports  https://$HOST:8000 (balancer) https://$HOST:8001-8003 (nodes):
                   the operator's page, /metrics, /readyz, /livez (deploy/monitoring: Prometheus, alerts, Grafana)
try:
  $BIN/orderctl --addr $HOST:6000 order --customer 1 --number 1 --type custom
  $BIN/orderctl --addr $HOST:6000 get --customer 1
  $BIN/orderctl --addr $HOST:6000 status      # the balancer: leader, cache hits
  $BIN/orderctl status --all                  # every node
  $BIN/orderctl shards list                   # the shards: customers, leader, replicas
  $BIN/orderctl dashboard                     # the operator's page on http://127.0.0.1:8080/
  $BIN/orderctl snapshot save backup.snap     # a backup (restore: orderd --restore, deploy/README.md)
  $BIN/orderctl alarm list                    # disk alarms (a node under --min-free stops new orders)
  curl -s --cacert $CERTS/ca.crt --cert $CERTS/reader.crt --key $CERTS/reader.key https://$HOST:8001/metrics | head
Ctrl-C stops everything.
MSG

# A process that exits on its own: say which and why; the others go on.
while ((${#name[@]})); do
  status=0
  wait -n -p done || status=$?
  ((stopping)) && break
  [[ -n ${done:-} && -n ${name[$done]:-} ]] || continue
  n=${name[$done]}
  log=${cmdline[$done]##*2>>}
  log=${log% &}
  echo >&2
  echo "make run: $n exited with status $status; the end of $log:" >&2
  tail -n 5 "$log" | sed 's/^/    /' >&2
  echo "  start it again (in another shell) with:" >&2
  echo "    ${cmdline[$done]}" >&2
  unset "name[$done]"
done
echo "make run: every process has exited" >&2
