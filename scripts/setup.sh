#!/usr/bin/env bash
# Installs every Debian package the build, the tests, the demo and the benchmarks need.
# Idempotent and quiet when everything is already there. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential g++ clang cmake ninja-build pkg-config git ca-certificates openssl procps
  libhiredis-dev libssl-dev libqpid-proton-cpp12-dev libqpid-proton11-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libcpp-httplib-dev
  libjemalloc-dev libgtest-dev libgmock-dev gcovr libboost1.81-dev
  redis-server redis-tools redis-sentinel tinyproxy
  prometheus
  help2man lintian systemd bash-completion python3-yaml iproute2
)
# kubectl renders the Kubernetes manifests offline (kubectl kustomize) in their test; an image may carry
# its own kubectl (Google's package), which Debian's kubernetes-client would conflict with.
if ! command -v kubectl >/dev/null 2>&1; then
  PACKAGES+=(kubernetes-client)
fi
# Node.js runs Microsoft's own Event Hubs client in one interoperability test; an image may already
# carry a Node.js with its own npm (NodeSource's), which Debian's npm package would conflict with.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages start a system-wide redis-server (6379), redis-sentinel (26379), prometheus (9090) and
# tinyproxy (8888); the demo and the tests start their own (prometheus: the monitoring test, which also
# runs its promtool; tinyproxy: the WebSocket transport's proxy test).
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
  $SUDO systemctl disable --now redis-sentinel >/dev/null 2>&1 || true
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  $SUDO systemctl disable --now tinyproxy >/dev/null 2>&1 || true
fi
