# scripts/allocators.sh — sourced by the benchmark scripts: which allocators are
# installed, and how to run a benchmark binary under each.
#   $allocs             heapscope glibc, then jemalloc mimalloc tcmalloc if installed
#   with_alloc A CMD..  runs CMD.. with allocator A: "heapscope" and "glibc" as
#                       they are (the binary picks heapscope with --alloc), the
#                       others with LD_PRELOAD
lib=/usr/lib/$(gcc -dumpmachine)
allocs="glibc heapscope"
for a in jemalloc:libjemalloc.so.2 mimalloc:libmimalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4; do
	[ -e "$lib/${a#*:}" ] && allocs="$allocs ${a%%:*}"
done

with_alloc() {
	a=$1
	shift
	case $a in
	jemalloc) LD_PRELOAD=$lib/libjemalloc.so.2 "$@" ;;
	mimalloc) LD_PRELOAD=$lib/libmimalloc.so.2 "$@" ;;
	tcmalloc) LD_PRELOAD=$lib/libtcmalloc_minimal.so.4 "$@" ;;
	*) "$@" ;;
	esac
}

# The --alloc argument the benchmark binaries take for allocator A.
alloc_arg() {
	[ "$1" = heapscope ] && echo heapscope || echo system
}
