#!/bin/sh
# Install the build into a temporary DESTDIR and build examples/mi-scan.c
# with nothing but the flags pkg-config gives, then run it on a folder.
set -eu
build=${MI_TEST_BUILD_DIR:?}
src=${MI_TEST_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

meson install -C "$build" --destdir "$tmp/dest" --no-rebuild --quiet >/dev/null
pcdir=$(dirname "$(find "$tmp/dest" -name mediaindex.pc | head -n 1)")
[ -f "$pcdir/mediaindex.pc" ] || { echo "not ok 1 - no mediaindex.pc installed"; echo 1..1; exit 1; }
echo "ok 1 - installed, mediaindex.pc in ${pcdir#$tmp/dest}"

# PKG_CONFIG_SYSROOT_DIR maps the .pc's prefix into the DESTDIR.
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/dest"
static=
[ "${MI_TEST_STATIC:-}" = "static" ] && static=--static
flags=$(pkg-config --cflags --libs $static mediaindex libcjson)
libdir=$(pkg-config --libs-only-L mediaindex | sed 's/^ *-L//; s/ .*//')
# shellcheck disable=SC2086
if ${CC:-cc} -std=c11 -Wall -Wextra -Werror ${MI_TEST_CFLAGS:-} \
        "$src/examples/mi-scan.c" -o "$tmp/mi-scan" $flags \
        -Wl,-rpath,"$libdir" 2>"$tmp/cc.log"; then
    echo "ok 2 - mi-scan built with: $flags"
else
    echo "not ok 2 - mi-scan does not build through pkg-config"; sed 's/^/# /' "$tmp/cc.log"
    echo 1..3; exit 1
fi

mkdir -p "$tmp/photos/sub"
printf 'not really a jpeg, but media by name' > "$tmp/photos/sub/a.jpg"
want=$(sha256sum "$tmp/photos/sub/a.jpg" | cut -d' ' -f1)
if "$tmp/mi-scan" "$tmp/photos" >"$tmp/out.json" 2>"$tmp/err.log" &&
   grep -q "\"sha256\":\"$want\"" "$tmp/out.json" &&
   grep -q '"file_path":"sub/a.jpg"' "$tmp/out.json"; then
    echo "ok 3 - the installed mi-scan indexes a folder"
else
    echo "not ok 3 - mi-scan output is wrong"; sed 's/^/# /' "$tmp/out.json" "$tmp/err.log"
    echo 1..3; exit 1
fi
echo 1..3
