# SPDX-License-Identifier: MIT
# Runs inside the VM (tests/vm/rdma.sh boots it with tests/vm/run.sh --nic):
# soft-RoCE (rdma_rxe) on the guest's NIC, then wirepath's rdma path: the
# probe, the RPC integration suite and the rdma test (bulk transfers with
# checksums, the peer killed mid-transfer), client and server in this guest
# over rxe0 on eth0's address. busy-box sh.
#   rdma_guest.sh BUDGET [full|bench]   BUDGET: seconds the tests may take in
#                                all (tests/vm/rdma.sh: inside qemu's timeout);
#                                full: also test_stream; bench: perftest and
#                                wirepath's figures (docs/performance.md)
fail() { echo "FAIL: $*"; dmesg | tail -n 30; exit 1; }
step() { echo "== $*"; }
budget=${1:?budget in seconds}
shift
start=$(date +%s)
export WP_TEST_HOST=$WPVM_IP
# A sanitized build (make test-asan) fails on any report, as on the host.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# test_rpc moves about 500 MB through rxe (about 30 s under TCG, twice that
# sanitized): its 60 s watchdog is made 3x here.
export WP_TEST_WATCHDOG_SCALE=3

step "soft-RoCE on eth0 ($WPVM_IP)"
if command -v rdma >/dev/null; then
	rdma link add rxe0 type rxe netdev eth0 || fail "rdma link add rxe0 type rxe netdev eth0"
else
	# Linux 6.1 still takes the older interface; the rdma tool is iproute2's.
	echo eth0 >/sys/module/rdma_rxe/parameters/add || fail "rdma_rxe add eth0"
fi
i=0
while [ ! -e /sys/class/infiniband/rxe0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -e /sys/class/infiniband/rxe0 ] || fail "no rxe0 in /sys/class/infiniband"
[ -c /dev/infiniband/uverbs0 ] && [ -c /dev/infiniband/rdma_cm ] || fail "no /dev/infiniband/uverbs0 or rdma_cm"
echo "rxe0: $(cat /sys/class/infiniband/rxe0/ports/1/state), gid 1 $(cat /sys/class/infiniband/rxe0/ports/1/gids/1)"

step "wirepath probe"
wirepath probe | grep 'path.rdma' || fail "no path.rdma line"
wirepath probe | grep -q 'path.rdma  *yes.*rxe0 port 1 ACTIVE' || fail "the probe does not report rxe0 ACTIVE"

rc=0
# Authentication v2 over rdma: the handshake and records (test_policy_auth),
# bulk transfers under a policy by sealed frames (test_xfer_auth).
tests="test_rdma test_rpc test_xfer test_ownership test_policy_auth test_xfer_auth"
# test_stream's 100000 messages cost about 70 s under TCG, test_embed 10-30 s
# (its 10000 ping-pongs): only in full and bench.
[ -n "${1:-}" ] && tests="$tests test_embed"
[ "${1:-}" = full ] && tests="$tests test_stream"
for t in $tests; do
	[ -x /opt/$t ] || continue
	step "$t --path rdma"
	t0=$(date +%s)
	left=$((budget - (t0 - start)))
	[ $left -gt 5 ] || { echo "FAIL: no time left for $t (budget ${budget} s)"; rc=1; break; }
	# Killed at the budget: its own watchdog (60-150 s, scaled) may be later.
	timeout -s TERM $left /opt/$t --path rdma >/tmp/$t.log 2>&1
	r=$?
	tail -n 12 /tmp/$t.log
	if [ $r -eq 143 ] || [ $r -eq 137 ]; then
		echo "FAIL: $t timed out: killed after $(($(date +%s) - t0)) s (the guest's budget, ${budget} s in all)"
	fi
	echo "$t: exit $r after $(($(date +%s) - t0)) s"
	[ $r -eq 0 ] || rc=1
done
# Pinned memory: 24 connections under the default RLIMIT_MEMLOCK (8 MiB,
# CAP_IPC_LOCK dropped), then the clear error past it.
if [ -x /opt/test_rdma ] && [ "${1:-}" != bench ]; then
	step "test_rdma --path rdma --many"
	left=$((budget - ($(date +%s) - start)))
	timeout -s TERM $left /opt/test_rdma --path rdma --many >/tmp/many.log 2>&1
	r=$?
	tail -n 6 /tmp/many.log
	echo "test_rdma --many: exit $r"
	[ $r -eq 0 ] || rc=1
fi
# Last: it takes eth0 down (rxe's port with it) under a live connection.
if [ -x /opt/test_rdma ] && [ "${1:-}" != bench ]; then
	step "test_rdma --path rdma --port-down"
	left=$((budget - ($(date +%s) - start)))
	timeout -s TERM $left /opt/test_rdma --path rdma --port-down >/tmp/pd.log 2>&1
	r=$?
	tail -n 6 /tmp/pd.log
	echo "test_rdma --port-down: exit $r"
	[ $r -eq 0 ] || rc=1
fi
dmesg | grep -E 'WARNING:|BUG[: ]|Oops|Call Trace' && { echo "FAIL: kernel log"; rc=1; }

if [ "${1:-}" = bench ]; then
	step "bench: perftest next to wirepath (same guest, rxe0)"
	# perftest polls its CQ (busy); -e sleeps on the completion channel.
	for ev in "" -e; do
		echo "ib_send_lat -d rxe0 -n 1000 $ev (one-way: half the round trip)"
		ib_send_lat -d rxe0 -n 1000 $ev >/tmp/sl.log 2>&1 &
		sleep 1
		ib_send_lat -d rxe0 -n 1000 $ev $WPVM_IP | grep -A1 '#bytes'
		wait
	done
	test_rdma --path rdma --rtt 1000 | tail -n 1
	WP_RDMA_BUSY=1 test_rdma --path rdma --rtt 1000 | tail -n 1
	echo "ib_write_bw -d rxe0 -s 1048576 -n 200"
	ib_write_bw -d rxe0 -s 1048576 -n 200 >/tmp/wb.log 2>&1 &
	sleep 1
	ib_write_bw -d rxe0 -s 1048576 -n 200 $WPVM_IP | grep -A1 '#bytes'
	wait
	# wirepath: the kv sweep (RDMA WRITE per size) against the serve it
	# spawns in this guest, on eth0's address.
	WP_BENCH_HOST=$WPVM_IP wirepath bench --paths rdma --workload kv --duration 1 \
		--warmup 0 --json /tmp/kv.json 2>&1 | tail -n 25
fi
exit $rc
