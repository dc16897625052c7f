#!/bin/sh
# Install what the e2e tier needs beyond Debian packages: s3rver, pinned in
# origin/package-lock.json, into origin/node_modules. Idempotent: a stamp
# holding the lock file's checksum makes a second run return at once.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
origin="$here/origin"
stamp="$origin/node_modules/.s3edge-e2e-stamp"
want=$(sha256sum "$origin/package-lock.json" | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
   [ -x "$origin/node_modules/.bin/s3rver" ]; then
    exit 0
fi
for tool in node npm curl; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "setup.sh: $tool is missing (Debian: apt-get install nodejs npm curl)" >&2
        exit 1
    }
done
[ -x /usr/bin/aws ] || command -v aws >/dev/null 2>&1 || {
    echo "setup.sh: awscli is missing (Debian: apt-get install awscli)" >&2
    exit 1
}
/usr/bin/python3 -c 'import botocore, pytest' 2>/dev/null || {
    echo "setup.sh: Debian python3-botocore and python3-pytest are needed" >&2
    exit 1
}
npm ci --prefix "$origin" --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
