#!/bin/sh
# scripts/deps.sh — make sure the Debian packages heapscope builds, tests and runs
# with are installed. As root it installs what is missing (apt-get update first);
# otherwise it prints the exact command to run and fails. Quiet when nothing is
# missing, so every `make test` and `make run` can call it.
#
# `scripts/deps.sh bench` adds what the benchmarks compare against: Go 1.19 (for
# the runtime's own page-allocator benchmarks) and the other allocators.
set -eu

PACKAGES="gcc clang llvm make pkg-config libncurses-dev libsqlite3-dev libbpf-dev bpftool
libelf-dev zlib1g-dev systemtap-sdt-dev libcmocka-dev tmux sqlite3 python3 time
perl git tcl gawk xz-utils"
if [ "${1:-}" = bench ]; then
	PACKAGES="$PACKAGES golang-1.19-go golang-1.19-src libjemalloc2 libmimalloc2.0
libgoogle-perftools4"
fi

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "heapscope: missing packages:$missing" >&2
	echo "heapscope: install them with: sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi

echo "heapscope: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
