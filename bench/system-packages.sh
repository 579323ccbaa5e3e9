#!/usr/bin/env bash
# Debian packages `make bench` needs, installed only if missing (as root):
# wrk (the load generator) and postgresql (the bench's throwaway cluster).
# Kept apart from scripts/system-packages.sh so `make test` never installs
# the load generator.
set -euo pipefail

PACKAGES="wrk postgresql"

missing=()
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ "$status" == ii* ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/system-packages.sh: not root, cannot install: ${missing[*]}" >&2
    exit 1
fi
echo "bench/system-packages.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
