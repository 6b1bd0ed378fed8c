#!/usr/bin/env bash
# Installs the Debian 12 packages connreg needs to build, test and benchmark.
# Idempotent: installs only what is missing. Run as root (or with sudo available).
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config ninja-build
  libboost1.81-dev libboost-url1.81-dev libboost-json1.81-dev
  libsqlite3-dev libsodium-dev libssl-dev libspdlog-dev libfmt-dev libcli11-dev
  libpq-dev libmariadb-dev libcurl4-openssl-dev freetds-dev libarchive-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
TEST_PKGS=(
  git clang-format clang-tidy python3 python3-pytest python3-jsonschema python3-requests curl sqlite3 wrk nginx-light
  postgresql mariadb-server
)

want=("${BUILD_PKGS[@]}")
if [[ "${1:-}" != "--build-only" ]]; then
  want+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm install the pinned Swagger UI assets at build time (package-lock.json).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
