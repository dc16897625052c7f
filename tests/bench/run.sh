#!/bin/bash
# Side-by-side benchmark of s3edge against nginx proxy_cache and Varnish.
#
#   tests/bench/run.sh [--rounds N] [--quick] [--no-profile] [scenario...]
#   tests/bench/run.sh purge [--quick] [--purges N] [--sizes N,N,...]
#
# Installs what is missing (Debian packages, only when a tool is absent),
# builds the bench origin and burst client into a temporary directory,
# raises the descriptor limit, runs tests/bench/bench.py and removes
# everything it started or created except the results under
# tests/bench/results/.  s3edge itself is not built here: $S3EDGE_BIN or
# <repo>/build/edge/s3edge is used when present.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3

need_pkgs=""
want() { command -v "$1" >/dev/null 2>&1 || need_pkgs="$need_pkgs $2"; }
want nginx nginx
want varnishd varnish
want wrk wrk
want h2load nghttp2-client
want gcc gcc
want pkg-config pkg-config
want ss iproute2
want openssl openssl
want perf linux-perf
pkg-config --exists libevent 2>/dev/null || need_pkgs="$need_pkgs libevent-dev"
if [ -n "$need_pkgs" ]; then
    echo "[bench] installing:$need_pkgs"
    if [ "$(id -u)" != 0 ]; then
        echo "[bench] not root: install$need_pkgs first" >&2
        exit 1
    fi
    # Packages must not start their system services (port 80, 6081).
    export DEBIAN_FRONTEND=noninteractive RUNLEVEL=1
    timeout 600 apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    timeout 900 apt-get install -y -q --no-install-recommends $need_pkgs \
        >/dev/null
fi

work=$(mktemp -d /tmp/s3edge-bench.XXXXXX)
shm_base=/dev/shm
[ -d "$shm_base" ] && [ -w "$shm_base" ] || shm_base=$work
shm=$(mktemp -d "$shm_base/s3edge-bench-cache.XXXXXX")
chmod 755 "$work" "$shm"

# shellcheck disable=SC2317  # called from the trap
cleanup() {
    # Stop every process group the driver recorded, then remove the caches.
    if [ -f "$work/pids" ]; then
        while read -r pid; do
            kill -TERM -- "-$pid" 2>/dev/null || true
        done < "$work/pids"
        sleep 1
        while read -r pid; do
            kill -KILL -- "-$pid" 2>/dev/null || true
        done < "$work/pids"
    fi
    rm -rf "$shm" "$work"
}
pypid=""
trap cleanup EXIT
# The driver runs in the background so that a signal reaches this trap at
# once; it then stops its servers itself (SIGTERM) before cleanup() runs.
# shellcheck disable=SC2317  # called from the trap
on_signal() {
    if [ -n "$pypid" ]; then
        kill -TERM "$pypid" 2>/dev/null
        wait "$pypid"
    fi
    exit 130
}
trap on_signal INT TERM

flags="-std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
-Wmissing-prototypes -Wformat=2 -Wvla"
# shellcheck disable=SC2046,SC2086
gcc $flags -o "$work/origin" "$here/origin.c" \
    $(pkg-config --cflags --libs libevent) -lpthread
# shellcheck disable=SC2086
gcc $flags -pthread -o "$work/burst" "$here/burst.c"

# 10,000 downloaders need more than 10,000 descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

export BENCH_WORK="$work" BENCH_BUILD="$work" BENCH_SHM="$shm"
# "run.sh purge [options]": the purge scenario, a driver of its own
driver=bench.py
if [ "${1:-}" = purge ]; then
    shift
    driver=purge.py
    command -v redis-server >/dev/null || { echo "[bench] purge needs redis-server" >&2; exit 1; }
fi
set +e
"$py" "$here/$driver" "$@" &
pypid=$!
wait "$pypid"
rc=$?
pypid=""
exit $rc
