#!/usr/bin/env bash
# Faults run-vm must report as BROKEN (exit 2), never PASS: a file that is
# not a kernel, a kernel that never reaches init, a kernel without btrfs (no
# modules at all; a module tree without btrfs), a guest that hangs (run
# timeout; no progress), with the cases before the hang kept and --resume
# running the rest; SIGINT and SIGKILL leave no VM behind. Boots Debian's
# 6.12 cloud kernel under TCG. And a dead run's dm-flakey device left over
# the scratch disk is removed by the next run.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"
# shellcheck source=harness/lib/vm-kernel.sh
. "$DIOGAP_ROOT/harness/lib/vm-kernel.sh"

RUN=$DIOGAP_ROOT/harness/run-vm
PKG=linux-image-6.12.117+deb12-cloud-amd64
# Our own scratch root: concurrent runs of this test cannot see each other.
export DIOGAP_SCRATCH=/var/tmp/diogap-test-run-vm.$$
T=''

setup() {
	vm_test_setup
	make -s -C "$DIOGAP_ROOT"
	vmk_resolve "$PKG" # fetches and unpacks the package once
	SWEEP2=$(sweep two 20 'fault = first all')
	SWEEP3=$(sweep three 20 'fault = first all stride:4')
}

# sweep NAME TIMEOUT LINES...: a small sweep of dio-partial-write cases, on
# nodatasum: the 6.12 kernel writes checksummed files buffered (SKIP), and a
# write whose first page is not resident goes buffered on nodatasum too.
sweep() {
	local f=$T/$1.conf
	printf '%s\n' 'repro = dio-partial-write' 'size = 64K' 'buffer = memfd' \
		'engine = psync' "timeout = $2" 'image_size = 256M' 'mount = nodatasum' "${@:3}" >"$f"
	echo "$f"
}

# count OUT VERDICT: cases of that verdict in OUT/results.jsonl.
count() { jq -s --arg v "$2" 'map(select(.verdict == $v)) | length' "$1/results.jsonl"; }
# reasons OUT: the reasons of the BROKEN cases, one per line.
reasons() { jq -r 'select(.verdict == "BROKEN") | .reason' "$1/results.jsonl"; }

# all_broken NAME OUT RC PATTERN: exit 2, every case BROKEN, each reason
# matching PATTERN, the console log kept, no VM left.
all_broken() {
	local name=$1 out=$2 rc=$3 pat=$4 n
	n=$(grep -c . "$out"/*/cases.tsv)
	check_eq "$name: exit 2" 2 "$rc"
	check_eq "$name: all $n cases BROKEN" "$n" "$(count "$out" BROKEN)"
	check "$name: every reason says '$pat'" \
		test "$(reasons "$out" | grep -c -- "$pat")" -eq "$n"
	check "$name: console.log kept" test -s "$(echo "$out"/*/console.log)"
	check "$name: no VM left" no_vm_left
}

test_not_a_kernel() {
	local rc=0
	"$RUN" --kernel /etc/hostname --sweep "$SWEEP2" --out "$T/nk" >"$T/nk.log" 2>&1 || rc=$?
	check_eq "a file that is not a kernel: exit 2" 2 "$rc"
	check "and the message says why" grep -q "not a Linux x86 kernel image.*/etc/hostname" "$T/nk.log"
	rc=0
	"$RUN" --kernel "$T/no-such-file" --sweep "$SWEEP2" --out "$T/nk" >"$T/nk.log" 2>&1 || rc=$?
	check_eq "a kernel path that does not exist: exit 2" 2 "$rc"
	rc=0
	"$RUN" --kernel linux-image-0.0.0-no-such-kernel --sweep "$SWEEP2" --out "$T/nk" \
		>"$T/nk.log" 2>&1 || rc=$?
	check_eq "a package that does not exist: exit 2" 2 "$rc"
	check "nothing booted for them" test ! -e "$T/nk/results.jsonl"
	rc=0
	"$RUN" --kernel "$PKG" --sweep "$SWEEP2" --out "$T/qf" --smp 999 >"$T/qf.log" 2>&1 || rc=$?
	check_eq "QEMU that cannot start (--smp 999): exit 2" 2 "$rc"
	check_eq "QEMU that cannot start: both cases BROKEN" 2 "$(count "$T/qf" BROKEN)"
	check "QEMU that cannot start: the reason quotes QEMU" \
		test "$(reasons "$T/qf" | grep -c 'QEMU failed (status 1): .*CPUs')" -eq 2
	check "QEMU that cannot start: qemu.log kept" grep -q 'CPUs' "$(echo "$T"/qf/*/qemu.log)"
}

test_no_init() {
	local rc=0 out=$T/noinit
	"$RUN" --kernel "$PKG" --sweep "$SWEEP2" --out "$out" --append rdinit=/nonexistent \
		>"$T/noinit.log" 2>&1 || rc=$?
	all_broken "kernel that never reaches init" "$out" "$rc" "did not reach the guest's runner"
	check "its console shows the panic" grep -aq 'Kernel panic' "$out"/*/console.log
}

test_bare_bzimage() {
	local rc=0 out=$T/bare
	"$RUN" --kernel "$K_IMAGE" --sweep "$SWEEP2" --out "$out" >"$T/bare.log" 2>&1 || rc=$?
	all_broken "Debian vmlinuz without its modules" "$out" "$rc" "no results disk"
}

# A kernel directory whose module tree has virtio but no btrfs: the guest
# finds its disks and reports btrfs missing over the results channel.
test_no_btrfs_module() {
	local rc=0 out=$T/nobtrfs dir=$T/kdir mods
	mods=$dir/lib/modules/$K_RELEASE
	mkdir -p "$mods/kernel/drivers"
	cp "$K_IMAGE" "$dir/bzImage"
	cp "$K_MODROOT/lib/modules/$K_RELEASE"/modules.{builtin,builtin.modinfo,order} "$mods/"
	cp -r "$K_MODROOT/lib/modules/$K_RELEASE/kernel/drivers"/{block,virtio} "$mods/kernel/drivers/"
	"$RUN" --kernel "$dir" --sweep "$SWEEP2" --out "$out" >"$T/nobtrfs.log" 2>&1 || rc=$?
	all_broken "module tree without btrfs" "$out" "$rc" "btrfs is not available"
	check "meta.json lists btrfs as missing" \
		jqe "$(echo "$out"/*/meta.json)" '.kernel.modules_missing | index("btrfs")'
}

# A guest that stops after its first case, which FAILs (the reproducers'
# DIOGAP_TEST_CORRUPT=punch hook, passed to the guest's environment on the
# kernel command line): the FAIL stays a FAIL, the rest are BROKEN, the VM
# is ended; --resume then runs only the cases that never ran.
test_hang_run_timeout() {
	local rc=0 out=$T/hang first
	"$RUN" --kernel "$PKG" --sweep "$SWEEP3" --out "$out" --run-timeout 15 \
		--append "DIOGAP_TEST_CORRUPT=punch diogap.stall_after=1" >"$T/hang.log" 2>&1 || rc=$?
	check_eq "hung guest after a FAIL: exit 1 (the FAIL wins over BROKEN)" 1 "$rc"
	first=$(head -n 1 "$out/results.jsonl" | jq -r .verdict)
	check_eq "hung guest: the case before the hang kept its FAIL" FAIL "$first"
	check_eq "hung guest: the 2 cases after it are BROKEN" 2 "$(count "$out" BROKEN)"
	check "hung guest: the reason is the run timeout" \
		test "$(reasons "$out" | grep -c 'run timeout')" -eq 2
	check "hung guest: console.log shows the hook" grep -aq 'stall_after=1' "$out"/*/console.log
	check "hung guest: no VM left" no_vm_left
	rc=0
	"$RUN" --kernel "$PKG" --sweep "$SWEEP3" --resume "$out" >"$T/resume.log" 2>&1 || rc=$?
	check_eq "--resume after the hang: exit 1 (the FAIL is kept)" 1 "$rc"
	check_eq "--resume: the 2 cases that had not run now PASS" 2 "$(count "$out" PASS)"
	check_eq "--resume: ran only those 2 cases" 2 "$(grep -c '^S ' "$out"/*/stream.txt)"
	check_eq "--resume: one result per case" 3 "$(grep -c . "$out/results.jsonl")"
}

# No progress for the longest case timeout + grace: ended as stuck.
test_hang_stall() {
	local rc=0 out=$T/stall f
	f=$(sweep stall 5 'fault = first all')
	DIOGAP_VM_STALL_GRACE=3 "$RUN" --kernel "$PKG" --sweep "$f" --out "$out" \
		--append diogap.stall_after=1 >"$T/stall.log" 2>&1 || rc=$?
	check_eq "stalled guest: exit 2" 2 "$rc"
	check_eq "stalled guest: first case PASS" PASS "$(head -n 1 "$out/results.jsonl" | jq -r .verdict)"
	check "stalled guest: reason says stuck" reasons_match "$out" 'guest stuck: no result for 8 s'
	check "stalled guest: no VM left" no_vm_left
}
reasons_match() { reasons "$1" | grep -q -- "$2"; }

# wait_vm: until a VM of ours runs (max 60 s).
wait_vm() {
	local i
	for ((i = 0; i < 600; i++)); do
		[[ -n $(our_vms) ]] && return 0
		sleep 0.1
	done
	return 1
}

test_signals() {
	local pid rc=0
	# Job control: a background job that does not ignore SIGINT; env restores
	# the default disposition in case we started with it ignored (nohup ... &).
	set -m
	env --default-signal=INT "$RUN" --kernel "$PKG" --sweep "$SWEEP3" --out "$T/int" >"$T/int.log" 2>&1 &
	pid=$!
	set +m
	check "SIGINT: a VM starts" wait_vm
	kill -INT "$pid"
	wait "$pid" || rc=$?
	check_eq "SIGINT ends run-vm with 130" 130 "$rc"
	check "SIGINT: no VM left" no_vm_left
	check "SIGINT: no scratch run dir left" \
		test -z "$(find "$DIOGAP_SCRATCH" -maxdepth 1 -name 'run.*')"
	"$RUN" --kernel "$PKG" --sweep "$SWEEP3" --out "$T/kill" >"$T/kill.log" 2>&1 &
	pid=$!
	wait_vm || true
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	sleep 1
	check "SIGKILL: its VM dies with it" no_vm_left
	check "SIGKILL leaves its scratch dir (precondition)" \
		test -n "$(find "$DIOGAP_SCRATCH" -maxdepth 1 -name 'run.*')"
}

# test_dead_dm: a run killed mid power-cut case leaves its flakey device
# over the scratch disk (diogap-PID-DISK); the next runner must remove it
# (dg-dm cleanup at its start). The guest makes such a leftover
# (diogap.dead_dm=1); one dio-dsync-uring case must still PASS after its
# cut, and the leftover be gone. (Device-mapper devices share their disk,
# so the leftover does not stop the case: without the cleanup the case
# PASSed here and only "gone after the run" failed.)
test_dead_dm() {
	local out=$T/deaddm rc=0 f=$T/deaddm.conf
	printf '%s\n' 'repro = dio-dsync-uring' 'size = 256K' 'chunk = 64K' 'qd = 2' 'engine = dsync' \
		'timeout = 60' 'image_size = 256M' >"$f"
	"$RUN" --kernel "$PKG" --sweep "$f" --out "$out" --append diogap.dead_dm=1 \
		>"$T/deaddm.log" 2>&1 || rc=$?
	check "dead run's dm device: the guest made one over the scratch disk" \
		grep -q 'test hook diogap.dead_dm: made diogap-999999-' "$out"/*/console.log
	check_eq "dead run's dm device: exit 0" 0 "$rc"
	check_eq "dead run's dm device: the power-cut case PASSes (its own device made)" 1 "$(count "$out" PASS)"
	check "dead run's dm device: gone after the run" \
		grep -q 'test hook diogap.dead_dm: diogap-999999-.* is gone after the run' "$out"/*/console.log
}

main() {
	setup
	test_dead_dm
	test_not_a_kernel
	test_signals
	test_no_init # also cleans up after the killed run
	check "the next run removed the killed run's scratch" \
		test -z "$(find "$DIOGAP_SCRATCH" -maxdepth 1 -name 'run.*')"
	test_bare_bzimage
	test_no_btrfs_module
	test_hang_run_timeout
	test_hang_stall
	t_done
}

main "$@"
