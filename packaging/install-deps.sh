#!/usr/bin/env bash
# Install what building, testing and demonstrating s3edge needs on Debian 12.
# Idempotent: installs only what is missing. Usage: packaging/install-deps.sh
set -euo pipefail

PKGS=(
    # build
    autoconf automake make gcc pkg-config
    libevent-dev libssl-dev libnghttp2-dev libhiredis-dev libyaml-dev libjansson-dev check
    # tests and demo: origin (s3rver on Node.js behind a SigV4 gate using
    # botocore), clients, fuzzing
    python3 python3-pytest python3-botocore python3-h2 awscli curl ca-certificates
    nghttp2-client aria2 wget clang libclang-rt-14-dev procps
    # fleet invalidation tests: a real Redis
    redis-server
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
# any Node.js that brings npm will do (Debian's nodejs + npm, or another build)
if ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

if ((${#missing[@]} > 0)); then
    SUDO=
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "install-deps: run as root (or install sudo): missing ${missing[*]}" >&2
            exit 1
        }
        SUDO=sudo
    fi
    echo "install-deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
