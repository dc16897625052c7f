#!/usr/bin/env bash
# The demo: installs what is missing, builds s3edge, starts a local
# S3-compatible origin (s3rver behind the SigV4-checking gate of the test
# suite) seeded with sample objects, and s3edge in front of it on
# 127.0.0.1:8080 (conf/demo.yaml). It shows a Miss, then a Hit while the
# origin counts one GET, prints curl lines to try, and runs until Ctrl-C.
#
# Usage: packaging/demo.sh [--once]   (--once: show the Miss/Hit and stop)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
once=0
[ "${1:-}" = "--once" ] && once=1

EDGE_PORT=8080 GATE_PORT=9000 S3RVER_PORT=9001
AKID=S3EDGEDEMOKEY
SECRET=s3edge-demo-secret-key-not-for-production
BUCKET=demo

packaging/install-deps.sh
echo "demo: building"
packaging/build.sh "$top/build" >/dev/null
tests/e2e/setup.sh

for p in $EDGE_PORT $GATE_PORT $S3RVER_PORT; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        echo "demo: port $p on 127.0.0.1 is busy; stop what uses it and retry" >&2
        exit 1
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/s3edge-demo.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

wait_port() { # wait_port PORT NAME
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo: $2 did not start on port $1" >&2
    exit 1
}

mkdir -p "$work/s3rver"
tests/e2e/origin/node_modules/.bin/s3rver --directory "$work/s3rver" --address 127.0.0.1 \
    --port $S3RVER_PORT --silent >"$work/s3rver.log" 2>&1 &
pids+=($!)
wait_port $S3RVER_PORT s3rver
(cd tests/e2e && exec /usr/bin/python3 s3gate.py --port $GATE_PORT \
    --upstream 127.0.0.1:$S3RVER_PORT --key "$AKID:$SECRET") >"$work/gate.log" 2>&1 &
pids+=($!)
wait_port $GATE_PORT "the signature gate"

s3() {
    AWS_ACCESS_KEY_ID=$AKID AWS_SECRET_ACCESS_KEY=$SECRET AWS_DEFAULT_REGION=us-east-1 \
        AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER= \
        AWS_EC2_METADATA_DISABLED=true \
        aws --endpoint-url "http://127.0.0.1:$GATE_PORT" s3api "$@" >/dev/null
}
echo "demo: seeding bucket '$BUCKET'"
s3 create-bucket --bucket $BUCKET
echo "Hello from s3edge: this object came from S3 once." >"$work/hello.txt"
head -c $((20 * 1024 * 1024)) /dev/urandom >"$work/installer.bin"
printf 'release notes, key with spaces\n' >"$work/notes.txt"
s3 put-object --bucket $BUCKET --key hello.txt --body "$work/hello.txt" --content-type text/plain
s3 put-object --bucket $BUCKET --key releases/1.0/installer.bin --body "$work/installer.bin" \
    --content-type application/octet-stream --metadata release=1.0
s3 put-object --bucket $BUCKET --key "docs/release notes.txt" --body "$work/notes.txt" \
    --content-type text/plain
curl -s -X POST "http://127.0.0.1:$GATE_PORT/__gate/reset" >/dev/null

build/edge/s3edge -c conf/demo.yaml --access-log "$work/access.log" &
pids+=($!)
wait_port $EDGE_PORT s3edge

origin_gets() {
    curl -s "http://127.0.0.1:$GATE_PORT/__gate/stats" |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"].get(sys.argv[1], 0))' "$1"
}

url="http://127.0.0.1:$EDGE_PORT/hello.txt"
echo
for i in 1 2; do
    echo "\$ curl -si $url"
    curl -si "$url" | grep -iE '^(HTTP|X-Cache|Age|ETag|Content-Length)|^Hello' | tr -d '\r'
    echo
done
echo "origin GETs for /$BUCKET/hello.txt: $(origin_gets "GET /$BUCKET/hello.txt") (the second request was a Hit)"
echo
sha=$(sha256sum <"$work/installer.bin" | cut -d' ' -f1)
got=$(curl -s "http://127.0.0.1:$EDGE_PORT/releases/1.0/installer.bin" | sha256sum | cut -d' ' -f1)
[ "$sha" = "$got" ] && echo "20 MiB installer: byte-identical through the edge (sha256 $sha)"

if [ $once = 1 ]; then
    exit 0
fi
cat <<MSG

s3edge is serving bucket '$BUCKET' on http://127.0.0.1:$EDGE_PORT (config: conf/demo.yaml).
Try:
  curl -i http://127.0.0.1:$EDGE_PORT/hello.txt
  curl -i --http2-prior-knowledge http://127.0.0.1:$EDGE_PORT/hello.txt   # HTTP/2 (h2c)
  curl -I http://127.0.0.1:$EDGE_PORT/releases/1.0/installer.bin
  curl -o /dev/null -w '%{speed_download} bytes/s\\n' http://127.0.0.1:$EDGE_PORT/releases/1.0/installer.bin
  curl -i 'http://127.0.0.1:$EDGE_PORT/docs/release%20notes.txt'
  curl -i -r 0-99 http://127.0.0.1:$EDGE_PORT/releases/1.0/installer.bin
  curl -i http://127.0.0.1:$EDGE_PORT/missing.txt
  curl -s http://127.0.0.1:$GATE_PORT/__gate/stats     # what the origin saw
Access log: $work/access.log
Press Ctrl-C to stop.
MSG
wait
