#!/usr/bin/env bash
# The long form of the fault-injection suite: the chaos tests, publishing and killing for
# SOAK_MINUTES (default 30) instead of the CI-sized run. Prints each scenario's figures
# (published, delivered, dead-lettered, duplicates, missing, kills, Redis restarts).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${SOAK_MINUTES:-30}"
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target chaos_tests >/dev/null
# Each scenario gets the whole duration; entries follow from the rate.
export CHAOS_DURATION_S=$((minutes * 60 / ${SOAK_SCENARIOS:-1}))
export CHAOS_RATE="${CHAOS_RATE:-500}"
export CHAOS_KILLS="${CHAOS_KILLS:-$((minutes * 20))}"
export CHAOS_REDIS_RESTARTS="${CHAOS_REDIS_RESTARTS:-$((minutes * 2))}"
exec build/release/tests/chaos_tests --gtest_filter="${SOAK_FILTER:-*}"
