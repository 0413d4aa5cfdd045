#!/usr/bin/env bash
# Builds and runs the whole test suite: unit, integration (real redis-server, real AMQP peer) and the
# CI-sized chaos run. Usage: scripts/test.sh [preset] [extra ctest args]; presets: dev (default),
# asan, tsan, release, coverage (see CMakePresets.json).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-dev}"
shift || true

bash scripts/setup.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
# Tests start their own servers on free ports, so two can run at once on this 2-core machine.
ctest --preset "$preset" -j "${TEST_JOBS:-2}" "$@"
