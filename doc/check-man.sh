#!/bin/sh
# Check the man pages (TAP).
#   check-man.sh [--server MEDIA_SERVER] [--cc CC --include DIR] PAGE...
# For every PAGE: groff -man -ww -z prints no warning, and the page is ASCII.
# With --server: the OPTIONS section of media-server.1 names exactly the
# flags that `media-server --help` prints.
# With --include DIR: mediaindex.3 names every function DIR/mediaindex.h
# declares, and no other mi_ function; with --cc too, its EXAMPLE compiles
# against that header (-std=c11 -Wall -Wextra -pedantic -Werror).
set -u
server= cc= include=
while [ $# -gt 0 ]; do
    case $1 in
    --server) server=$2; shift 2 ;;
    --cc) cc=$2; shift 2 ;;
    --include) include=$2; shift 2 ;;
    *) break ;;
    esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1)); fail=1; echo "not ok $n - $1"
    sed 's/^/# /' "$2"
}

for page in "$@"; do
    name=$(basename "$page")
    groff -man -ww -z "$page" >"$tmp/groff.log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && [ ! -s "$tmp/groff.log" ]; then
        ok "$name: groff -man -ww: no warnings"
    else
        echo "groff exit status $rc" >>"$tmp/groff.log"
        not_ok "$name: groff -man -ww" "$tmp/groff.log"
    fi
    if LC_ALL=C grep -n '[^ -~	]' "$page" >"$tmp/ascii.log"; then
        not_ok "$name: not ASCII (write \\(em, \\(dq ... instead)" "$tmp/ascii.log"
    else
        ok "$name: ASCII"
    fi

    case $name in
    media-server.1)
        [ -n "$server" ] || continue
        "$server" --help 2>&1 | grep -E '^ +--' | grep -oE -- '--[a-z][a-z_-]*' | sort -u >"$tmp/help.flags"
        sed -n '/^\.SH OPTIONS/,/^\.SH [^O]/p' "$page" | sed 's/\\-/-/g' |
            grep -oE -- '--[a-z][a-z_-]*' | sort -u >"$tmp/man.flags"
        if [ -s "$tmp/help.flags" ] && cmp -s "$tmp/help.flags" "$tmp/man.flags"; then
            ok "$name: OPTIONS documents every flag of --help: $(tr '\n' ' ' <"$tmp/help.flags")"
        else
            diff "$tmp/help.flags" "$tmp/man.flags" | grep '^[<>]' |
                sed 's/^</only in --help:/; s/^>/only in the page:/' >"$tmp/flags.log"
            not_ok "$name: OPTIONS and media-server --help differ" "$tmp/flags.log"
        fi
        ;;
    mediaindex.3)
        [ -n "$include" ] || continue
        # Declared: the name before "(" in each MI_EXTERN declaration.
        tr '\n' ' ' <"$include/mediaindex.h" | tr ';' '\n' |
            sed -n 's/.*MI_EXTERN[^(]*[^a-z0-9_]\(mi_[a-z0-9_]*\) *(.*/\1/p' |
            sort -u >"$tmp/header.fns"
        # Named: mi_ words followed by "(" or " ()" in the page.
        grep -oE 'mi_[a-z0-9_]+ ?\(' "$page" | sed 's/ *($//' | sort -u >"$tmp/page.fns"
        if [ -s "$tmp/header.fns" ] && cmp -s "$tmp/header.fns" "$tmp/page.fns"; then
            ok "$name: names the $(wc -l <"$tmp/header.fns") functions of mediaindex.h"
        else
            diff "$tmp/header.fns" "$tmp/page.fns" | grep '^[<>]' |
                sed 's/^</not in the page:/; s/^>/not in the header:/' >"$tmp/fns.log"
            not_ok "$name: the functions it names differ from mediaindex.h's" "$tmp/fns.log"
        fi
        [ -n "$cc" ] || continue
        sed -n '/^\.SH EXAMPLE/,/^\.SH [^E]/p' "$page" | sed -n '/^\.EX/,/^\.EE/p' |
            sed '/^\.E[XE]/d; s/\\e/\\/g; s/\\-/-/g; s/\\(aq/'"'"'/g; s/\\&//g' >"$tmp/example.c"
        if [ -s "$tmp/example.c" ] &&
           $cc -std=c11 -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$include" \
               "$tmp/example.c" >"$tmp/cc.log" 2>&1; then
            ok "$name: the EXAMPLE compiles ($(wc -l <"$tmp/example.c") lines)"
        else
            [ -s "$tmp/example.c" ] || echo "no .EX/.EE block under .SH EXAMPLE" >>"$tmp/cc.log"
            not_ok "$name: the EXAMPLE does not compile" "$tmp/cc.log"
        fi
        ;;
    esac
done
echo "1..$n"
exit "$fail"
