#!/usr/bin/env bash
# run-vm on Debian's two cloud kernel packages (6.1 and 6.12, both with the
# fixes) with configs/sweeps/quick.conf, in one run: one boot per kernel,
# 0 FAIL and > 0 PASS each, the run's layout, no VM left behind. And a
# kernel build directory whose btrfs is a module.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"
# shellcheck source=harness/lib/vm-kernel.sh
. "$DIOGAP_ROOT/harness/lib/vm-kernel.sh"

RUN=$DIOGAP_ROOT/harness/run-vm
KERNELS=(linux-image-6.1.0-56-cloud-amd64 linux-image-6.12.117+deb12-cloud-amd64)
RELEASES=(6.1.0-56-cloud-amd64 6.12.117+deb12-cloud-amd64)
# Our own scratch root: concurrent runs of this test cannot see each other.
export DIOGAP_SCRATCH=/var/tmp/diogap-test-run-vm.$$
T=''

setup() {
	vm_test_setup
}

# per_kernel OUT RELEASE: checks on one kernel's directory.
# shellcheck disable=SC2016 # jq programs, not shell
per_kernel() {
	local out=$1 rel=$2 k=$1/$2 n pass fail
	check "$rel: has its own results directory" test -s "$k/results.jsonl"
	n=$(grep -c . "$k/cases.tsv")
	pass=$(jq -s 'map(select(.verdict == "PASS")) | length' "$k/results.jsonl")
	fail=$(jq -s 'map(select(.verdict == "FAIL")) | length' "$k/results.jsonl")
	check "$rel: > 0 PASS ($pass of $n)" test "$pass" -gt 0
	check_eq "$rel: 0 FAIL" 0 "$fail"
	check_eq "$rel: 0 BROKEN" 0 "$(jq -s 'map(select(.verdict == "BROKEN")) | length' "$k/results.jsonl")"
	check_eq "$rel: one result per case" "$n" "$(grep -c . "$k/results.jsonl")"
	check "$rel: every result names the kernel that ran it" \
		jqe "$k/results.jsonl" -s --arg r "$rel" 'all(.kernel == $r and .kernel_label == $r)'
	check "$rel: meta.json: release, image hash, qemu command line, sweep hash" \
		jqe "$k/meta.json" --arg r "$rel" '.kernel.release == $r and (.kernel.image_sha256 | length) == 64
		  and (.qemu_cmdline | index("-no-reboot")) and .sweep_hash != null and ."end" == "done"'
	check "$rel: btrfs came as a module and was packed" \
		jqe "$k/meta.json" '.kernel.modules | index("btrfs")'
	check "$rel: console.log kept" test -s "$k/console.log"
	check "$rel: the guest's whole kernel log came back" grep -q 'BTRFS' "$k/guest-dmesg.txt"
	check "$rel: ktap.txt closes with its totals" grep -q "^# Totals: pass:$pass fail:0" "$k/ktap.txt"
}

test_two_kernels() {
	local rc=0 out=$T/run i total
	"$RUN" --kernel "${KERNELS[0]}" --kernel "${KERNELS[1]}" \
		--sweep "$DIOGAP_ROOT/configs/sweeps/quick.conf" --out "$out" >"$T/run.log" 2>&1 || rc=$?
	check_eq "quick sweep on both Debian kernels exits 0" 0 "$rc"
	((rc == 0)) || tail -n 20 "$T/run.log" | sed 's/^/# /'
	for i in 0 1; do
		per_kernel "$out" "${RELEASES[i]}"
	done
	total=$(cat "$out"/*/results.jsonl | grep -c .)
	check_eq "results.jsonl has every kernel's results" "$total" "$(grep -c . "$out/results.jsonl")"
	check "ktap.txt: one subtest per kernel, both ok" \
		grep -Pzq '^KTAP version 1\n1\.\.2\n(?s:.*)\nok 1 6\.1\.0-56-cloud-amd64\n(?s:.*)\nok 2 6\.12\.117' "$out/ktap.txt"
	check "meta.json lists both kernels and the accelerator" \
		jqe "$out/meta.json" '(.kernels | length) == 2 and (.accel == "tcg" or .accel == "kvm")'
	check "summary.md has a row per kernel" test "$(grep -c '^| 6\.' "$out/summary.md")" -eq 2
	check "no VM left" test -z "$(our_vms)"
	check "no scratch run dir left" test -z "$(find "$DIOGAP_SCRATCH" -maxdepth 1 -name 'run.*')"
}

# A kernel build directory with btrfs, virtio_blk =m (a distro config
# built by the user): run-vm installs its modules with the tree's own
# `make modules_install INSTALL_MOD_PATH=...` into its cache, once, and
# packs them. The directory is made from the 6.1 package (its vmlinuz as
# arch/x86/boot/bzImage, its config as .config, and a Makefile whose
# modules_install installs that package's modules, as the kernel's does):
# no kernel build for this test.
test_builddir_modules() {
	local dir=$T/kbuild out=$T/bd rc=0 rel=${RELEASES[0]} cached
	vmk_resolve "${KERNELS[0]}"
	mkdir -p "$dir/arch/x86/boot"
	cp "$K_IMAGE" "$dir/arch/x86/boot/bzImage"
	cp "$K_CONFIG" "$dir/.config"
	printf '%s\n' 'modules_install:' \
		"	mkdir -p \$(INSTALL_MOD_PATH)/lib/modules" \
		"	cp -r $K_MODROOT/lib/modules/$rel \$(INSTALL_MOD_PATH)/lib/modules/" \
		"	echo installed >>$dir/installs" >"$dir/Makefile"
	# this test's image: a cache entry of an earlier run is removed first
	cached=$DIOGAP_CACHE/vm/modtree/$rel-$(sha256sum "$K_IMAGE" | cut -c1-16)
	rm -rf "$cached"
	"$RUN" --kernel "$dir" --sweep "$DIOGAP_ROOT/configs/sweeps/quick.conf" --out "$out" \
		>"$T/bd.log" 2>&1 || rc=$?
	check_eq "build directory with btrfs=m: quick sweep exits 0" 0 "$rc"
	((rc == 0)) || tail -n 20 "$T/bd.log" | sed 's/^/# /'
	check "its modules were installed with the tree's make modules_install" \
		grep -q "installing modules of $dir" "$T/bd.log"
	check "meta.json: a builddir kernel, btrfs and virtio_blk packed as modules" \
		jqe "$out/$rel/meta.json" '.kernel.kind == "builddir"
		  and (.kernel.modules | index("btrfs")) and (.kernel.modules | index("virtio_blk"))'
	check_eq "build directory: 0 FAIL, 0 BROKEN" 0 \
		"$(jq -s 'map(select(.verdict == "FAIL" or .verdict == "BROKEN")) | length' "$out/results.jsonl")"
	rc=0
	"$RUN" --kernel "$dir" --sweep "$DIOGAP_ROOT/configs/sweeps/quick.conf" --out "$out.2" \
		>"$T/bd2.log" 2>&1 || rc=$?
	check_eq "build directory again: exits 0" 0 "$rc"
	check_eq "the second run took the installed modules from the cache" 1 "$(grep -c . "$dir/installs")"
	check "no VM left" no_vm_left
}

main() {
	setup
	test_two_kernels
	test_builddir_modules
	t_done
}

main "$@"
