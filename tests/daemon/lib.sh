#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Helpers for wirepathd's tests (tests/daemon/*.sh): start `wirepath serve`
# as a native backend and wirepathd in front of it, on loopback and on
# abstract unix sockets named after this test's PID, and stop exactly the
# processes started here (by PID) when the test exits.
#
#   . tests/daemon/lib.sh BUILD
#   wpd_serve NAME URI [serve flags...]      -> $SERVE_PID_<NAME>
#   wpd_start CONFIG_TEXT                    -> $WPD_PID, $WPD_URL, $WPD_LOG
#   wpd_fail "what"                          -> exit 1 with the daemon's log tail
set -u
BUILD=${1:?usage: $0 BUILD}
BUILD=$(cd "$BUILD" && pwd)
WP="$BUILD/wirepath"
WPD="$BUILD/wirepathd"
T=$(mktemp -d /tmp/wpd-test.XXXXXX)
PIDS=()
KEY_A="wpk-alpha-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
KEY_B="wpk-beta-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"

wpd_cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap wpd_cleanup EXIT

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$WPD" ] || skip "wirepathd not built"
command -v curl >/dev/null || skip "curl not installed"
command -v python3 >/dev/null || skip "python3 not installed"

wpd_fail() {
	echo "FAIL: $*"
	[ -n "${WPD_LOG:-}" ] && [ -f "$WPD_LOG" ] && { echo "--- wirepathd log (tail)"; tail -n 30 "$WPD_LOG"; }
	exit 1
}

ok() { echo "ok: $*"; }

# The rules file: two tenants with API keys; beta is rate limited to make
# 429s reachable, and may use only wp-stub and echo tools.
wpd_rules() {
	local ha hb
	ha=$(printf %s "$KEY_A" | "$WP" policy hash-key) || wpd_fail "policy hash-key"
	hb=$(printf %s "$KEY_B" | "$WP" policy hash-key) || wpd_fail "policy hash-key"
	cat >"$T/tenants.rules" <<RULES
default drop
tenant alpha id 1 key 00112233445566778899aabbccddeeff
  api_key $ha
tenant beta id 2 key 0f0e0d0c0b0a09080706050403020100
  api_key $hb
  requests ${WPD_BETA_RATE:-1000}/s burst ${WPD_BETA_BURST:-1000}
  concurrency ${WPD_BETA_CONC:-64}
  models wp-stub
  tools ${WPD_BETA_TOOLS:-*echo*}
RULES
	echo "$T/tenants.rules"
}

# wpd_serve NAME URI [flags]: a native service; waits until it listens.
wpd_serve() {
	local name=$1 uri=$2; shift 2
	"$WP" serve --listen "$uri" --port-file "$T/$name.port" "$@" >"$T/$name.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	eval "SERVE_PID_$name=$pid"
	for _ in $(seq 100); do
		[ -s "$T/$name.port" ] && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$T/$name.log"; wpd_fail "serve $name died"; }
		sleep 0.05
	done
	cat "$T/$name.log"
	wpd_fail "serve $name did not start"
}

# wpd_start: write the config from stdin, start wirepathd, wait for ready.
wpd_start() {
	local n=${WPD_N:-0}
	WPD_N=$((n + 1))
	WPD_CONF="$T/wirepathd$n.yaml"
	WPD_LOG="$T/wirepathd$n.log"
	cat >"$WPD_CONF"
	"$WPD" --config "$WPD_CONF" --log-level "${WPD_LEVEL:-info}" >"$WPD_LOG" 2>&1 &
	WPD_PID=$!
	PIDS+=("$WPD_PID")
	for _ in $(seq 200); do
		local ready
		ready=$(sed -n 's/.*ready: \(https*\):\/\/[^ ]* port \([0-9]*\).*/\1:\/\/127.0.0.1:\2/p' "$WPD_LOG" | head -n 1)
		if [ -n "$ready" ]; then
			WPD_URL=$ready
			return 0
		fi
		grep -q "ready: unix:" "$WPD_LOG" && return 0
		kill -0 "$WPD_PID" 2>/dev/null || wpd_fail "wirepathd exited at start"
		sleep 0.05
	done
	wpd_fail "wirepathd not ready"
}

# The daemon's resident memory in KiB.
wpd_rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# A metric's value from /metrics (first match of the given prefix).
wpd_metric() {
	curl -s "$WPD_URL/metrics" | awk -v m="$1" 'index($0, m) == 1 {print $NF; exit}'
}
