#!/usr/bin/env bash
# Memory over a long run: the connector (release build) moves a steady publisher's entries to
# fake-eventhubs (or LOCAL_FILE) while its RSS is sampled. Usage:
#   bench/memory_run.sh [seconds=600] [rate=10000] [output=EVENT_HUBS|LOCAL_FILE|BLACKHOLE]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
rate=${2:-10000}
output=${3:-EVENT_HUBS}
bin=build/release
work=$(mktemp -d /tmp/connector-memory.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() {
  local port=$(( (RANDOM % 20000) + 30000 ))
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
hub_port=$(free_port)
"$bin/tools/fake-eventhubs" --port "$hub_port" --hub memory --key-name send --key memory-key >"$work/fake.log" 2>&1 &
pids+=($!)
sleep 1
export REDIS_URL="redis://127.0.0.1:$redis_port" STREAM_KEY=memory CONSUMER_GROUP_NAME=memory LOG_LEVEL=warn HTTP_ADDRESS=off
export OUTPUT_ADAPTER_TYPE="$output" OUTPUT_DIRECTORY="$work/out" OUTPUT_FSYNC=false
export EVENT_HUB_CONNECTION_STRING="Endpoint=sb://localhost:$hub_port/;SharedAccessKeyName=send;SharedAccessKey=memory-key;EntityPath=memory;UseDevelopmentEmulator=true"
"$bin/redis-eventhubs-connector" >"$work/connector.log" 2>&1 &
connector=$!
pids+=($connector)
sleep 1
"$bin/tools/redis-stream-publisher" --rate "$rate" >"$work/publisher.log" 2>&1 &
pids+=($!)
# Keep the stream (and Redis) small: LOCAL_FILE output is pruned as it goes, the stream trimmed.
echo "second rss_kb stream_length"
for ((t = 0; t <= seconds; t += 10)); do
  rss=$(awk '/VmRSS/{print $2}' "/proc/$connector/status")
  length=$(redis-cli -p "$redis_port" XLEN memory)
  echo "$t $rss $length"
  redis-cli -p "$redis_port" XTRIM memory MAXLEN 100000 >/dev/null
  [[ "$output" == LOCAL_FILE ]] && find "$work/out" -name '*.json' -mmin +0.1 -delete 2>/dev/null
  sleep 10
done
echo "peak $(awk '/VmHWM/{print $2}' "/proc/$connector/status") kB"
