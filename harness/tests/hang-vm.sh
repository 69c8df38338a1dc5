#!/usr/bin/env bash
# The hang path end to end: the quick sweep on the kernel built with
# configs/patches/6.1/dio-fault-deadlock.patch, where the self-mmap write
# deadlocks in the kernel. The deadlock must come back as FAIL (hang) with
# the stuck task's stack, every case before it must be recorded, and the VM
# must be gone when run-vm returns.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"

SWEEP=$DIOGAP_ROOT/configs/sweeps/quick.conf
T=

deadlock_kernel() {
	"$DIOGAP_ROOT/harness/build-kernel" --source linux-source-6.1 \
		--config "$DIOGAP_ROOT/configs/kernel/minimal-btrfs.config" \
		--patch "$DIOGAP_ROOT/configs/patches/6.1/dio-fault-deadlock.patch"
}

main() {
	need_root
	local bz rc=0 out hang_ids n_cases n_before
	T=$(mktemp -d /var/tmp/diogap-hang.XXXXXX)
	on_exit rm -rf "$T"
	bz=$(deadlock_kernel) || die "could not build the deadlock kernel"
	out=$T/run
	"$DIOGAP_ROOT/harness/run-vm" --kernel "$bz" --label dio-fault-deadlock \
		--sweep "$SWEEP" --out "$out" >"$T/run.log" 2>&1 || rc=$?
	check_eq "run-vm on the deadlock kernel exits 1 (FAIL)" 1 "$rc"
	check "no QEMU of this run is left" \
		test -z "$(pgrep -f -- "$out" || true)"
	n_cases=$(grep -c . "$out/dio-fault-deadlock/cases.tsv")
	check_eq "every case is in results.jsonl" "$n_cases" "$(grep -c . "$out/results.jsonl")"
	hang_ids=$(jq -r 'select(.repro == "dio-self-mmap-write") | .case' "$out/results.jsonl")
	check "the sweep has a self-mmap case" test -n "$hang_ids"
	check "the self-mmap write is FAIL with a hang" \
		jq -se 'map(select(.repro == "dio-self-mmap-write"))
			| length > 0 and all(.verdict == "FAIL" and (.reason | test("hang")))' "$out/results.jsonl"
	check "the results carry the stuck task's kernel stack" \
		jq -se 'map(select(.repro == "dio-self-mmap-write") | .runs[0].hang.tasks[0].stack | length)
			| all(. > 0)' "$out/results.jsonl"
	check "the stack shows the fault inside the O_DIRECT write" \
		jq -se 'map(select(.repro == "dio-self-mmap-write") | .runs[0].hang.tasks[].stack[]
			| select(test("filemap_fault|btrfs_dio_write"))) | length > 0' "$out/results.jsonl"
	n_before=$(jq -s 'map(select(.repro != "dio-self-mmap-write" and .verdict != "BROKEN")) | length' \
		"$out/results.jsonl")
	check_eq "every case before the hang has its verdict (none BROKEN)" \
		"$(jq -s 'map(select(.repro != "dio-self-mmap-write")) | length' "$out/results.jsonl")" "$n_before"
	check "the hang runs last in its boot" \
		test "$(tail -n 1 "$out/dio-fault-deadlock/cases.tsv" | cut -f2)" = dio-self-mmap-write
	t_done
}

main "$@"
