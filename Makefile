# diogap - top-level Makefile. `make` builds the reproducers into build/.
# Sections: reproducers (build), unit tests, reproducer checks and bench,
# dependencies. The lead's targets (check, run, ...) go in their own section.

# ARCH=arm64 (or `make arm64`): cross-build for arm64 guests into
# build-arm64/ with Debian's gcc-aarch64-linux-gnu and liburing-dev:arm64
# (`make deps ARCH=arm64` installs them). Empty, x86_64, x86 or amd64 (a
# kernel developer's environment may export ARCH=x86): the host's own.
ARCH ?=
ifeq ($(ARCH),arm64)
BUILD ?= build-arm64
CC := aarch64-linux-gnu-gcc
DEPS_GROUPS := build-arm64
else ifeq ($(filter-out x86_64 x86 amd64,$(ARCH)),)
BUILD ?= build
DEPS_GROUPS := build
else
$(error ARCH=$(ARCH): only ARCH=arm64 (cross) or the host's (x86_64) are known)
endif
CC ?= cc
CFLAGS ?= -O2 -g
DG_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -MMD -MP -Irepro/lib
LDFLAGS ?=
# Debian's static liburing (package liburing-dev); -static picks liburing.a.
LDLIBS := -luring

.PHONY: all clean deps check-unit check-repro bench-repro
all: reproducers

# ---- reproducers (repro/) ------------------------------------------------
# One file = one reproducer = one word in this sorted list.
REPROS := dio-append-write dio-dsync-uring dio-fsync-after-error dio-fsync-race dio-partial-write dio-self-mmap-write dio-unstable-read dio-unstable-write dio-uring-read-fault dio-uring-write

REPRO_BINS := $(addprefix $(BUILD)/,$(REPROS))
LIB_SRCS := $(sort $(wildcard repro/lib/*.c))
LIB_OBJS := $(patsubst repro/lib/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB_A := $(BUILD)/libdiogap.a

.PHONY: reproducers $(REPROS) tools
reproducers: $(REPRO_BINS) tools
# `make dio-partial-write` builds just that one.
$(REPROS): %: $(BUILD)/%

# Every header as a prerequisite, besides the -MMD files: those name the
# objects as they were built (build-arm64/obj/x.o), and a later make with
# BUILD given as an absolute path (run-vm does) would not match them and
# would link objects built against an older struct layout.
LIB_HDRS := $(wildcard repro/lib/*.h)
$(BUILD)/obj/%.o: repro/lib/%.c $(LIB_HDRS) | $(BUILD)/obj
	$(CC) $(DG_CFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

# A reproducer's metadata is its dg_repro table (--describe --json).
$(REPRO_BINS): $(BUILD)/%: repro/%.c $(LIB_A) $(LIB_HDRS)
	$(CC) $(DG_CFLAGS) $(CFLAGS) \
		-static $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

# Tools the harness runs beside the reproducers (repro/tools/): static too,
# they go into the guest's initramfs.
TOOLS := dg-case dg-dm
TOOL_BINS := $(addprefix $(BUILD)/,$(TOOLS))
tools: $(TOOL_BINS)

$(TOOL_BINS): $(BUILD)/%: repro/tools/%.c $(LIB_A) $(LIB_HDRS)
	$(CC) $(DG_CFLAGS) $(CFLAGS) -static $(LDFLAGS) -o $@ $< $(LIB_A)

$(BUILD)/obj:
	mkdir -p $@

# ---- unit tests (repro/tests/) -------------------------------------------
UNIT_SRCS := $(sort $(filter-out repro/tests/enosys.c,$(wildcard repro/tests/*.c)))
UNIT_BIN := $(BUILD)/unit-tests
# Test helper: run a command with some system calls failing ENOSYS (seccomp).
ENOSYS_BIN := $(BUILD)/enosys

$(ENOSYS_BIN): repro/tests/enosys.c
	$(CC) $(DG_CFLAGS) $(CFLAGS) -static $(LDFLAGS) -o $@ $<

$(UNIT_BIN): $(UNIT_SRCS) $(LIB_A) $(LIB_HDRS)
	$(CC) $(DG_CFLAGS) $(CFLAGS) -Irepro/lib -static $(LDFLAGS) -o $@ \
		$(UNIT_SRCS) $(LIB_A)

# Runner's last line: "N passed, N failed"; non-zero exit on any failure.
check-unit: $(UNIT_BIN)
	$(UNIT_BIN)

# ---- reproducer checks and benchmark (need root, loop devices) -----------
# Every reproducer x pattern x size on a loop-mounted btrfs, tmpfs control,
# bad inputs and their exit codes.
check-repro: reproducers $(ENOSYS_BIN)
	harness/tests/repro-local.sh $(BUILD)

# The unstable-buffer reproducers (dio-unstable-write, dio-unstable-read):
# single, DUP and RAID1 loop-mounted btrfs, the copies checker against a
# damaged mirror.
.PHONY: check-unstable
check-unstable: reproducers
	harness/tests/repro-unstable.sh $(BUILD)

# Figures, not assertions: write/verify us and the ratio to bare I/O
# (build/bare-io: one O_DIRECT pwrite + pread, the baseline).
$(BUILD)/bare-io: repro/bench/bare-io.c $(LIB_A)
	$(CC) $(DG_CFLAGS) $(CFLAGS) -static $(LDFLAGS) -o $@ $< $(LIB_A)

bench-repro: reproducers $(BUILD)/bare-io
	harness/bench-repro $(BUILD)

# ---- dependencies ---------------------------------------------------------
deps:
	harness/install-deps $(DEPS_GROUPS) repro

# The reproducers and tools for arm64 guests (run-vm --arch arm64).
.PHONY: arm64
arm64:
	harness/install-deps build-arm64
	$(MAKE) ARCH=arm64 reproducers

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(REPRO_BINS:=.d) $(TOOL_BINS:=.d) $(UNIT_BIN).d $(ENOSYS_BIN).d

# ---- harness: the main job, test suites, benchmarks ------------------------
# `make run`: the default sweep on a loop-mounted btrfs on the running kernel.
SWEEP ?= configs/sweeps/default.conf
.PHONY: run check help bench check-run-local check-errors check-mutants check-card check-profiles check-kernels check-hang check-lint
run: deps
	harness/run-local --sweep $(SWEEP)

# Every suite; each prints "N passed, N failed", run-tests sums them.
CHECK_SUITES := lint unit repro unstable runner verdicts mutants run-local errors card profiles hang build-kernel run-vm kernels hang-vm report minimize bisect lava
check: deps
	harness/run-tests $(CHECK_SUITES)

check-lint:
	harness/tests/lint.sh

# The case runner's helper (build/dg-case) on its own.
check-runner: tools
	harness/tests/dg-case.sh

# How a case's verdict is made: stub reproducers through the real runner.
.PHONY: check-verdicts
check-verdicts: tools
	harness/tests/verdicts.sh

check-run-local: reproducers
	harness/tests/run-local.sh

# Deliberate breakages of the verdict path (configs/mutants/): each must
# make some suite fail; prints which suite caught which mutant.
check-mutants:
	harness/check-mutants

# Filesystems per case: profiles single, dup, raid1, raid10 on their disks.
check-profiles: reproducers
	harness/tests/profiles.sh

# The fix card from made-up results: every cell state, bad chain files.
check-card:
	harness/tests/fix-card.sh

# Every entry point, failing where no one planned: exit 2, never 1.
check-errors: reproducers
	harness/tests/internal-error.sh

check-hang: reproducers
	harness/tests/repro-hang.sh $(BUILD)

check-kernels: reproducers
	harness/check-kernels

# The opt-in variants of kernels.conf (arm64 with 64 KiB pages, subpage
# btrfs): not in CHECK_SUITES, a cold cross build is too slow for it.
.PHONY: check-kernels-arm64 check-bisect-arm64 check-arm64
check-kernels-arm64: reproducers arm64
	harness/check-kernels --optin
check-bisect-arm64: reproducers arm64
	harness/tests/bisect.sh arm64
# the opt-in arm64 64K-page proofs (outside CHECK_SUITES: ~30 min cold)
check-arm64: check-kernels-arm64 check-bisect-arm64

.PHONY: check-minimize
# harness/minimize and report --bug's standalone repro.c on the known-bad
# kernels (run-vm, run-standalone).
check-minimize: reproducers
	harness/tests/minimize.sh

.PHONY: check-build-kernel check-run-vm check-report check-bisect check-lava check-hang-vm
# The deadlock kernel's hang, end to end through a VM.
check-hang-vm: reproducers
	harness/tests/hang-vm.sh

check-build-kernel:
	harness/tests/build-kernel.sh

check-run-vm: reproducers
	harness/tests/run-vm-all.sh

check-report: reproducers
	harness/tests/report.sh

check-bisect: reproducers
	harness/tests/bisect.sh

check-lava: reproducers
	harness/tests/lava.sh

# Figures, not assertions.
BENCHES := repro vm kernel detect bisect lava arm64 cut
bench: $(addprefix bench-,$(BENCHES))
.PHONY: bench-vm bench-detect bench-kernel bench-bisect bench-lava bench-arm64 bench-cut
bench-vm: reproducers
	harness/bench-vm
bench-kernel:
	harness/bench-kernel
bench-detect: reproducers
	harness/bench-detect
bench-bisect: reproducers
	harness/bench-bisect
bench-lava: reproducers
	harness/bench-lava
# arm64 with 64 KiB pages next to x86_64: build time, boot-to-first-verdict,
# the default sweep (harness/bench-arm64 --cold for a cold cross build).
bench-arm64: reproducers
	harness/bench-arm64
# A power cut's cost in a TCG guest (dio-dsync-uring on dm-flakey).
bench-cut: reproducers
	harness/bench-cut

help:
	@echo "make            build the reproducers into $(BUILD)/"
	@echo "make arm64      cross-build them for arm64 guests into build-arm64/"
	@echo "make run        default sweep on the running kernel (SWEEP=file to change)"
	@echo "make check      every test suite: $(CHECK_SUITES)"
	@echo "make check-X    one suite, X in: $(CHECK_SUITES)"
	@echo "make check-arm64  the opt-in arm64 64K-page proofs (check-kernels-arm64, check-bisect-arm64)"
	@echo "make bench      benchmarks (figures, not assertions)"
