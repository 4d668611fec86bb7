#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/vm/run.sh: boot Debian's 6.1 kernel (linux-image-amd64) under qemu,
# TCG only (KVM hangs on our hosts), with an initramfs that holds busybox, the
# files given (executables with the shared libraries ldd names), the modules
# given (with their dependencies, depmod'ed, so `modprobe` works inside) and
# a script; run the script as root in the guest and exit with its status.
# The guest's whole console (kernel log included) is the log.
#
#   tests/vm/run.sh [options] SCRIPT [ARG...]
#     --file SRC[:DST]   put SRC at DST in the guest (default /opt/BASENAME);
#                        an ELF executable brings its shared libraries
#     --lib SRC          put SRC at its own path (a shared library a program
#                        dlopens, a provider's config file); an ELF brings its
#                        own libraries
#     --nic              a virtio-net NIC on a restricted qemu user network (no
#                        way out of the guest), up as eth0 with 10.0.2.15/24
#                        (WPVM_IP in the script's environment); lo is up
#     --module M         a module of the kernel (name, e.g. rdma_rxe) or a .ko
#                        path (goes to extra/); dependencies come along
#     --load M           modprobe M before the script (implies --module M)
#     --device D         qemu -device D (e.g. edu); repeatable
#     --qemu-arg A       one more qemu argument (e.g. -icount); repeatable
#     --append A         more kernel command line
#     --mem MIB          guest memory (256)       --smp N   vCPUs (1)
#     --timeout S        kill qemu after S seconds (120)
#     --log FILE         keep the console log there (default: printed on failure)
#     --kver V           kernel version (default: newest 6.1.* in /lib/modules)
#     --icount           -icount shift=0,sleep=off: virtual time counts guest
#                        instructions and jumps to the next timer while the
#                        guest idles (device timers cost no real time)
#     --check-only       exit 0 if a guest can be booted here, 77 (with the reason) if not
#
# Exit: the script's status; 77 when setup finds qemu, the kernel, busybox or
# cpio missing (never for what happens in the guest); 124 when qemu timed out;
# 125 when the guest ended without reporting a status (panic, crash).
# The script runs with /opt on PATH, cwd /opt, /proc, /sys, /dev, /tmp mounted
# and the guest's dmesg readable; its last line of output is followed by
# "WPVM-EXIT=N" on the console, which is how the status comes back.
set -u

die() { echo "vm: $*" >&2; exit 1; }
skip() { echo "skip: $*"; exit 77; }

files=() modules=() loads=() devices=() qargs=()
append="" mem=256 smp=1 timeout=120 log="" kver="" check_only=0 nic=0
while [ $# -gt 0 ]; do
	case $1 in
	--file) files+=("$2"); shift 2 ;;
	--lib) files+=("$2:$2"); shift 2 ;;
	--nic) nic=1; shift ;;
	--module) modules+=("$2"); shift 2 ;;
	--load) modules+=("$2"); loads+=("$2"); shift 2 ;;
	--device) devices+=("$2"); shift 2 ;;
	--qemu-arg) qargs+=("$2"); shift 2 ;;
	--append) append="$append $2"; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--kver) kver=$2; shift 2 ;;
	--icount) qargs+=(-icount shift=0,sleep=off); shift ;;
	--check-only) check_only=1; shift ;;
	--) shift; break ;;
	-*) die "unknown option $1 (see the comment at the top of $0)" ;;
	*) break ;;
	esac
done

# Setup: what this host must have. Each missing piece is a skip, with what
# installs it (scripts/deps.sh installs them all).
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || skip "no cpio (apt-get install cpio)"
command -v depmod >/dev/null || [ -x /sbin/depmod ] || skip "no depmod (apt-get install kmod)"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q "statically linked" ||
	{ [ -x /bin/busybox ] && busybox=/bin/busybox; }
[ -n "$busybox" ] && [ -x "$busybox" ] || skip "no busybox (apt-get install busybox-static)"
if [ -z "$kver" ]; then
	kver=$(ls -1 /lib/modules 2>/dev/null | grep '^6\.1\.' | sort -V | tail -n 1)
fi
[ -n "$kver" ] || skip "no 6.1 kernel in /lib/modules (apt-get install linux-image-amd64)"
kernel=/boot/vmlinuz-$kver
[ -r "$kernel" ] || skip "$kernel missing or unreadable (apt-get install linux-image-amd64)"
# The bzImage's xz payload, unpacked once and cached: qemu boots the ELF
# vmlinux through its PVH entry (CONFIG_PVH=y), which saves TCG the xz
# decompression, about half the boot's CPU time. Falls back to the bzImage.
cache=${WPVM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/wirepath-vm}
vmlinux=$cache/vmlinux-$kver
if [ ! -s "$vmlinux" ] || [ "$vmlinux" -ot "$kernel" ]; then
	mkdir -p "$cache" 2>/dev/null && python3 - "$kernel" "$vmlinux.tmp.$$" <<'PY' 2>/dev/null && mv "$vmlinux.tmp.$$" "$vmlinux"
import lzma, sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\xfd7zXZ\x00")
if i < 0:
    sys.exit(1)
out = lzma.LZMADecompressor().decompress(d[i:])
if out[:4] != b"\x7fELF":
    sys.exit(1)
open(sys.argv[2], "wb").write(out)
PY
	rm -f "$vmlinux.tmp.$$"
fi
[ -s "$vmlinux" ] && kernel=$vmlinux
qemu-system-x86_64 -accel help 2>/dev/null | grep -qx tcg || skip "this qemu has no TCG"
for d in "${devices[@]+"${devices[@]}"}"; do
	qemu-system-x86_64 -device help 2>/dev/null | grep -q "name \"${d%%,*}\"" ||
		skip "this qemu has no -device ${d%%,*}"
done
if [ $nic -eq 1 ]; then
	qemu-system-x86_64 -device help 2>/dev/null | grep -q 'name "virtio-net-pci"' ||
		skip "this qemu has no -device virtio-net-pci"
	# virtio_pci and virtio_net are modules in Debian's kernel.
	modules+=(virtio_pci virtio_net) loads=(virtio_pci virtio_net "${loads[@]+"${loads[@]}"}")
	qargs+=(-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0)
fi
[ $check_only -eq 1 ] && { echo "vm: can boot $kernel under qemu TCG"; exit 0; }

[ $# -ge 1 ] || die "no script given"
script=$1; shift
[ -r "$script" ] || die "cannot read $script"

work=$(mktemp -d "${TMPDIR:-/tmp}/wpvm.XXXXXX") || die "mktemp failed"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,opt,etc,lib/modules/"$kver"/extra}

# busybox and its applets (links made here, not in the guest: faster boot)
cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do
	[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done

# A file, and for an ELF executable its loader and libraries, at their paths.
add_libs() {
	local lib
	for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
for f in "${files[@]+"${files[@]}"}"; do
	src=${f%%:*}
	dst=/opt/$(basename "$src")
	case $f in *:*) dst=${f#*:} ;; esac
	[ -r "$src" ] || die "--file $src: not readable"
	mkdir -p "$root$(dirname "$dst")"
	cp -L "$src" "$root$dst"
	head -c 4 "$src" | grep -q ELF && add_libs "$src"
done

# Modules: a name resolves (with its dependencies) through the host's
# modules.dep; a .ko goes to extra/ and brings its own dependencies' names.
kdir=/lib/modules/$kver
add_mod() {
	local p=$1 rel
	case $p in
	*.ko) rel=extra/$(basename "$p") ;;
	*) rel=${p#"$kdir"/} ;;
	esac
	[ -e "$root$kdir/$rel" ] && return
	mkdir -p "$root$kdir/$(dirname "$rel")"
	cp "$p" "$root$kdir/$rel"
}
for m in "${modules[@]+"${modules[@]}"}"; do
	if [ -f "$m" ]; then
		add_mod "$m"
		deps=$(/sbin/modinfo -F depends "$m" 2>/dev/null | tr ',' ' ')
	else
		deps=$m
	fi
	for d in $deps; do
		paths=$(/sbin/modprobe -S "$kver" --show-depends "$d" 2>/dev/null | awk '$1 == "insmod" {print $2}')
		[ -n "$paths" ] || /sbin/modprobe -S "$kver" --show-depends "$d" 2>&1 | grep -q builtin ||
			die "module $d not found for $kver"
		for p in $paths; do add_mod "$p"; done
	done
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
	[ -e "$kdir/$f" ] && cp "$kdir/$f" "$root$kdir/$f"
done
/sbin/depmod -b "$root" "$kver" || die "depmod failed"
# The guest's modprobe: busybox's reads modules.dep, which depmod wrote.

cp "$script" "$root/opt/test.sh"
printf '%s\n' "$@" >"$root/opt/test.args"
{
	echo '#!/bin/sh'
	echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev'
	echo 'mount -t tmpfs tmp /tmp; mkdir -p /dev/pts; mount -t devpts pts /dev/pts'
	echo 'export PATH=/opt:/bin:/sbin HOME=/tmp; cd /opt'
	echo 'echo; echo "vm: running the script"'
	echo 'rc=0'
	for m in "${loads[@]+"${loads[@]}"}"; do
		n=$(basename "$m" .ko)
		echo "modprobe $n || { echo \"vm: modprobe $n failed\"; rc=1; }"
	done
	echo 'ip link set lo up 2>/dev/null'
	if [ $nic -eq 1 ]; then
		echo 'export WPVM_IP=10.0.2.15'
		echo 'i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done'
		echo 'ip link set eth0 up && ip addr add $WPVM_IP/24 dev eth0 || { echo "vm: eth0 did not come up"; rc=1; }'
	fi
	echo '[ $rc -eq 0 ] && { set --; while IFS= read -r a; do set -- "$@" "$a"; done </opt/test.args; sh /opt/test.sh "$@"; rc=$?; }'
	echo 'echo; echo "WPVM-EXIT=$rc"'
	echo 'poweroff -f'
} >"$root/init"
chmod +x "$root/init"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz" || die "cpio failed"

console=$work/console.log
t0=$(date +%s%N)
# -no-reboot + panic=-1: a panic ends qemu at once instead of looping. The
# rest of the command line trims TCG's boot work: no speculation mitigations,
# no crypto self-tests, no TSC calibration or EDD probing.
timeout --kill-after=5 "$timeout" qemu-system-x86_64 -accel tcg -M pc -cpu qemu64 \
	-m "$mem" -smp "$smp" -nographic -no-reboot -nodefaults -serial "file:$console" \
	-kernel "$kernel" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init mitigations=off nokaslr cryptomgr.notests tsc=reliable no_timer_check edd=off$append" \
	"${qargs[@]+"${qargs[@]}"}" \
	$(for d in "${devices[@]+"${devices[@]}"}"; do printf -- '-device %s ' "$d"; done) \
	</dev/null >"$work/qemu.out" 2>&1
qrc=$?
ms=$((($(date +%s%N) - t0) / 1000000))

cat "$work/qemu.out" >>"$console"
[ -n "$log" ] && cp "$console" "$log"
# Unanchored: a kernel message may share the console line.
rc=$(tr -d '\r' <"$console" | sed -n 's/.*WPVM-EXIT=\([0-9][0-9]*\).*/\1/p' | tail -n 1)
if [ -z "$rc" ]; then
	if [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
		echo "vm: qemu killed after ${timeout}s" >&2
		rc=124
	else
		echo "vm: the guest ended without a status (qemu exit $qrc)" >&2
		rc=125
	fi
fi
echo "vm: guest status $rc after $((ms / 1000)).$((ms % 1000 / 100)) s (qemu TCG, $kver)" >&2
if [ -z "$log" ] && [ "$rc" -ne 0 ]; then
	tail -n 80 "$console" >&2
fi
exit "$rc"
