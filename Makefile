# heapscope — top-level Makefile.
#
#   make run      install what is missing, build, open the TUI on the demo workload
#   make test     install what is missing, build, run every test (3 arch configs)
#   make asan     the unit and CLI tests under AddressSanitizer + UBSan
#   make bench    benchmarks (docs/PERFORMANCE.md has the figures)
#   make install PREFIX=/usr/local
#
# One output directory (build/), quiet unless V=1, dependency files so a header
# change rebuilds what includes it. HS_DEBUG=1 (the default for tests) turns on
# the cheap assertions (lock ownership); HS_DEBUG=0 is the release build.

CC ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif
PREFIX ?= /usr/local
BUILD ?= build
V ?= 0
Q := $(if $(filter 1,$(V)),,@)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g -fPIC $(WARN) -Iinclude -Icore -Istore -Icli -Itui -Iprobes -MMD -MP
OPT ?= -O2
CFLAGS ?=
SAN ?=
ALL_CFLAGS = $(BASE_CFLAGS) $(OPT) $(SAN) $(CFLAGS)
LDLIBS_CORE := -lpthread

# The native configuration builds the library, the CLI and the benchmarks; the
# tests build the page allocator once per configuration. The heap's own tests
# need real addresses, so they are built for the native configuration only.
ARCHES := amd64 arm64 32bit
NATIVE := $(if $(filter aarch64,$(shell uname -m)),arm64,amd64)
NATIVE_TESTS := test_sizeclasses test_heap test_scavenger test_heap_structs test_ring test_trace test_tui \
	$(STORE_TESTS)
ARCH_DEF_amd64 := -DHS_ARCH_AMD64
ARCH_DEF_arm64 := -DHS_ARCH_ARM64
ARCH_DEF_32bit := -DHS_ARCH_32BIT

CORE_SRCS := core/panic.c core/sys.c core/addrrange.c core/pallocsum.c core/pallocbits.c \
	core/pagealloc.c core/pagecache.c core/pagealloc_check.c core/pagealloc_api.c \
	core/scavindex.c core/pagescav.c \
	core/fixalloc.c core/sizeclasses.c core/arena.c core/mheap.c core/mspan.c core/mcentral.c \
	core/mcache.c core/sweep.c core/scavenger.c core/malloc.c core/heapcheck.c \
	core/background.c core/events.c core/ring.c core/trace.c core/model.c
CLI_SRCS := $(wildcard cli/*.c)
# The eBPF transport (probes/): the BPF program, built with clang for the BPF
# target, embedded in a libbpf skeleton that probes/bpf.c includes.
PROBES_SRCS := probes/bpf.c
LDLIBS_BPF := -lbpf -lelf -lz
BPF_CLANG ?= clang
BPF_ARCH := $(if $(filter aarch64,$(shell uname -m)),arm64,x86)
BPF_CFLAGS := -g -O2 -target bpf -ffreestanding -D__TARGET_ARCH_$(BPF_ARCH) -Iinclude \
	-idirafter /usr/include/$(shell gcc -dumpmachine 2>/dev/null)
# The store (SQLite) links into the CLI and into the tests named test_store*.
STORE_SRCS := $(wildcard store/*.c)
STORE_TESTS := $(notdir $(basename $(wildcard tests/unit/test_store*.c)))
LDLIBS_STORE := -lsqlite3
# The TUI (ncurses, wide characters) links into the CLI.
TUI_SRCS := $(wildcard tui/*.c)
LDLIBS_TUI := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw)
UNIT_TESTS := test_bits test_pallocsum test_pallocbits test_addrrange test_pagealloc \
	test_pagecache test_differential test_scavenge
TEST_SUPPORT := tests/unit/oracle.c tests/unit/scenario.c

CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

.DELETE_ON_ERROR:
# Keep the test objects make would otherwise delete as intermediates.
.SECONDARY:
.PHONY: all deps run test test-bins unit cli-test asan tsan bench bench-heap bench-rss bench-trace bench-tui install clean
.PHONY: hosted-test bench-hosted probes-test bench-probes

all: $(BUILD)/bin/heapscope $(BUILD)/lib/libheapscope.a $(BUILD)/lib/libheapscope.so \
	$(BUILD)/lib/libheapscope-preload.so

deps:
	$(Q)scripts/deps.sh

# --- per-configuration objects: build/<arch>/<dir>/<file>.o, with HS_DEBUG=1 for tests
define arch_rules
$(BUILD)/$(1)/%.o: %.c
	@mkdir -p $$(@D)
	$$(if $(Q),@echo "  CC [$(1)] $$<")
	$(Q)$$(CC) $$(ALL_CFLAGS) $(ARCH_DEF_$(1)) -DHS_DEBUG=1 $$(CMOCKA_CFLAGS) -c -o $$@ $$<

$(BUILD)/$(1)/libcore.a: $(addprefix $(BUILD)/$(1)/,$(CORE_SRCS:.c=.o))
	$(Q)rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/$(1)/tests/%: $(BUILD)/$(1)/tests/unit/%.o $(addprefix $(BUILD)/$(1)/,$(TEST_SUPPORT:.c=.o)) $(BUILD)/$(1)/libcore.a
	@mkdir -p $$(@D)
	$(Q)$$(CC) $$(ALL_CFLAGS) -o $$@ $$^ $$(CMOCKA_LIBS) $(LDLIBS_CORE)

$(BUILD)/$(1)/tests/test_stress: $(BUILD)/$(1)/tests/stress/stress.o $(BUILD)/$(1)/libcore.a
	@mkdir -p $$(@D)
	$(Q)$$(CC) $$(ALL_CFLAGS) -o $$@ $$^ $(LDLIBS_CORE)

TEST_BINS += $(addprefix $(BUILD)/$(1)/tests/,$(UNIT_TESTS))
endef
$(foreach a,$(ARCHES),$(eval $(call arch_rules,$(a))))
TEST_BINS += $(addprefix $(BUILD)/$(NATIVE)/tests/,$(NATIVE_TESTS) test_stress)

$(BUILD)/$(NATIVE)/libstore.a: $(addprefix $(BUILD)/$(NATIVE)/,$(STORE_SRCS:.c=.o))
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/$(NATIVE)/tests/test_tui: $(BUILD)/$(NATIVE)/tests/unit/test_tui.o \
		$(addprefix $(BUILD)/$(NATIVE)/,$(TUI_SRCS:.c=.o)) $(BUILD)/$(NATIVE)/libcore.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS_TUI) $(LDLIBS_CORE)

$(BUILD)/$(NATIVE)/tests/test_store%: $(BUILD)/$(NATIVE)/tests/unit/test_store%.o \
		$(addprefix $(BUILD)/$(NATIVE)/,$(TEST_SUPPORT:.c=.o)) $(BUILD)/$(NATIVE)/libstore.a \
		$(BUILD)/$(NATIVE)/libcore.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS_STORE) $(LDLIBS_CORE)

# --- the native release build
$(BUILD)/rel/%.o: %.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC $<")
	$(Q)$(CC) $(ALL_CFLAGS) -DHS_DEBUG=0 -c -o $@ $<

REL_CORE_OBJS := $(addprefix $(BUILD)/rel/,$(CORE_SRCS:.c=.o))

$(BUILD)/lib/libheapscope.a: $(REL_CORE_OBJS)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/lib/libheapscope.so: $(REL_CORE_OBJS)
	@mkdir -p $(@D)
	$(Q)$(CC) -shared -o $@ $^ $(LDLIBS_CORE)

# The LD_PRELOAD shim (shim/, docs/hosting.md): the release core objects behind
# the C library's malloc names. Linked through their archive with --exclude-libs
# so that only the shim's own names are exported and the core's stay local.
SHIM_SRCS := $(wildcard shim/*.c)

$(BUILD)/lib/libheapscope-preload.so: $(addprefix $(BUILD)/rel/,$(SHIM_SRCS:.c=.o)) $(BUILD)/lib/libheapscope.a
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD $@")
	$(Q)$(CC) -shared -fPIC -o $@ $(filter %.o,$^) $(BUILD)/lib/libheapscope.a -Wl,--exclude-libs,ALL \
		$(LDLIBS_CORE)

# The BPF object (clang's BPF target; bpftool links it, which also checks its
# BTF) and the skeleton that embeds it.
$(BUILD)/probes/heapscope.bpf.o: probes/heapscope.bpf.c include/heapscope/events.h
	@mkdir -p $(@D)
	$(if $(Q),@echo "  BPF $<")
	$(Q)$(BPF_CLANG) $(BPF_CFLAGS) -c -o $(@:.o=.tmp.o) $<
	$(Q)bpftool gen object $@ $(@:.o=.tmp.o)
	$(Q)rm -f $(@:.o=.tmp.o)

$(BUILD)/probes/heapscope.skel.h: $(BUILD)/probes/heapscope.bpf.o
	$(Q)bpftool gen skeleton $< name heapscope_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/rel/probes/%.o: probes/%.c $(BUILD)/probes/heapscope.skel.h
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC $<")
	$(Q)$(CC) $(ALL_CFLAGS) -DHS_DEBUG=0 -Iprobes -I$(BUILD)/probes -c -o $@ $<

$(BUILD)/bin/heapscope: $(addprefix $(BUILD)/rel/,$(CLI_SRCS:.c=.o) $(STORE_SRCS:.c=.o) $(TUI_SRCS:.c=.o) \
		$(PROBES_SRCS:.c=.o)) $(BUILD)/lib/libheapscope.a
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_TUI) $(LDLIBS_STORE) $(LDLIBS_BPF) $(LDLIBS_CORE)

$(BUILD)/bin/bench_pagealloc: $(BUILD)/rel/bench/bench_pagealloc.o $(BUILD)/lib/libheapscope.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_CORE) -lm

$(BUILD)/bin/bench_heap: $(BUILD)/rel/bench/bench_heap.o $(BUILD)/lib/libheapscope.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_CORE)

# The heap benchmarks once more with every tracepoint compiled out: the baseline
# against which the sites' cost with tracing off is measured.
$(BUILD)/notrace/%.o: %.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC [notrace] $<")
	$(Q)$(CC) $(ALL_CFLAGS) -DHS_DEBUG=0 -DHS_NO_TRACE -c -o $@ $<

$(BUILD)/bin/bench_heap_notrace: $(addprefix $(BUILD)/notrace/,$(CORE_SRCS:.c=.o) bench/bench_heap.o)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_CORE)

$(BUILD)/bin/bench_tui: $(BUILD)/rel/bench/bench_tui.o $(addprefix $(BUILD)/rel/,$(TUI_SRCS:.c=.o)) \
		$(BUILD)/lib/libheapscope.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_TUI) $(LDLIBS_CORE)

$(BUILD)/bin/bench_rss: $(BUILD)/rel/bench/bench_rss.o $(BUILD)/lib/libheapscope.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS_CORE)

# --- running
# The TUI, live, on the demo workload (q quits); the session goes to build/demo.db.
run: deps all
	$(BUILD)/bin/heapscope run --workload demo -o $(BUILD)/demo.db

unit: $(TEST_BINS)
	$(Q)scripts/run-unit-tests.sh $(TEST_BINS)

cli-test: $(BUILD)/bin/heapscope
	$(Q)HEAPSCOPE=$(BUILD)/bin/heapscope tests/cli/run.sh
	$(Q)HEAPSCOPE=$(BUILD)/bin/heapscope tests/cli/workloads.sh
	$(Q)HEAPSCOPE=$(BUILD)/bin/heapscope tests/cli/recorder.sh
	$(Q)HEAPSCOPE=$(BUILD)/bin/heapscope tests/cli/store.sh
	$(Q)HEAPSCOPE=$(BUILD)/bin/heapscope tests/cli/report.sh
	$(Q)HEAPSCOPE=$(BUILD)/bin/heapscope tests/cli/regressions.sh
	$(Q)HEAPSCOPE=$(BUILD)/bin/heapscope tests/tui/run.sh

# Real programs under the shim (tests/hosted/run.sh).
hosted-test: $(BUILD)/bin/heapscope $(BUILD)/lib/libheapscope-preload.so
	$(Q)HEAPSCOPE=$(BUILD)/bin/heapscope SHIM=$(BUILD)/lib/libheapscope-preload.so tests/hosted/run.sh

# The eBPF transport, attached for real (tests/probes/run.sh; needs root, says
# SKIP with the reason where the kernel or the privileges are missing).
probes-test: $(BUILD)/bin/heapscope $(BUILD)/lib/libheapscope-preload.so $(BUILD)/probes/heapscope.bpf.o
	$(Q)HEAPSCOPE=$(BUILD)/bin/heapscope SHIM=$(BUILD)/lib/libheapscope-preload.so \
		BPF_OBJ=$(BUILD)/probes/heapscope.bpf.o tests/probes/run.sh

# The test targets build in parallel first, then run the tests one at a time:
# several of them time real runs, and a compiler beside them would slow those.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test-bins: $(TEST_BINS) $(BUILD)/bin/heapscope $(BUILD)/probes/heapscope.bpf.o

test: deps
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) test-bins $(BUILD)/lib/libheapscope-preload.so
	$(Q)$(MAKE) --no-print-directory unit cli-test hosted-test probes-test

ASAN_VARS := BUILD=build/asan OPT=-O1 \
	SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
asan: deps
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) $(ASAN_VARS) test-bins
	$(Q)$(MAKE) --no-print-directory $(ASAN_VARS) unit cli-test
	$(Q)$(MAKE) --no-print-directory $(BUILD)/lib/libheapscope-preload.so
	$(Q)HEAPSCOPE=build/asan/bin/heapscope SHIM=$(BUILD)/lib/libheapscope-preload.so \
		BPF_OBJ=build/asan/probes/heapscope.bpf.o tests/probes/run.sh

# ThreadSanitizer: the multi-threaded stress test and the heap's unit tests.
tsan: deps
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) BUILD=build/tsan OPT=-O1 SAN="-fsanitize=thread" \
		build/tsan/$(NATIVE)/tests/test_stress build/tsan/$(NATIVE)/tests/test_heap
	$(Q)TSAN_OPTIONS="halt_on_error=1" scripts/run-unit-tests.sh build/tsan/$(NATIVE)/tests/test_stress \
		build/tsan/$(NATIVE)/tests/test_heap

bench: deps $(BUILD)/bin/bench_pagealloc $(BUILD)/bin/bench_heap $(BUILD)/bin/bench_rss
	$(Q)scripts/deps.sh bench
	$(Q)scripts/bench-pagealloc.sh $(BUILD)/bin/bench_pagealloc
	$(Q)scripts/bench-heap.sh $(BUILD)/bin/bench_heap
	$(Q)scripts/bench-rss.sh $(BUILD)/bin/bench_rss
	$(Q)$(MAKE) --no-print-directory bench-trace bench-tui bench-probes

# The tracer: sites compiled in but off, against compiled out; tracing
# overhead on churn; events/s through the ring.
# The TUI: frame times on a pseudo-terminal for a heap of 1000 chunks.
bench-tui: $(BUILD)/bin/bench_tui
	$(Q)$(BUILD)/bin/bench_tui

bench-trace: deps $(BUILD)/bin/heapscope $(BUILD)/bin/bench_heap $(BUILD)/bin/bench_heap_notrace
	$(Q)scripts/bench-trace-off.sh $(BUILD)/bin/bench_heap_notrace $(BUILD)/bin/bench_heap
	$(Q)scripts/bench-trace.sh $(BUILD)/bin/heapscope

# The eBPF transport against the in-process ring: per-event cost in the
# workload and the sustained rate (docs/PERFORMANCE.md; needs root).
bench-probes: deps $(BUILD)/bin/heapscope
	$(Q)scripts/bench-probes.sh $(BUILD)/bin/heapscope

# The same programs on larger inputs under glibc, jemalloc, mimalloc, tcmalloc
# and heapscope (untraced, heap-level and object-level tracing).
bench-hosted: deps $(BUILD)/bin/heapscope $(BUILD)/lib/libheapscope-preload.so
	$(Q)scripts/deps.sh bench
	$(Q)HEAPSCOPE=$(BUILD)/bin/heapscope SHIM=$(BUILD)/lib/libheapscope-preload.so scripts/bench-hosted.sh

bench-rss: deps $(BUILD)/bin/bench_rss
	$(Q)scripts/deps.sh bench
	$(Q)scripts/bench-rss.sh $(BUILD)/bin/bench_rss

bench-heap: deps $(BUILD)/bin/bench_heap
	$(Q)scripts/deps.sh bench
	$(Q)scripts/bench-heap.sh $(BUILD)/bin/bench_heap

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/heapscope
	install -m 0755 $(BUILD)/bin/heapscope $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(BUILD)/lib/libheapscope.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(BUILD)/lib/libheapscope.so $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(BUILD)/lib/libheapscope-preload.so $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 include/heapscope/*.h $(DESTDIR)$(PREFIX)/include/heapscope/

clean:
	rm -rf $(BUILD) build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
