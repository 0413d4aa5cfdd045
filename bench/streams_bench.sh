#!/usr/bin/env bash
# Many streams on a Redis Cluster against one stream on one node, in the same run: the same number of
# entries (~200 B, preloaded by redis-stream-publisher) drained by the real connector (BLACKHOLE output,
# BATCH_SIZE=1000) from
#   single:  one stream on one redis-server;
#   single-N: the same N streams on that one server (what parallel readers alone give);
#   cluster: STREAM_KEYS streams (default 4, hash-tagged onto every primary) on a 3-primary cluster.
# Prints entries/s, the connector's CPU seconds per million entries, and each Redis process's busy share
# (INFO cpu, user + system, over the drain) so the reader sees which side limits the figure.
# Usage: bench/streams_bench.sh [entries, default 400000]; needs build/release (connector, publisher).
set -euo pipefail
cd "$(dirname "$0")/.."
entries=${1:-400000}
streams=${STREAM_KEYS:-4}
bin=build/release
work=$(mktemp -d /tmp/streams-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {  # a port with its cluster bus port (+10000) free too
  python3 - <<'EOF'
import random, socket
while True:
    port = random.randint(20000, 50000)
    try:
        for p in (port, port + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", p)); s.close()
        print(port); break
    except OSError:
        pass
EOF
}

start_redis() {  # port [extra redis-server arguments]
  local port=$1
  shift
  mkdir -p "$work/$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/$port" \
    --daemonize no "$@" >"$work/$port/log" 2>&1 &
  pids+=($!)
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
}

calc() { awk "BEGIN { print $1 }"; }  # floating-point arithmetic without bc

cpu_of_redis() {  # port → user + system CPU seconds
  redis-cli -p "$1" info cpu | tr -d '\r' |
    awk -F: '/^used_cpu_sys:/ {s=$2} /^used_cpu_user:/ {u=$2} END {printf "%.3f", s + u}'
}

cpu_of_pid() {  # pid → user + system CPU seconds
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"
}

drained() {  # port stream → true when the group read everything and has nothing pending
  local info
  info=$(redis-cli -p "$1" xinfo groups "$2" 2>/dev/null | tr -d '\r') || return 1
  awk 'prev == "pending" && $0 != "0" {busy = 1} prev == "lag" && $0 != "0" {busy = 1}
       {prev = $0} END {exit busy}' <<<"$info" && [[ -n "$info" ]]
}

# One run: label, a seed port, REDIS_CLUSTER, the stream keys (comma list), the ports holding each key.
run() {
  local label=$1 port=$2 cluster=$3 keys=$4
  shift 4
  local owners=("$@")
  local env=(REDIS_URL="redis://127.0.0.1:$port" REDIS_CLUSTER="$cluster" STREAM_KEY="$keys"
             CONSUMER_GROUP_NAME=bench CONSUMER_NAME=bench-1 GROUP_START_ID=0 LOG_LEVEL=warn
             HTTP_ADDRESS=off STATS_INTERVAL_MS=0)
  env "${env[@]}" "$bin/tools/redis-stream-publisher" --rate 0 --count "$entries" --size 200 >/dev/null
  local ports
  ports=$(printf '%s\n' "${owners[@]}" | sort -u)
  declare -A before
  for p in $ports; do before[$p]=$(cpu_of_redis "$p"); done
  local started
  started=$(date +%s.%N)
  env "${env[@]}" OUTPUT_ADAPTER_TYPE=BLACKHOLE BATCH_SIZE=1000 "$bin/redis-eventhubs-connector" \
    >"$work/$label.log" 2>&1 &
  local connector=$!
  IFS=, read -r -a key_list <<<"$keys"
  while true; do
    local all=1
    for i in "${!key_list[@]}"; do drained "${owners[$i]}" "${key_list[$i]}" || all=0; done
    [[ $all == 1 ]] && break
    sleep 0.05
  done
  local ended cpu
  ended=$(date +%s.%N)
  cpu=$(cpu_of_pid "$connector")
  kill -INT "$connector"
  wait "$connector" || true
  local seconds
  seconds=$(calc "$ended - $started")
  printf '%-9s %2d stream(s) %9d entries %7.2f s %9.0f entries/s  connector %5.2f CPU s/M' "$label" \
    "${#key_list[@]}" "$entries" "$seconds" "$(calc "$entries / $seconds")" \
    "$(calc "$cpu * 1000000 / $entries")"
  for p in $ports; do
    printf '  redis:%s busy %3.0f%%' "$p" "$(calc "($(cpu_of_redis "$p") - ${before[$p]}) * 100 / $seconds")"
  done
  printf '  (load %s)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
}

single=$(free_port)
start_redis "$single"

cluster_ports=()
for _ in 1 2 3; do
  port=$(free_port)
  start_redis "$port" --cluster-enabled yes --cluster-config-file "nodes-$port.conf"
  cluster_ports+=("$port")
done
redis-cli --cluster create $(printf "127.0.0.1:%s " "${cluster_ports[@]}") --cluster-replicas 0 --cluster-yes \
  >"$work/create.log" 2>&1
until [[ $(redis-cli -p "${cluster_ports[0]}" cluster info | tr -d '\r' | grep -c 'cluster_state:ok') == 1 ]]; do
  sleep 0.1
done
for port in "${cluster_ports[@]}"; do
  until redis-cli -p "$port" cluster info | tr -d '\r' | grep -q 'cluster_state:ok'; do sleep 0.1; done
done

# Hash tags spread over every primary: the owner of each key, from CLUSTER NODES' slot ranges.
owner_of() {
  local slot
  slot=$(redis-cli -p "${cluster_ports[0]}" cluster keyslot "$1")
  redis-cli -p "${cluster_ports[0]}" cluster nodes | awk -v slot="$slot" '
    /master/ { for (i = 9; i <= NF; i++) { split($i, r, "-"); if (r[2] == "") r[2] = r[1];
               if (slot >= r[1] && slot <= r[2]) { split($2, a, "[:@]"); print a[2] } } }'
}
keys=() owners=()
declare -A used
tag=0
while [[ ${#keys[@]} -lt $streams ]]; do
  key="{b$tag}:stream"
  owner=$(owner_of "$key")
  tag=$((tag + 1))
  # Round-robin over the primaries: the next primary that holds fewer keys than the others.
  if [[ ${used[$owner]:-0} -gt $(( ${#keys[@]} / 3 )) ]]; then continue; fi
  used[$owner]=$(( ${used[$owner]:-0} + 1 ))
  keys+=("$key")
  owners+=("$owner")
done

echo "streams_bench: $entries entries of ~200 B, BATCH_SIZE=1000, BLACKHOLE; $(nproc) cores"
run single "$single" false "bench:stream" "$single"
single_owners=()
for _ in "${keys[@]}"; do single_owners+=("$single"); done
run "single-$streams" "$single" false "$(IFS=,; echo "${keys[*]}")" "${single_owners[@]}"
run cluster "${cluster_ports[0]}" true "$(IFS=,; echo "${keys[*]}")" "${owners[@]}"
