#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Ready the Node.js client tests: node >= 18 and npm (from Debian when
# missing), then the packages pinned by package-lock.json in node_modules/.
#   tests/daemon/node/setup.sh        prints where it stands; 0 ready
# Exit 77 (skip) only when setup lacks a tool: node/npm cannot be installed,
# or the npm registry cannot be reached. Any other failure is 1.
# Safe to run from parallel tests: one runs npm at a time (flock on this
# directory), the others wait and then find the stamp.
set -euo pipefail

dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stamp="$dir/node_modules/.wirepath-stamp"
skip() { echo "setup: SKIP: $*" >&2; exit 77; }
die() { echo "setup: $*" >&2; exit 1; }

# node and npm: install what is missing, as root (or with sudo), from Debian.
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
			skip "${missing[*]} missing, and not root (no passwordless sudo) to apt-get install them"
		fi
		sudo="sudo -n"
	fi
	echo "setup: installing ${missing[*]} from Debian"
	export DEBIAN_FRONTEND=noninteractive
	aptlog=$(mktemp)
	$sudo apt-get update -qq >"$aptlog" 2>&1 || echo "setup: apt-get update failed; trying the cached lists" >&2
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$aptlog" 2>&1 ||
		skip "apt-get install ${missing[*]} failed: $(grep -m1 -E '^E:' "$aptlog" || tail -n1 "$aptlog")"
	rm -f "$aptlog"
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		skip "node or npm still missing after apt-get install"
	fi
fi
nodev=$(node --version)
major=${nodev#v}
major=${major%%.*}
if ! [[ $major =~ ^[0-9]+$ ]] || [ "$major" -lt 18 ]; then
	skip "node $nodev is too old: the clients need >= 18 (Debian 12 has 18)"
fi

exec 9<"$dir"
flock 9

# The stamp: what node_modules was installed from. npm ci rewrites all of
# node_modules, so a match means nothing to do.
want=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$have" = "$want" ] && [ -f "$dir/node_modules/openai/package.json" ] &&
	[ -f "$dir/node_modules/@modelcontextprotocol/sdk/package.json" ] &&
	[ -f "$dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js" ]; then
	echo "setup: node $nodev, node_modules up to date (lock ${want:0:12})"
	exit 0
fi

registry=$(cd "$dir" && npm config get registry 2>/dev/null || echo "the npm registry")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "setup: npm ci in $dir (node $nodev, npm $(npm --version), $registry)"
# --prefer-offline: what npm's cache holds is not fetched again.
if ! (cd "$dir" && npm ci --no-audit --no-fund --prefer-offline --fetch-retries=1 \
	--fetch-timeout=60000 >"$log" 2>&1); then
	if grep -qE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network request|socket hang up|request to .* failed' "$log"; then
		reason=$(grep -m1 -E 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|socket hang up|request to' "$log")
		skip "npm registry $registry unreachable: $reason"
	fi
	tail -n 20 "$log" >&2
	die "npm ci failed (not a network error: see above)"
fi
echo "$want" >"$stamp"
echo "setup: node $nodev, node_modules installed (lock ${want:0:12})"
