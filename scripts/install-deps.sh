#!/bin/sh
# Install the Debian packages mediaindex needs to build and test, saying
# what it installs and how big that is (nothing at all when everything is
# already there).  Exits non-zero, with the reason, when it cannot.
#   scripts/install-deps.sh            what the build needs (scripts/run.sh)
#   scripts/install-deps.sh --tests    also what the tests need beyond it
#   scripts/install-deps.sh --bench    also the benchmark tools
#   scripts/install-deps.sh --browser  the tests' and what the browser tests need:
#       Debian's chromium, node and npm (Debian's only if no node/npm is on
#       PATH already), and playwright-core and tus-js-client in
#       tests/browser/node_modules (pinned by tests/browser/package-lock.json)
set -eu
cd "$(dirname "$0")/.."

# Why each is here: README.md, "Dependencies".
pkgs="gcc libc6-dev meson ninja-build pkg-config python3
libsqlite3-dev libexif-dev libssl-dev libsodium-dev libcjson-dev libstb-dev
libturbojpeg0-dev libjpeg62-turbo-dev libspng-dev libcivetweb-dev
libheif-dev libwebp-dev libtiff-dev libraw-dev libavformat-dev libavcodec-dev
libavutil-dev libswscale-dev libseccomp-dev libcurl4-openssl-dev libgeonames-dev
zlib1g-dev"
# The unit and man-page tests run systemd-analyze and groff; the formats
# tests make their fixtures with ffmpeg, heif-enc, cwebp and exiftool.
test_pkgs="systemd groff-base ffmpeg libheif-examples webp
libimage-exiftool-perl nginx openssl python3-tuspy"
browser=
case "${1:-}" in
"") ;;
--tests) pkgs="$pkgs $test_pkgs" ;;
--bench) pkgs="$pkgs $test_pkgs hyperfine wrk nginx-light libvips-tools ffmpegthumbnailer libraw-bin time jq openssl curl" ;;
--browser)
    browser=1
    pkgs="$pkgs $test_pkgs chromium"
    command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
    command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
    ;;
*) echo "usage: scripts/install-deps.sh [--tests | --bench | --browser]" >&2; exit 2 ;;
esac

say() { echo "install-deps: $*" >&2; }

# Every package tests/browser/package-lock.json pins (playwright-core,
# tus-js-client and what they need), at its version: `npm ci` when one is
# missing or another version (a stale copy is replaced).
browser_npm() {
    [ -n "$browser" ] || return 0
    stale=$(cd tests/browser && node -e '
        const fs = require("fs");
        const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
        const bad = [];
        for (const [p, v] of Object.entries(lock.packages || {})) {
            if (!p || v.link) continue;
            let have = null;
            try { have = JSON.parse(fs.readFileSync(p + "/package.json", "utf8")).version; } catch {}
            if (have === null && v.optional) continue;
            if (have !== v.version) bad.push(p.replace(/^.*node_modules\//, "") + "@" + v.version);
        }
        console.log(bad.length > 4 ? bad.slice(0, 3).join(" ") + " and " +
                    (bad.length - 3) + " more" : bad.join(" "));' 2>/dev/null) || stale="(cannot read the lock file)"
    [ -z "$stale" ] && return 0
    say "npm ci in tests/browser: $stale (about 11 MB, from the npm registry)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error \
        --fetch-retries=1 --fetch-timeout=60000) >&2 ||
        { say "npm ci failed: is the npm registry reachable?"; return 1; }
}

missing=
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    browser_npm
    exit 0
fi

sudo=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        say "need root (or sudo) to install:$missing"
        exit 1
    }
    sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
say "updating apt's package lists"
$sudo apt-get update -qq >/dev/null || { say "apt-get update failed"; exit 1; }
# What apt would fetch and unpack, from its own dry run ("Need to get ...",
# "After this operation, ..."), so a user knows what is coming.
# shellcheck disable=SC2086
plan=$(LC_ALL=C $sudo apt-get install --no-install-recommends --assume-no $missing 2>/dev/null || true)
count=$(printf '%s\n' "$plan" | sed -n 's/^\([0-9]*\) upgraded, \([0-9]*\) newly installed.*/\2/p')
get=$(printf '%s\n' "$plan" | sed -n 's/^Need to get \([0-9.,]* [kMG]*B\).*/\1/p' | tail -n 1)
disk=$(printf '%s\n' "$plan" | sed -n 's/^After this operation, \([0-9.,]* [kMG]*B\).*/\1/p')
say "installing:$missing"
say "  ${count:-some} packages with what they need: ${get:-?} to download, ${disk:-?} on disk"
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
    { say "apt-get install failed for:$missing"; exit 1; }
say "installed"
browser_npm
