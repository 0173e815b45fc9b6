#!/bin/sh
# Check the systemd unit the build generates (TAP).
#   check-unit.sh UNIT MANPAGE SYSUSERS
# UNIT is media-server@.service generated with ExecStart= pointing at the
# built media-server (the installed one points at bindir); MANPAGE is
# doc/media-server.1, so that Documentation=man:media-server(1) resolves.
#  1  systemd-analyze verify of the instance media-server@srv-photos.service
#     (/srv/photos) prints nothing: any warning (an unknown or misspelt
#     directive, a bad value, a missing binary or man page) fails.
#  2  systemd-analyze security --offline: every sandboxing setting it rates
#     is at its safest, except the few this server needs open (listed below).
#  3  systemd-sysusers --dry-run of SYSUSERS (the installed sysusers.d file)
#     creates the User= the unit runs as.
set -u
usage="usage: check-unit.sh UNIT MANPAGE SYSUSERS"
unit=${1:?$usage}
manpage=${2:?$usage}
sysusers=${3:?$usage}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo 1..3
fail=0

cp "$unit" "$tmp/media-server@.service"
instance="$tmp/media-server@srv-photos.service"

# Documentation=man:... is looked up with man(1): offer it our page alone.
man=--man=no
if command -v man >/dev/null 2>&1; then
    mkdir -p "$tmp/man/man1"
    cp "$manpage" "$tmp/man/man1/"
    man=--man=yes
fi
MANPATH="$tmp/man" systemd-analyze verify "$man" "$instance" >"$tmp/verify.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/verify.log" ]; then
    echo "ok 1 - systemd-analyze verify $man: no warnings"
else
    echo "not ok 1 - systemd-analyze verify $man (exit $rc):"
    fail=1
    sed "s|$tmp/||g; s/^/# /" "$tmp/verify.log"
fi

# Settings left open on purpose: it serves the network (AF_INET, no
# PrivateNetwork/IPAddressDeny), sees the host's file system (no RootImage,
# ProcSubset), shares files with the media-server group (UMask 0007), keeps
# the real user ids of the photos (no PrivateUsers), and @system-service
# includes @resources and @privileged (SQLite fchown()s its journal as root).
open_ok="SystemCallFilter_resources SystemCallFilter_privileged
RootDirectoryOrRootImage RestrictAddressFamilies_AF_UNIX
RestrictAddressFamilies_AF_INET_INET6 ProcSubset PrivateNetwork PrivateUsers
DeviceAllow IPAddressDeny UMask"
if systemd-analyze security --offline=yes --json=short "$instance" >"$tmp/sec.json" 2>"$tmp/sec.log"; then
    if python3 - "$tmp/sec.json" $open_ok >"$tmp/sec.out" 2>&1 <<'PY'
import json, sys
allowed = set(sys.argv[2:])
bad = [s for s in json.load(open(sys.argv[1]))
       if s.get("exposure") and s["json_field"] not in allowed]
for s in bad:
    print("%s: %s (exposure %s)" % (s["name"], s["description"], s["exposure"]))
sys.exit(1 if bad else 0)
PY
    then
        echo "ok 2 - systemd-analyze security: every other setting at its safest"
    else
        echo "not ok 2 - systemd-analyze security: settings weaker than they should be:"
        fail=1
        sed 's/^/# /' "$tmp/sec.out"
    fi
else
    echo "not ok 2 - systemd-analyze security --offline failed:"
    fail=1
    sed 's/^/# /' "$tmp/sec.log"
fi

# The user: sysusers on an empty root must say it creates exactly User=.
user=$(sed -n 's/^User=//p' "$unit")
mkdir -p "$tmp/root/etc"
: >"$tmp/root/etc/passwd"
: >"$tmp/root/etc/group"
if ! command -v systemd-sysusers >/dev/null 2>&1; then
    echo "ok 3 # SKIP no systemd-sysusers"
elif systemd-sysusers --dry-run --root="$tmp/root" "$sysusers" >"$tmp/sysusers.log" 2>&1 &&
     grep -q "^Creating user '$user' " "$tmp/sysusers.log" &&
     ! grep -qiE 'warn|fail|ignor|invalid' "$tmp/sysusers.log"; then
    echo "ok 3 - the sysusers.d file creates the unit's User=$user"
else
    echo "not ok 3 - the sysusers.d file does not cleanly create User=$user:"
    fail=1
    sed "s|$tmp/||g; s/^/# /" "$tmp/sysusers.log"
fi
exit "$fail"
