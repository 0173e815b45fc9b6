#!/bin/sh
# Every symbol the shared library exports starts with mi_.
set -eu
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//')
[ -n "$syms" ] || { echo "not ok 1 - no exported symbols in $lib"; echo "1..1"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^mi_' | grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' || true)
if [ -n "$bad" ]; then
    echo "not ok 1 - symbols without the mi_ prefix:"; printf '# %s\n' $bad
    echo "1..1"; exit 1
fi
echo "ok 1 - $(printf '%s\n' "$syms" | wc -l) exported symbols, all mi_"
echo "1..1"
