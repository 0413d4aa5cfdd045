#!/usr/bin/env bash
# The quick-start demo: installs what is missing, builds, and runs the publisher and the connector
# with the LOCAL_FILE output. Uses REDIS_URL when it points at a reachable Redis (environment or
# ./.env), otherwise starts a redis-server of its own on a free local port. Ctrl+C stops everything
# cleanly and prints a summary (published entries, files written, entries still pending).
#
# Knobs (environment): DEMO_RATE (entries/s, default 50), DEMO_OUTPUT (default ./output),
# STREAM_KEY, CONSUMER_GROUP_NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target redis-eventhubs-connector redis-stream-publisher >/dev/null
bin="$root/build/release"

env_value() {  # the variable from the environment, else from ./.env (last assignment wins)
  local name=$1
  if [[ -n "${!name:-}" ]]; then
    printf '%s' "${!name}"
  elif [[ -f .env ]]; then
    sed -n -E "s/^[[:space:]]*(export[[:space:]]+)?${name}[[:space:]]*=[[:space:]]*//p" .env | tail -n 1 |
      sed -E 's/^"(.*)"$/\1/; s/^'"'"'(.*)'"'"'$/\1/'
  fi
}

workdir=$(mktemp -d /tmp/connector-demo.XXXXXX)
redis_pid=""
publisher_pid=""
connector_pid=""
redis_url=$(env_value REDIS_URL)
stream=$(env_value STREAM_KEY)
stream=${stream:-telemetry:events}
group=$(env_value CONSUMER_GROUP_NAME)
group=${group:-eventhubs-connector}
output=${DEMO_OUTPUT:-$root/output}

cli() { redis-cli -u "$redis_url" --no-auth-warning "$@"; }

if [[ -n "$redis_url" ]] && cli PING 2>/dev/null | grep -q PONG; then
  echo "demo: using the Redis at REDIS_URL"
else
  port=$(( (RANDOM % 20000) + 30000 ))
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  setsid redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$workdir" \
    --daemonize no >"$workdir/redis.log" 2>&1 &
  redis_pid=$!
  redis_url="redis://127.0.0.1:$port"
  for _ in $(seq 100); do cli PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  echo "demo: started redis-server on 127.0.0.1:$port"
fi

cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping the publisher, then the connector (it finishes and acks what is in flight)"
  [[ -n "$publisher_pid" ]] && kill -INT "$publisher_pid" 2>/dev/null && wait "$publisher_pid" 2>/dev/null || true
  # Let the connector drain what the publisher wrote last before asking it to stop.
  for _ in $(seq 50); do
    lag=$(cli XINFO GROUPS "$stream" 2>/dev/null | awk 'f{print; exit} /^lag$/{f=1}')
    pending=$(cli XPENDING "$stream" "$group" 2>/dev/null | head -n 1)
    [[ "${lag:-0}" == "0" && "${pending:-0}" == "0" ]] && break
    sleep 0.1
  done
  [[ -n "$connector_pid" ]] && kill -INT "$connector_pid" 2>/dev/null && wait "$connector_pid" 2>/dev/null || true
  published=$(cli XLEN "$stream" 2>/dev/null || echo "?")
  pending=$(cli XPENDING "$stream" "$group" 2>/dev/null | head -n 1 || echo "?")
  files=$(find "$output" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l)
  echo "demo: stream '$stream' holds $published entries; $files files in $output; $pending pending"
  [[ -n "$redis_pid" ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
  rm -rf "$workdir"
  exit "${demo_status:-0}"
}
trap cleanup INT TERM EXIT

mkdir -p "$output"
export REDIS_URL="$redis_url" STREAM_KEY="$stream" CONSUMER_GROUP_NAME="$group" LOG_FORMAT="${LOG_FORMAT:-pretty}"
# Every child runs in a session of its own: Ctrl+C reaches only this script, which stops them in order (a second SIGINT
# would make the connector exit at once).
setsid "$bin/redis-eventhubs-connector" --output-adapter-type LOCAL_FILE --output-directory "$output" \
  --group-start-id 0 &
connector_pid=$!
setsid "$bin/tools/redis-stream-publisher" --rate "${DEMO_RATE:-50}" &
publisher_pid=$!
echo "demo: publishing to '$stream' at ${DEMO_RATE:-50}/s; files go to $output. Press Ctrl+C to stop."
status=0
wait "$connector_pid" || status=$?
connector_pid=""
echo "demo: the connector exited by itself with status $status"
demo_status=$status
