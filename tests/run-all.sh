#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, then runs the unit
# tier, the end-to-end tier (over HTTP/1.1, then again over h2c and over h2
# with TLS), short fuzz runs and (with --asan, the default in CI) the unit
# and end-to-end tiers again under ASan/UBSan.
# Ends with one line: "N passed, N failed".
#
# Usage: tests/run-all.sh [--asan|--no-asan] [--fuzz-seconds N] [--no-fuzz]
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

asan=${CI:+1}
asan=${asan:-0}
fuzz_seconds=${FUZZ_SECONDS:-15}
fuzz=1
while (($#)); do
    case "$1" in
    --asan) asan=1 ;;
    --no-asan) asan=0 ;;
    --fuzz-seconds) fuzz_seconds=$2; shift ;;
    --no-fuzz) fuzz=0 ;;
    *) echo "usage: tests/run-all.sh [--asan|--no-asan] [--fuzz-seconds N] [--no-fuzz]" >&2; exit 2 ;;
    esac
    shift
done

passed=0
failed=0
failures=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/s3edge-tests.XXXXXX")

note() { printf '== %s\n' "$*"; }
count() { # count NAME OK(0|1)
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

note "dependencies"
packaging/install-deps.sh || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }

note "build"
if ! packaging/build.sh "$top/build" >"$logdir/build.log" 2>&1; then
    cat "$logdir/build.log"
    echo "0 passed, 1 failed"
    exit 1
fi

# unit tier: each Check binary prints "NN%: Checks: C, Failures: F, Errors: E"
run_unit() { # run_unit BUILDDIR LABEL
    local b=$1 label=$2 t out c f e
    for t in "$b"/tests/unit/test_*; do
        [ -x "$t" ] && [ -f "$t" ] || continue
        case "$t" in *.log | *.trs | *.o) continue ;; esac
        out=$(cd "$b" && CK_FORK=yes "$t" 2>&1)
        local rc=$?
        echo "$out" | sed "s/^/  [$label $(basename "$t")] /" | grep -v '^\s*$' | tail -n 20
        read -r c f e < <(echo "$out" | sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' | tail -n1)
        if [ -z "${c:-}" ]; then
            count "$label $(basename "$t") (no summary)" 1
            continue
        fi
        passed=$((passed + c - f - e))
        failed=$((failed + f + e))
        if [ $((f + e)) -gt 0 ] || [ $rc -ne 0 ]; then
            failures+=("$label $(basename "$t")")
            [ $((f + e)) -eq 0 ] && failed=$((failed + 1))
        fi
        c=
    done
}

# e2e tier: pytest's last line "N passed, M failed, K skipped in Xs"
run_e2e() { # run_e2e BIN LABEL
    local bin=$1 label=$2 out
    out=$(cd "$top/tests/e2e" && S3EDGE_BIN="$bin" timeout 1200 /usr/bin/python3 -m pytest -q -rfE \
        -p no:cacheprovider 2>&1)
    echo "$out" | tail -n 60 | sed "s/^/  [$label] /"
    local line p f e
    line=$(echo "$out" | grep -E '^(=+ )?[0-9]+ (passed|failed|error)' | tail -n1)
    p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
    f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || true)
    e=$(echo "$line" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+' || true)
    if [ -z "$line" ]; then
        count "$label (pytest did not report)" 1
        return
    fi
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${e:-0}))
    [ $((${f:-0} + ${e:-0})) -gt 0 ] && failures+=("$label")
}

note "unit"
run_unit "$top/build" unit

note "install"
dest="$logdir/destdir"
if make -s -C "$top/build" install DESTDIR="$dest" >"$logdir/install.log" 2>&1 &&
    [ -x "$dest/usr/local/bin/s3edge" ] && [ -f "$dest/usr/local/etc/s3edge/s3edge.yaml" ] &&
    [ -f "$dest/usr/local/share/man/man8/s3edge.8" ] &&
    "$dest/usr/local/bin/s3edge" -t -c "$dest/usr/local/etc/s3edge/s3edge.yaml" >/dev/null 2>&1; then
    echo "  make install: binary, example config (valid) and man page in place"
    count install 0
else
    cat "$logdir/install.log"
    count install 1
fi

note "e2e setup"
if tests/e2e/setup.sh >"$logdir/e2e-setup.log" 2>&1; then
    note "e2e"
    run_e2e "$top/build/edge/s3edge" e2e
    # every curl-driven test again over HTTP/2 with prior knowledge (h2c):
    # the behaviour must be the same on both protocols
    note "e2e over h2c"
    E2E_PROTO=h2c run_e2e "$top/build/edge/s3edge" e2e-h2c
    note "e2e over h2 (TLS, ALPN)"
    E2E_PROTO=h2 run_e2e "$top/build/edge/s3edge" e2e-h2
else
    cat "$logdir/e2e-setup.log"
    count "e2e setup" 1
fi

if [ "$fuzz" = 1 ] && [ -x tests/fuzz/run.sh ]; then
    note "fuzz (${fuzz_seconds}s per target)"
    while read -r line; do
        echo "  $line"
        case "$line" in
        fuzz\ *:\ ok) count "$line" 0 ;;
        fuzz\ *:\ FAILED*) count "$line" 1 ;;
        esac
    done < <(tests/fuzz/run.sh "$fuzz_seconds" 2>&1)
fi

if [ "$asan" = 1 ]; then
    note "build (ASan/UBSan)"
    if packaging/build.sh "$top/build-asan" --enable-asan >"$logdir/build-asan.log" 2>&1; then
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        note "unit (ASan/UBSan)"
        run_unit "$top/build-asan" unit-asan
        note "e2e (ASan/UBSan)"
        E2E_ASAN=1 run_e2e "$top/build-asan/edge/s3edge" e2e-asan
    else
        tail -n 30 "$logdir/build-asan.log"
        count "build with ASan" 1
    fi
fi

rm -rf "$logdir"
echo "elapsed: $((SECONDS / 60)) min $((SECONDS % 60)) s"
if ((${#failures[@]} > 0)); then
    echo "failing: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
