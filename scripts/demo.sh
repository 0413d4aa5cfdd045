#!/usr/bin/env bash
# The quick-start demo: installs what is missing, builds, and runs the publisher and the connector
# with the LOCAL_FILE output, against a redis-server of its own on a free local port. Ctrl+C stops
# everything cleanly and prints a summary of this run (published entries, files written, still pending).
#
# Knobs (environment): DEMO_RATE (entries/s, default 50), DEMO_OUTPUT (a new or empty directory; default
# ./output/demo-<time>), DEMO_SECONDS (stop by itself after that long; default: run until Ctrl+C),
# DEMO_REDIS_URL (a Redis to use instead of starting one: the demo writes its own stream demo:<time>
# there; nothing else — not REDIS_URL, not ./.env — ever points the demo at a Redis).
set -euo pipefail
# A dead stdout (`scripts/demo.sh | tee log`, then tee killed) must not kill this script before it has
# stopped its children: a failed write then ends the script through the EXIT trap instead.
trap '' PIPE
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh
echo "demo: building the connector and the publisher (the first build takes a few minutes)"
cmake --preset release >/dev/null
cmake --build --preset release --target redis-eventhubs-connector redis-stream-publisher
bin="$root/build/release"

run_id=$(date +%Y%m%d-%H%M%S)
workdir=$(mktemp -d /tmp/connector-demo.XXXXXX)
redis_pid=""
publisher_pid=""
connector_pid=""
sleep_pid=""
redis_url=${DEMO_REDIS_URL:-}
stream="demo:$run_id"
group="demo"
output=${DEMO_OUTPUT:-$root/output/demo-$run_id}
if [[ -d "$output" && -n "$(ls -A "$output")" ]]; then
  echo "demo: $output is not empty; DEMO_OUTPUT must name a new or empty directory" >&2
  exit 2
fi
mkdir -p "$output"

cli() { redis-cli -u "$redis_url" --no-auth-warning "$@"; }
say() { echo "demo: $*"; }

cleanup() {
  local status=$1
  trap - INT TERM EXIT
  set +e  # every child must be stopped, whatever fails here (a closed stdout included)
  say "stopping the publisher, then the connector (it finishes and acks what is in flight)"
  [[ -n "$sleep_pid" ]] && kill "$sleep_pid" 2>/dev/null
  [[ -n "$publisher_pid" ]] && kill -INT "$publisher_pid" 2>/dev/null && wait "$publisher_pid" 2>/dev/null
  # Let the connector drain what the publisher wrote last before asking it to stop.
  for _ in $(seq 50); do
    lag=$(cli XINFO GROUPS "$stream" 2>/dev/null | awk 'f{print; exit} /^lag$/{f=1}')
    pending=$(cli XPENDING "$stream" "$group" 2>/dev/null | head -n 1)
    [[ "${lag:-0}" == "0" && "${pending:-0}" == "0" ]] && break
    sleep 0.1
  done
  [[ -n "$connector_pid" ]] && kill -INT "$connector_pid" 2>/dev/null && wait "$connector_pid" 2>/dev/null
  published=$(cli XLEN "$stream" 2>/dev/null || echo "?")
  pending=$(cli XPENDING "$stream" "$group" 2>/dev/null | head -n 1 || echo "?")
  files=$(find "$output" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l)
  say "published $published entries to '$stream'; $files files in $output; ${pending:-?} pending"
  [[ -n "$redis_pid" ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  rm -rf "$workdir"
  exit "${demo_status:-$status}"
}
trap 'cleanup 0' INT TERM
trap 'cleanup $?' EXIT

if [[ -n "$redis_url" ]]; then
  cli PING | grep -q PONG || { echo "demo: DEMO_REDIS_URL does not answer PING" >&2; exit 2; }
  say "using the Redis at DEMO_REDIS_URL (stream '$stream')"
else
  port=$(( (RANDOM % 20000) + 30000 ))
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  setsid redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$workdir" \
    --daemonize no >"$workdir/redis.log" 2>&1 &
  redis_pid=$!
  redis_url="redis://127.0.0.1:$port"
  for _ in $(seq 100); do cli PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  say "started redis-server on 127.0.0.1:$port"
fi

# The children get only the demo's settings: no exported variable and no ./.env of the user's (an empty
# --env-file replaces ./.env) can point them elsewhere.
: >"$workdir/empty.env"
child_env=(env -i PATH="$PATH" HOME="${HOME:-/root}" REDIS_URL="$redis_url" STREAM_KEY="$stream"
  CONSUMER_GROUP_NAME="$group" LOG_FORMAT="${LOG_FORMAT:-pretty}")

# Every child runs in a session of its own: Ctrl+C reaches only this script, which stops them in order (a second
# SIGINT would make the connector exit at once).
setsid "${child_env[@]}" "$bin/redis-eventhubs-connector" --env-file "$workdir/empty.env" \
  --output-adapter-type LOCAL_FILE --output-directory "$output" --group-start-id 0 &
connector_pid=$!
setsid "${child_env[@]}" "$bin/tools/redis-stream-publisher" --env-file "$workdir/empty.env" \
  --rate "${DEMO_RATE:-50}" &
publisher_pid=$!
say "publishing to '$stream' at ${DEMO_RATE:-50}/s; files go to $output. Press Ctrl+C to stop."

# A progress line every few seconds; writing it is also how a dead stdout is noticed (see `trap '' PIPE`).
started=$SECONDS
while kill -0 "$connector_pid" 2>/dev/null; do
  if [[ -n "${DEMO_SECONDS:-}" ]] && ((SECONDS - started >= DEMO_SECONDS)); then
    exit 0
  fi
  sleep 5 &
  sleep_pid=$!
  wait "$sleep_pid" || true
  sleep_pid=""
  files=$(find "$output" -maxdepth 1 -name '*.json' | wc -l)
  say "$(cli XLEN "$stream" 2>/dev/null || echo '?') published, $files files written"
done
status=0
wait "$connector_pid" || status=$?
connector_pid=""
say "the connector exited by itself with status $status"
demo_status=$status
