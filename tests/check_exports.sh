#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The export list is explicit (src/libwirepath.map names every symbol), so a
# new public function can be forgotten in two ways: declared WP_API but not
# listed (hidden by `local: *`), or listed but not declared. This checks
# that three lists are equal: the WP_API declarations in include/wirepath/,
# the map's names, and what `nm -D --defined-only` finds exported by the
# built libwirepath.so. Exit 0 equal, 1 not (with the differences), 77 when
# there is no shared library or no nm.
set -u
BUILD=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
lib="$BUILD/libwirepath.so"
[ -e "$lib" ] || lib="$top/$BUILD/libwirepath.so"
command -v nm >/dev/null || { echo "nm not installed (binutils)"; exit 77; }
[ -e "$lib" ] || { echo "$BUILD/libwirepath.so not built"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# WP_API declarations: the identifier right before the first '(' (the
# name and WP_API share a line; see the headers).
grep -h '^WP_API' "$top"/include/wirepath/*.h |
	sed -n 's/^WP_API[^(;]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' | sort >"$tmp/headers"
# The map's global names (one "name;" a line; comments and `local: *` skipped).
sed -n 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\);[[:space:]]*$/\1/p' \
	"$top/src/libwirepath.map" | sort >"$tmp/map"
# Exported definitions, without the version node (type A) and @VERSION.
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sed 's/@.*//' | sort >"$tmp/nm"

rc=0
for f in headers map nm; do
	if [ ! -s "$tmp/$f" ]; then
		echo "no symbols found in the $f list: is the parsing above out of date?"
		rc=1
	fi
	if [ -n "$(uniq -d "$tmp/$f")" ]; then
		echo "listed twice in $f: $(uniq -d "$tmp/$f" | tr '\n' ' ')"
		rc=1
	fi
done
show() { # $1 $2: names in list $1 missing from list $2, and what to do
	local d
	d=$(comm -23 "$tmp/$1" "$tmp/$2")
	[ -z "$d" ] && return 0
	echo "in $1 but not in $2 ($3):"
	echo "$d" | sed 's/^/  /'
	rc=1
}
show headers map "add them to src/libwirepath.map"
show map headers "declare them WP_API in include/wirepath/, or drop them from the map"
show map nm "listed but not defined in the library"
show nm map "exported but not listed: is the map's glob back?"
[ $rc -eq 0 ] && echo "exports: $(wc -l <"$tmp/nm") symbols; headers, map and nm -D agree"
exit $rc
