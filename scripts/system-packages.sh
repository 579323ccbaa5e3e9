#!/usr/bin/env bash
# Install the Debian packages the test suite needs, but only those missing.
# A warm machine costs ~0 s: dpkg is queried first, apt is touched only when
# something is missing, and `apt-get update` runs at most once.
set -euo pipefail

# Extend here. postgresql: throwaway test clusters (server 15 on Debian 12).
# libegl1 libegl-mesa0 libgl1-mesa-dri libmtdev1: Kivy headless (SDL offscreen).
# chromium: browser tests via Playwright (never `playwright install`).
# curl jq: the README walk-through, which the suite runs as written.
# fonts-noto-cjk: the kiosk's Chinese, Japanese and Korean glyphs (Arabic,
# Cyrillic and Latin come with the DejaVu Sans that Kivy ships).
# prometheus: for promtool, which checks and tests docs/alerts.yml (Debian
# ships it in this package only; where systemd runs, installing it also
# starts a Prometheus server on port 9090).
# tesseract-ocr: the training tools scripts/train-mrz-ocr.sh makes the
# passport zone model with (the app reads with tesserocr's own library);
# fonts-ocr-b: the zone typeface of the model and of the test passports.
PACKAGES="curl jq postgresql libegl1 libegl-mesa0 libgl1-mesa-dri libmtdev1 chromium fonts-noto-cjk prometheus tesseract-ocr fonts-ocr-b"

missing=()
for pkg in $PACKAGES; do
    # `dpkg -s` also succeeds for removed-but-not-purged packages, so check
    # the status abbreviation: "ii" means installed and configured.
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ "$status" == ii* ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "system-packages: not root, cannot install missing packages: ${missing[*]}" >&2
    echo "system-packages: continuing; tests needing them may fail or skip" >&2
    exit 0
fi

echo "system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-packages: done" >&2
