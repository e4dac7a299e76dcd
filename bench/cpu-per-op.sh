#!/usr/bin/env bash
# CPU time and read/write system calls per operation of every running
# orderd and orderlb, while one `ordertest bench` runs. Usage:
#   bench/cpu-per-op.sh bin/ordertest --addr 127.0.0.1:6000 bench --customers 256 \
#       --conns 16 --orders 0 --duration 8s --quiet
# It only reads /proc; it starts and stops nothing but the command given.
set -euo pipefail

snapshot() {
  for pid in $(pgrep -x orderd || true) $(pgrep -x orderlb || true); do
    name=$(tr '\0' ' ' <"/proc/$pid/cmdline" | awk '{n=$1; sub(".*/", "", n); print n "[" $3 "]"}')
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    calls=$(awk '/^syscr|^syscw/ {printf "%s ", $2}' "/proc/$pid/io")
    echo "$pid $name $ticks $calls"
  done
}

before=$(mktemp) after=$(mktemp) out=$(mktemp)
trap 'rm -f "$before" "$after" "$out"' EXIT
snapshot >"$before"
start=$(date +%s.%N)
exec 3>&2
TIMEFORMAT='%U %S' # bash's time: user and system seconds of the command
{ time "$@" 2>&3 | tee "$out"; } 2>"$out.time"
end=$(date +%s.%N)
snapshot >"$after"

ops=$(grep -oE '^  [0-9]+ ops' "$out" | grep -oE '[0-9]+' || echo 0)
if [ "$ops" -eq 0 ]; then echo "no ops counted in the bench output" >&2; exit 1; fi
hz=$(getconf CLK_TCK)
read -r gu gs <"$out.time"; rm -f "$out.time"
printf '\n%-22s %10s %10s %12s %12s\n' process "cpu s" "us/op" "reads/op" "writes/op"
awk -v u="$gu" -v s="$gs" -v ops="$ops" \
  'BEGIN { printf "%-22s %10.2f %10.1f %12s %12s\n", "load generator", u + s, (u + s) * 1e6 / ops, "-", "-" }'
join <(sort "$before") <(sort "$after") | awk -v ops="$ops" -v hz="$hz" '{
  cpu = ($7 - $3) / hz
  printf "%-22s %10.2f %10.1f %12.2f %12.2f\n", $2, cpu, cpu * 1e6 / ops, ($8 - $4) / ops, ($9 - $5) / ops
}'
awk -v a="$start" -v b="$end" -v ops="$ops" 'BEGIN { printf "%d ops in %.1f s of wall time\n", ops, b - a }'
