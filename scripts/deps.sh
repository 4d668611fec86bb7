#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian 12 packages wirepath builds, tests and demos with.
# Idempotent: installs only what is missing; uses sudo when not root.
#   scripts/deps.sh          build + test + demo
#   scripts/deps.sh --peers  also the peer benchmarks (sockperf, ucx_perftest; nginx and
#                            wrk are in the default list: the gateway bench's smoke test)
set -euo pipefail

pkgs=(gcc make meson ninja-build pkg-config liburing-dev clang libclang-rt-14-dev gnuplot-nox valgrind)
# The front door (src/policy): XDP program, libbpf skeleton and loader; the
# netns tests need iproute2 (ip netns, veth) and util-linux (nsenter).
pkgs+=(libbpf-dev bpftool libelf-dev zlib1g-dev iproute2 util-linux)
# The xsk path (src/transport/xsk/): AF_XDP sockets through libxdp's xsk API.
pkgs+=(libxdp-dev)
# The flood benchmark (bench/flood/run.sh) compares XDP with an nftables drop rule.
pkgs+=(nftables)
# Frame authentication v2 (src/auth) uses OpenSSL 3's libcrypto.
pkgs+=(libssl-dev)
# wirepathd (src/daemon): HTTP/1.1 parser, JSON, YAML configuration.
pkgs+=(libhttp-parser-dev libjansson-dev libfyaml-dev)
# The gateway bench (bench/gateway/run.sh; its smoke test runs in make test)
# compares wirepathd with nginx and loads both with wrk.
pkgs+=(nginx-light wrk)
# The real-stack bench (bench/stacks, make demo): its agents are a libcurl
# multi client.
pkgs+=(libcurl4-openssl-dev)
# The ucx path (src/transport/ucx/): UCX 1.13 (UCP); optional at build time.
pkgs+=(libucx-dev)
# The VM tests (tests/vm/run.sh): Debian's 6.1 kernel under qemu TCG with a
# busybox initramfs (cpio, kmod's depmod); the edu driver (kernel/edu) builds
# with kbuild against the 6.1 headers.
pkgs+=(qemu-system-x86 linux-image-amd64 linux-headers-amd64 busybox-static cpio kmod)
# The rdma path (src/transport/rdma/): rdma-core's libibverbs and librdmacm;
# its VM test (tests/vm/rdma.sh) needs the soft-RoCE provider (librxe) for the
# guest and iproute2's rdma tool (above).
pkgs+=(libibverbs-dev librdmacm-dev ibverbs-providers)
if [ "${1:-}" = "--peers" ]; then
	# perftest: ib_send_lat and ib_write_bw next to the rdma path (tests/vm/rdma.sh BUILD bench)
	pkgs+=(sockperf ucx-utils perftest)
fi

missing=()
# python3 checks JSON in the CLI smoke test; any python3 on PATH will do.
command -v python3 >/dev/null || missing+=(python3)
# The real-client tests of wirepathd (tests/daemon/node/setup.sh) need node >= 18
# and npm. Checked by command, not package: a nodesource nodejs carries its own
# npm and conflicts with Debian's.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || echo "deps: apt-get update failed; trying with the cached lists" >&2
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
