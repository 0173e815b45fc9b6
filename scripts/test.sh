#!/bin/sh
# Install what is missing, build warning-free, and run every test suite:
# once in a normal build (with the gallery's browser tests in Chromium), once under AddressSanitizer + UndefinedBehavior-
# Sanitizer, the hashing tests once more with the libsodium engine, and the
# API and pkg-config tests against a static library.
# Ends with "N passed, M failed" and exits non-zero on any failure.
#
# MI_TEST_CORPUS=DIR runs the corpus tier too (real photos; .ci/run sets it).
set -u
cd "$(dirname "$0")/.."

# The tests run from their build folders: a relative corpus path given here
# (".ci/run" passes one) would point nowhere from there and its tier would be
# skipped without a word.  Resolve it now, and say so when it is not there.
if [ -n "${MI_TEST_CORPUS:-}" ]; then
    if [ -d "$MI_TEST_CORPUS" ]; then
        MI_TEST_CORPUS=$(cd "$MI_TEST_CORPUS" && pwd)
        export MI_TEST_CORPUS
    else
        echo "test.sh: MI_TEST_CORPUS=$MI_TEST_CORPUS is not a folder: the corpus tier is skipped" >&2
        unset MI_TEST_CORPUS
    fi
fi

# What could not be installed is counted as failed, and the closing line is
# printed all the same: without the build's packages nothing runs; without
# the browser's (chromium, Node.js, playwright-core from npm) every other
# suite still does.
failed_setup=0
if ! scripts/install-deps.sh --tests; then
    echo "test.sh: the build's dependencies could not be installed (above): nothing was built" >&2
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
if ! scripts/install-deps.sh --browser; then
    echo "test.sh: the browser tests' dependencies could not be installed (above): that suite counts as failed" >&2
    failed_setup=1
    browser_skip="--no-suite browser"
else
    browser_skip=
fi

# UndefinedBehaviorSanitizer only prints by default: make every report a
# failure (and LeakSanitizer's too, which is on with ASan).
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

status=0
logs=
run() {  # run NAME SETUP-ARGS... -- TEST-ARGS...
    name=$1; shift
    setup=; while [ "$1" != "--" ]; do setup="$setup $1"; shift; done; shift
    dir=build-test-$name
    echo "== $name: meson setup$setup" >&2
    # shellcheck disable=SC2086
    if [ ! -d "$dir" ]; then
        meson setup "$dir" --werror $setup >"$dir.setup.log" 2>&1 ||
            { cat "$dir.setup.log" >&2; status=1; failed_setup=$((failed_setup + 1)); return; }
    else
        meson configure "$dir" $setup >/dev/null 2>&1
    fi
    # A build that fails counts as one failed test, not as none.
    ninja -C "$dir" >"$dir.build.log" 2>&1 ||
        { cat "$dir.build.log" >&2; status=1; failed_setup=$((failed_setup + 1)); return; }
    meson test -C "$dir" --print-errorlogs "$@" >&2 || status=1
    logs="$logs $dir/meson-logs/testlog.json"
}

# shellcheck disable=SC2086
run plain --buildtype=debugoptimized -- $browser_skip
run sanitize --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -- --no-suite browser --no-suite stress
run sodium --buildtype=debugoptimized -Dopenssl=disabled -Dserver=false -- hash api
run static --buildtype=debugoptimized -Ddefault_library=static -Dserver=false -- api pkgconfig

# One line per test program in meson's JSON log.
python3 - "$failed_setup" $logs <<'PY'
import json, sys
passed = skipped = 0
failed = int(sys.argv[1])
for path in sys.argv[2:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            # meson prints a failed test's stderr; its TAP diagnostics are
            # on stdout: show the failed subtests with their "#" lines.
            out = (t.get("stdout") or "").splitlines()
            shown = []
            for i, l in enumerate(out):
                if l.startswith("not ok") or l.startswith("Bail out!"):
                    shown.append(l)
                    for d in out[i + 1:i + 41]:
                        if not d.startswith("#"):
                            break
                        shown.append(d)
            if shown:
                print(f"--- {path.split('/')[0]}: {t.get('name')}", file=sys.stderr)
                print("\n".join(shown[:200]), file=sys.stderr)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
[ $? -eq 0 ] || status=1
exit $status
