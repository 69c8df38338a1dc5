#!/usr/bin/env bash
# run-vm --arch arm64 (QEMU's virt machine under TCG on this x86_64 host):
# configs/sweeps/quick.conf in one run on two arm64 kernels, one boot each:
# Debian's linux-image-6.1.0-56-arm64-unsigned (4K pages, btrfs and virtio
# as modules) and the minimal 6.1 kernel cross-built with 64K pages
# (harness/build-kernel --arch arm64 --page-size 64K, cached). 0 FAIL,
# 0 BROKEN, > 0 PASS each; arch and the guest's page size (4096, 65536) in
# meta.json and in every record; no VM left behind. And the cheap refusals:
# an arm64 Image without --arch arm64, something else with it, page sizes
# build-kernel cannot build.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"

RUN=$DIOGAP_ROOT/harness/run-vm
DEBIAN=linux-image-6.1.0-56-arm64-unsigned
LABELS=(debian-6.1-arm64 minimal-6.1-arm64-64k)
PAGES=(4096 65536)
export DIOGAP_SCRATCH=/var/tmp/diogap-test-run-vm-arm64.$$
T='' IMAGE64=''

setup() {
	vm_test_setup
	IMAGE64=$("$DIOGAP_ROOT/harness/build-kernel" --arch arm64 --page-size 64K 2>"$T/build.log") || {
		tail -n 20 "$T/build.log" | sed 's/^/# /'
		not_ok "the minimal arm64 64K kernel builds" "see the lines above"
		t_done
		exit 1
	}
	ok "the minimal arm64 64K kernel builds (or comes from the cache)"
}

# per_kernel OUT LABEL PAGE: checks on one kernel's directory.
# shellcheck disable=SC2016 # jq programs, not shell
per_kernel() {
	local k=$1/$2 page=$3 n pass
	n=$(grep -c . "$k/cases.tsv")
	pass=$(jq -s 'map(select(.verdict == "PASS")) | length' "$k/results.jsonl")
	check "$2: > 0 PASS ($pass of $n)" test "$pass" -gt 0
	check_eq "$2: 0 FAIL" 0 "$(jq -s 'map(select(.verdict == "FAIL")) | length' "$k/results.jsonl")"
	check_eq "$2: 0 BROKEN" 0 "$(jq -s 'map(select(.verdict == "BROKEN")) | length' "$k/results.jsonl")"
	check_eq "$2: one result per case" "$n" "$(grep -c . "$k/results.jsonl")"
	check_eq "$2: meta.json: arch arm64, the guest's page size" "arm64 $page" \
		"$(jq -r '"\(.arch) \(.page_size)"' "$k/meta.json")"
	check "$2: every record says arm64 and page size $page" \
		jqe "$k/results.jsonl" -s --argjson p "$page" 'all(.arch == "arm64" and .page_size == $p)'
	check "$2: the Image header's page size agrees" \
		jqe "$k/meta.json" --argjson p "$page" '.kernel.image_page_size == $p'
	check "$2: booted on virt with the PL011 console" \
		jqe "$k/meta.json" '(.qemu_cmdline | index("virt")) and (.qemu_cmdline | map(select(test("console=ttyAMA0"))) | length) == 1
		  and ."end" == "done"'
	printf '# %s: boot %s ms, first verdict %s ms, whole VM %s ms\n' "$2" \
		"$(jq -r .boot_ms "$k/meta.json")" "$(jq -r .first_verdict_ms "$k/meta.json")" \
		"$(jq -r .wall_ms "$k/meta.json")"
}

# shellcheck disable=SC2016 # jq programs, not shell
test_quick_sweep() {
	local rc=0 out=$T/run i t0=$SECONDS
	"$RUN" --arch arm64 --kernel "$DEBIAN" --label "${LABELS[0]}" \
		--kernel "$IMAGE64" --label "${LABELS[1]}" \
		--sweep "$DIOGAP_ROOT/configs/sweeps/quick.conf" --out "$out" >"$T/run.log" 2>&1 || rc=$?
	check_eq "quick sweep on both arm64 kernels exits 0" 0 "$rc"
	((rc == 0)) || tail -n 20 "$T/run.log" | sed 's/^/# /'
	printf '# run-vm --arch arm64, two kernels: %d s\n' "$((SECONDS - t0))"
	for i in 0 1; do
		per_kernel "$out" "${LABELS[i]}" "${PAGES[i]}"
	done
	check "$DEBIAN: btrfs and its deps loaded as modules (xor_neon, crc32c too)" \
		jqe "$out/${LABELS[0]}/meta.json" '.kernel.modules as $m
		  | ["btrfs", "virtio_blk", "xor_neon", "xor"] | all(. as $x | $m | index($x))'
	check "the run's meta.json says arm64, TCG" jqe "$out/meta.json" '.arch == "arm64" and .accel == "tcg"'
	check "the run's results.jsonl has both kernels' records, tagged" \
		jqe "$out/results.jsonl" -s '(map(.page_size) | unique) == [4096, 65536] and all(.arch == "arm64")'
	check "no VM left" no_vm_left
}

test_refusals() {
	local rc=0
	"$RUN" --kernel "$IMAGE64" --sweep "$DIOGAP_ROOT/configs/sweeps/quick.conf" --out "$T/x" \
		>"$T/x.log" 2>&1 || rc=$?
	check_eq "an arm64 Image without --arch arm64: exit 2" 2 "$rc"
	check "... saying to use --arch arm64" grep -q 'boot it with --arch arm64' "$T/x.log"
	rc=0
	"$RUN" --arch arm64 --kernel /bin/busybox --out "$T/y" >"$T/y.log" 2>&1 || rc=$?
	check_eq "--arch arm64 with something not an Image: exit 2" 2 "$rc"
	check "... naming the arm64 magic" grep -q 'not a Linux arm64 kernel Image' "$T/y.log"
	rc=0
	"$RUN" --arch riscv64 --kernel "$IMAGE64" --out "$T/z" >"$T/z.log" 2>&1 || rc=$?
	check_eq "--arch riscv64: exit 2" 2 "$rc"
	rc=0
	"$DIOGAP_ROOT/harness/build-kernel" --page-size 64K >"$T/b1.log" 2>&1 || rc=$?
	check_eq "build-kernel --page-size 64K for x86_64: exit 2" 2 "$rc"
	rc=0
	"$DIOGAP_ROOT/harness/build-kernel" --arch arm64 --page-size 8K >"$T/b2.log" 2>&1 || rc=$?
	check_eq "build-kernel --arch arm64 --page-size 8K: exit 2" 2 "$rc"
}

main() {
	setup
	test_quick_sweep
	test_refusals
	t_done
}

main "$@"
