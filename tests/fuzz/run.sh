#!/usr/bin/env bash
# Build the libFuzzer targets in tests/fuzz and run each for a bounded time.
#
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]
#   SECONDS  run time per target (default 20), passed as -max_total_time
#   TARGET   names such as http1_request (default: every fuzz_*.c here)
#
# Builds with clang -fsanitize=fuzzer,address,undefined into a temporary
# directory (or $FUZZ_WORKDIR, kept, to grow a corpus over long runs by
# hand), never into the source tree. Seeds come from
# tests/fuzz/corpus/fuzz_NAME/ and are only read, with tests/fuzz/NAME.dict
# when there is one; new inputs go to the work directory. Prints one line
# per target, "fuzz NAME: ok" or "fuzz NAME: FAILED (...)", and exits
# non-zero if any target failed to build or crashed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
seconds=${1:-20}
[ $# -gt 0 ] && shift
case $seconds in
'' | *[!0-9]*)
    echo "usage: tests/fuzz/run.sh [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac

CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: $CC not found" >&2
    echo "fuzz all: FAILED (no clang)"
    exit 1
fi

if [ -n "${FUZZ_WORKDIR:-}" ]; then
    work=$FUZZ_WORKDIR
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/s3edge-fuzz.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi

CFLAGS="-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -Wall -Wextra -Werror -I$top/common"

# What each target links besides its own file.
sources_for() {
    case $1 in
    http1_request | http1_response)
        echo "common/http1.c common/err.c common/vas.c" ;;
    uri)
        echo "common/uri.c common/err.c common/vas.c" ;;
    range)
        echo "common/range.c common/err.c common/vas.c" ;;
    conf)
        echo "common/conf.c common/err.c common/vas.c" ;;
    *)
        echo "common/err.c common/vas.c" ;;
    esac
}

libs_for() {
    case $1 in
    conf) pkg-config --cflags --libs yaml-0.1 openssl 2>/dev/null ;;
    *) ;;
    esac
}

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in "$here"/fuzz_*.c; do
        [ -e "$f" ] || continue
        n=${f##*/fuzz_}
        targets+=("${n%.c}")
    done
fi

failed=0
for name in "${targets[@]}"; do
    src="$here/fuzz_$name.c"
    bin="$work/fuzz_$name"
    log="$work/fuzz_$name.log"
    if [ ! -f "$src" ]; then
        echo "fuzz $name: FAILED (no $src)"
        failed=1
        continue
    fi
    srcs=()
    for s in $(sources_for "$name"); do
        srcs+=("$top/$s")
    done
    # shellcheck disable=SC2086,SC2046
    if ! $CC $CFLAGS "$src" "${srcs[@]}" $(libs_for "$name") -o "$bin" \
        >"$log.build" 2>&1; then
        tail -n 20 "$log.build" >&2
        echo "fuzz $name: FAILED (build)"
        failed=1
        continue
    fi

    corpus="$work/corpus-$name"
    mkdir -p "$corpus"
    rm -f "$work/$name-"crash-* "$work/$name-"leak-* "$work/$name-"timeout-* \
        "$work/$name-"oom-* "$work/$name-"slow-unit-*
    seeds=()
    for d in "$here/corpus/fuzz_$name" "$here/corpus/$name"; do
        [ -d "$d" ] && seeds+=("$d")
    done
    dict=()
    for d in "$here/$name.dict" "$here/fuzz_$name.dict"; do
        [ -f "$d" ] && dict+=("-dict=$d") && break
    done

    if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="$work/$name-" \
        "${dict[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        [ -n "$runs" ] && echo "fuzz $name: $runs runs in ${seconds}s" >&2
        echo "fuzz $name: ok"
    else
        tail -n 40 "$log" >&2
        artifact=
        for f in "$work/$name-"*; do
            [ -f "$f" ] && artifact=$f && break
        done
        echo "fuzz $name: FAILED${artifact:+ (crash input: $artifact)}"
        if [ -n "$artifact" ] && [ -z "${FUZZ_WORKDIR:-}" ]; then
            # keep the crashing input past the cleanup of $work
            keep="${TMPDIR:-/tmp}/s3edge-fuzz-crash-$name-$$"
            cp "$artifact" "$keep" && echo "fuzz: crash input kept at $keep" >&2
        fi
        failed=1
    fi
done
exit $failed
