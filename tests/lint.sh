#!/usr/bin/env bash
# Static checks of the C sources: cppcheck and clang-tidy (config in
# .clang-tidy). Prints one line per tool, "lint NAME: ok" or
# "lint NAME: FAILED", and the findings. Usage: tests/lint.sh [BUILDDIR]
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bdir=${1:-$top/build}
cd "$top"
srcs=(common/*.c edge/*.c)
rc=0
if command -v cppcheck >/dev/null 2>&1; then
    out=$(cppcheck --quiet --enable=warning,performance,portability --std=c11 \
        --inline-suppr -I common -I edge -I "$bdir" --suppress=missingIncludeSystem \
        --error-exitcode=1 "${srcs[@]}" 2>&1)
    if [ $? -eq 0 ] && [ -z "$out" ]; then echo "lint cppcheck: ok"; else echo "$out"; echo "lint cppcheck: FAILED"; rc=1; fi
else
    echo "lint cppcheck: skipped (not installed)"
fi
if command -v clang-tidy >/dev/null 2>&1; then
    out=$(clang-tidy --quiet "${srcs[@]}" -- -std=gnu11 -D_GNU_SOURCE -Icommon -Iedge -I"$bdir" \
        $(pkg-config --cflags libevent openssl libnghttp2 hiredis yaml-0.1 2>/dev/null) 2>&1 |
        grep -E '(warning|error):' | grep -v 'clang-diagnostic-' )
    if [ -z "$out" ]; then echo "lint clang-tidy: ok"; else echo "$out"; echo "lint clang-tidy: FAILED"; rc=1; fi
else
    echo "lint clang-tidy: skipped (not installed)"
fi
exit $rc
