# server-common.sh - shared by bench/server-*.sh (sourced, not run).
# start_server DIR [FLAGS...]: starts media-server on 127.0.0.1, an
# ephemeral port; sets SERVER_PID, PORT, SERVER_LOG.  wait_idle waits for
# the first scan.  stop_server sends SIGTERM.

: "${BUILD:=build-release}"
SERVER_BIN=${SERVER_BIN:-$BUILD/server/media-server}

ensure_build() {
    if [ ! -x "$SERVER_BIN" ]; then
        [ -d "$BUILD" ] || meson setup "$BUILD" --buildtype=release >/dev/null
        ninja -C "$BUILD" -j2 >/dev/null
    fi
}

start_server() {
    local dir=$1; shift
    SERVER_LOG=$(mktemp /tmp/media-server-bench.XXXXXX.log)
    "$SERVER_BIN" --storage_dir "$dir" --listen 127.0.0.1 --port 0 "$@" \
        2>"$SERVER_LOG" &
    SERVER_PID=$!
    PORT=
    for _ in $(seq 1 200); do
        PORT=$(sed -n 's|.*on http://[^ ]*:\([0-9]*\)/.*|\1|p' "$SERVER_LOG" | head -1)
        [ -n "$PORT" ] && break
        sleep 0.05
    done
    [ -n "$PORT" ] || { cat "$SERVER_LOG" >&2; exit 1; }
}

wait_idle() {
    local t0=$SECONDS
    until curl -s "http://127.0.0.1:$PORT/status" | python3 -c '
import json, sys
j = json.load(sys.stdin)
sys.exit(0 if j["state"] == "idle" and j["last_scan_finished"] else 1)'; do
        sleep 0.5
    done
    echo "first scan: $((SECONDS - t0)) s" >&2
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
