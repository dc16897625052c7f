#!/usr/bin/env bash
# Configure and build s3edge out of tree. Usage: packaging/build.sh [BUILDDIR [configure args...]]
# BUILDDIR defaults to build/ at the top of the source tree.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bdir=${1:-$top/build}
shift || true
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
    autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi
mkdir -p "$bdir"
cd "$bdir"
if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ]; then
    "$top/configure" -q "$@"
fi
make -s -j"$(nproc)" all
make -s -j"$(nproc)" check TESTS= >/dev/null  # builds the unit tests without running them
