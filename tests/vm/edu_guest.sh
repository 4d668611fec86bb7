# SPDX-License-Identifier: MIT
# Runs inside the VM (tests/vm/edu.sh boots it with tests/vm/run.sh): the edu
# driver's checks, one after another, in one boot. busybox sh.
#   edu_guest.sh PAIRS THREADS PER_THREAD BENCH_N
# Exit 0 only if every step passed and the kernel log has no WARN, BUG,
# DMA-API or Oops line.
PAIRS=${1:-5000} THREADS=${2:-4} PER=${3:-100} BENCH=${4:-200}
DEV=/dev/edu0
fail() { echo "FAIL: $*"; dmesg | tail -n 40; exit 1; }
step() { echo "== $*"; }
# The kernel log since the last check: any WARN, BUG, DMA-API or Oops is a failure.
logcheck() {
	dmesg >/tmp/dmesg.now
	if grep -E 'WARNING:|BUG[: ]|DMA-API|Oops|general protection|Call Trace|refcount_t|list_(add|del) corruption' /tmp/dmesg.now; then
		fail "kernel log after $1"
	fi
}
load() {
	insmod /opt/edu.ko "$@" || fail "insmod edu.ko $*"
	i=0
	while [ ! -c $DEV ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -c $DEV ] || fail "$DEV did not appear (insmod $*)"
}
unload() { rmmod edu || fail "rmmod edu"; }
meminfo() { awk '/^(MemFree|Slab|SUnreclaim):/ {printf "%s %s kB  ", $1, $2} END {print ""}' /proc/meminfo; }

pci=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] && pci=$(basename $d)
done
[ -n "$pci" ] || fail "no edu card (1234:11e8) on the guest's PCI bus"
echo "edu card at $pci; kernel $(uname -r); $(grep -c . /proc/cpuinfo >/dev/null; nproc) vCPU"
grep -q kmemleak /proc/filesystems /sys/kernel/debug 2>/dev/null && echo "kmemleak: present" ||
	echo "kmemleak: not in this kernel (CONFIG_DEBUG_KMEMLEAK is not set); checking /proc/meminfo"
[ -d /sys/kernel/debug/dma-api ] && echo "dma-api debug: present" ||
	echo "dma-api debug: not in this kernel (CONFIG_DMA_API_DEBUG is not set)"
echo "before: $(meminfo)"
SUNREC0=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)

step "probe: MSI (default)"
load
dmesg | grep -q "self-test passed" || fail "no self-test line in the kernel log"
edu_test $DEV info || fail info
edu_test $DEV info | grep -q '"irq":"MSI"' || fail "MSI was not obtained"
if [ -x /opt/wirepath ]; then
	wirepath probe | grep 'dma.edu' || fail "wirepath probe has no dma.edu line"
	wirepath probe | grep -q 'dma.edu *yes.*driver edu: /dev/edu0, MSI' || fail "wirepath probe does not report the card and driver"
fi
step "round trips: $PAIRS pairs, sizes 1 B-4 KiB, unaligned"
edu_test $DEV roundtrip "$PAIRS" || fail roundtrip
step "concurrent: $THREADS submitters x $PER pairs"
edu_test $DEV concurrent "$THREADS" "$PER" || fail concurrent
step "mmap'd coherent area, async submissions"
edu_test $DEV area 512 || fail area
step "read/write"
edu_test $DEV rw || fail rw
step "bad input"
edu_test $DEV bad || fail bad
step "bench (4000 B pinned, 256 B bounced)"
edu_test $DEV bench "$BENCH" 4000 || fail bench
edu_test $DEV bench "$BENCH" 256 || fail bench
edu_test $DEV info
logcheck "the MSI run"

step "unload with transfers queued"
edu_test $DEV queue-exit || fail queue-exit
unload
dmesg | tail -n 3 | grep -q "removed" || fail "no removal line"
logcheck "unload with transfers queued"

step "INTx (use_msi=0)"
load use_msi=0
edu_test $DEV info | grep -q '"irq":"INTx"' || fail "INTx was not used"
[ -x /opt/wirepath ] && { wirepath probe | grep -q 'dma.edu *yes.*INTx' || fail "wirepath probe does not say INTx"; }
edu_test $DEV roundtrip 200 || fail "roundtrip on INTx"
edu_test $DEV concurrent 2 50 || fail "concurrent on INTx"
edu_test $DEV info
unload
logcheck "the INTx run"

step "the DMA mask: dma_bits=24 refuses memory beyond 16 MiB"
load dma_bits=24
edu_test $DEV mask || fail mask
unload
logcheck "the mask run"

step "unbind with transfers in flight, then bind/unbind cycles"
load ring_size=8
edu_test $DEV unbind "$pci" 5 || fail unbind
unload
logcheck "unbind"

[ -x /opt/wirepath ] && { wirepath probe | grep -q 'dma.edu *no.*not bound' || fail "wirepath probe: want 'not bound' after rmmod"; }
step "load/unload cycles"
for i in 1 2 3; do
	load
	edu_test $DEV roundtrip 5 >/dev/null || fail "roundtrip in cycle $i"
	unload
done
logcheck "load/unload cycles"
echo "after: $(meminfo)"
SUNREC1=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
# Unreclaimable slab may wobble by a few pages; a leak per transfer or per
# cycle (thousands of each ran) would show as far more.
[ $((SUNREC1 - SUNREC0)) -lt 1024 ] || fail "unreclaimable slab grew by $((SUNREC1 - SUNREC0)) kB"
echo "edu: all checks passed"
