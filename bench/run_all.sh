#!/usr/bin/env bash
# Every figure of bench/RESULTS.md, one connector_bench run after another; output to stdout and
# JSON files in ${BENCH_OUT:-build/bench-results}. Takes about 10 minutes on the 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build --preset release >/dev/null
bench=build/release/bench/connector_bench
out=${BENCH_OUT:-build/bench-results}
mkdir -p "$out"
run() {
  local name=$1
  shift
  echo "### $name: connector_bench $*"
  "$bench" --bin-dir build/release --json "$out/$name.json" "$@"
  echo
}
run outputs
run outputs-batch1000 --batch-size 1000
run local-file-fsync-disk --outputs local_file --fsync --local-dir /var/tmp
for batch in 10 100 1000; do
  for in_flight in 1 4 16; do
    run "blackhole-b$batch-f$in_flight" --outputs blackhole --batch-size "$batch" --in-flight "$in_flight"
  done
done
for instances in 1 2 4; do
  run "instances-$instances" --outputs blackhole,event_hubs --instances "$instances"
done
run size-100 --outputs blackhole,event_hubs --size 100
run size-1k --outputs blackhole,event_hubs --size 1000
run size-10k --outputs blackhole,event_hubs --size 10000 --entries 50000
run million --outputs blackhole,event_hubs --entries 1000000
run latency --entries 0 --outputs blackhole,local_file,event_hubs --latency-rates 1000,20000
run eventhubs-batching --outputs event_hubs --batch-size 1000 --eh-batching true,false,true,false
run eventhubs-batching-wan --outputs event_hubs --batch-size 1000 --eh-delay-ms 20 --eh-credit 300 --eh-batching true,false
run eventhubs-batching-websockets --outputs event_hubs --batch-size 1000 --eh-transport amqp,websockets --eh-batching true
