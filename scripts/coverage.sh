#!/usr/bin/env bash
# Line coverage of src/ over the whole suite (gcov + gcovr); the report lands in build/coverage/coverage.txt.
# Exits with the test suite's status, after writing the report either way.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/test.sh coverage "$@"
status=$?
cmake --build --preset coverage --target coverage || status=1
exit "$status"
