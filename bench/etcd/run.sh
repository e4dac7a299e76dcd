#!/usr/bin/env bash
# make bench-etcd: the same write and read scenarios against a 3-member
# etcd on 127.0.0.1 (Debian's etcd-server, fsync on as by default) and
# against orderly, in one run, and one table with both and their ratio.
# With AB_BIN (make bench-etcd-ab REV=...: another build's binaries),
# each round runs orderly twice, this build and that one, in alternating
# order, against the same etcd results: a before/after of a change.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DUR=${BENCH_DURATION:-10s}
BIN=${BIN:-$ROOT/bin}
OUT=${OUT:-$ROOT/bench/results}

if ! command -v etcd >/dev/null; then
  echo "installing etcd-server (Debian)..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
fi
etcd --version | head -1

TMP=$(mktemp -d /tmp/orderly-bench-etcd.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

CLUSTER=e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803
VERSION=$(etcd --version | head -1)
(cd "$ROOT/bench/etcd" && go build -o "$TMP/etcd-driver" .)

# One round: a fresh 3-member etcd, every etcd run, etcd stopped, then
# orderly's runs on a fresh cluster (each system has the machine to
# itself). Two rounds, interleaved, so an hour's noise shows as the
# difference between them; the report gives both.
etcd_round() {
  local res=$1 i
  rm -rf "$TMP"/e?
  for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$TMP/e$i" \
      --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
      --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
      --initial-cluster "$CLUSTER" --initial-cluster-state new --initial-cluster-token orderly-bench \
      >"$TMP/e$i.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 100); do
    curl -sf http://127.0.0.1:23791/health >/dev/null && break
    sleep 0.2
  done
  curl -sf http://127.0.0.1:23791/health >/dev/null || { echo "etcd did not become healthy"; tail "$TMP"/e1.log; exit 1; }
  mkdir -p "$res"
  # A warm-up, not reported, as bench/suite gives orderly's fresh cluster:
  # the first run on a just-started cluster measured its start, not it.
  "$TMP/etcd-driver" --op put --leader-only --clients 16 --duration 2s --json "$TMP/warmup.json" >/dev/null
  # "via leader" rows: to etcd's leader only, as orderly's go to its leader.
  for c in 1 16 64 256; do "$TMP/etcd-driver" --op put --leader-only --clients $c --duration "$DUR" --json "$res/put-$c.json"; done
  # Linearizable gets: spread over the members (each asks the leader for a
  # read index), as orderly's balancer spreads reads.
  for c in 16 256; do "$TMP/etcd-driver" --op get --clients $c --duration "$DUR" --json "$res/get-$c.json"; done
  "$TMP/etcd-driver" --op get-serializable --clients 256 --duration "$DUR" --json "$res/get-serializable-256.json"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

cd "$ROOT"
go build -o "$TMP/suite" ./bench/suite
orderly_run() { # $1 binaries, $2 label, $3 round
  "$TMP/suite" --bin "$1" --out "$OUT" --duration "$DUR" --etcd "$TMP/etcd-round$3" \
    --etcd-label "$VERSION, round $3 of 2$2"
}
for round in 1 2; do
  etcd_round "$TMP/etcd-round$round"
  if [ -z "${AB_BIN:-}" ]; then
    orderly_run "$BIN" "" $round
  elif [ $round = 1 ]; then
    orderly_run "$BIN" ", this build" $round
    orderly_run "$AB_BIN" ", build ${AB_REV:-B}" $round
  else
    orderly_run "$AB_BIN" ", build ${AB_REV:-B}" $round
    orderly_run "$BIN" ", this build" $round
  fi
done
