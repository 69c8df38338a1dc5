#!/usr/bin/env bash
# Filesystems per case: a sweep's `profile` (single, dup, raid1 on two
# disks, raid10 on four) makes one btrfs per profile across its own scratch
# disks; every case runs on its profile's filesystem. run-local on the
# running kernel; the VM path is the same runner (run-vm suites).
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"

export DIOGAP_SCRATCH=/var/tmp/diogap-test-profiles
T=

setup() {
	need_root
	ensure_pkgs jq btrfs-progs
	T=$(mktemp -d /var/tmp/diogap-t.XXXXXX)
	on_exit rm -rf "$T"
	on_exit rm -rf "$DIOGAP_SCRATCH"
	make -s -C "$DIOGAP_ROOT" reproducers
}

test_profiles() {
	local rc=0 out=$T/run
	printf '%s\n' 'repro = dio-partial-write' 'size = 64K' 'fault = first' 'buffer = memfd' \
		'image_size = 256M' 'timeout = 30' 'profile = single raid1 dup raid10' \
		'mount = nodatasum' >"$T/p.conf"
	"$DIOGAP_ROOT/harness/run-local" --sweep "$T/p.conf" --out "$out" >"$T/run.log" 2>&1 || rc=$?
	check_eq "four profiles on the running kernel: exit 0" 0 "$rc"
	check_eq "one case per profile, each on its profile" "single raid1 dup raid10" \
		"$(jq -r .profile "$out/results.jsonl" | xargs)"
	check "single PASSes" jqe "$out/results.jsonl" -s '.[0].verdict == "PASS"'
	# since 7c2830f00c3e (v7.0, 6.12.75) btrfs writes buffered on profiles
	# with copies: those cases SKIP there, naming it, and PASS before it
	check "the others PASS, or SKIP because the write went buffered" jqe "$out/results.jsonl" -s \
		'length == 4 and all(.[1:][]; .verdict == "PASS" or (.verdict == "SKIP" and (.reason | test("^write went buffered"))))'
	check "the case id names the profile" jqe "$out/results.jsonl" -s \
		'map(.case) == ["dio-partial-write.64K.first.memfd.single.nodatasum",
		"dio-partial-write.64K.first.memfd.raid1.nodatasum", "dio-partial-write.64K.first.memfd.dup.nodatasum",
		"dio-partial-write.64K.first.memfd.raid10.nodatasum"]'
	check "meta.json: raid1 on disks 2,3, raid10 on 5-8, with their mkfs options" jqe "$out/meta.json" \
		'.filesystems == [{profile: "single", disks: [1], mkfs: "-d single -m single "},
		{profile: "raid1", disks: [2, 3], mkfs: "-d raid1 -m raid1 "},
		{profile: "dup", disks: [4], mkfs: "-d dup -m dup "},
		{profile: "raid10", disks: [5, 6, 7, 8], mkfs: "-d raid10 -m raid10 "}]'
	check "no mount or loop device left" no_leftovers "$DIOGAP_SCRATCH"
}

# nocow = 0 1: the same case on a plain and a `chattr +C` file; the NOCOW
# file has no checksums (the record says so) and its write stays direct.
test_nocow() {
	local rc=0 out=$T/nocow
	printf '%s\n' 'repro = dio-partial-write' 'size = 64K' 'fault = first' 'nocow = 0 1' \
		'image_size = 256M' 'timeout = 30' >"$T/nc.conf"
	"$DIOGAP_ROOT/harness/run-local" --sweep "$T/nc.conf" --out "$out" >"$T/nc.log" 2>&1 || rc=$?
	check "nocow = 0 1: two cases, the second with --nocow in its id and args" jqe "$out/results.jsonl" -s \
		'length == 2 and (.[1].case | test("\\.nocow\\.")) and (.[1].args | test("--nocow"))
		and (.[0].args | test("--nocow") | not)'
	check "the NOCOW file has no checksums, and its write went direct" jqe "$out/results.jsonl" -s \
		'.[1].runs[0].datasum == "no" and .[1].runs[0].direct == true and .[1].verdict == "PASS"'
}

test_refusals() {
	local rc=0
	printf '%s\n' 'repro = dio-partial-write' 'profile = single raid5' >"$T/bad.conf"
	"$DIOGAP_ROOT/harness/run-local" --sweep "$T/bad.conf" --out "$T/bad" >"$T/bad.log" 2>&1 || rc=$?
	check_eq "an unknown profile: exit 2" 2 "$rc"
	check "  naming the line" grep -q "bad.conf:2: profile: 'raid5' is not one of" "$T/bad.log"
	rc=0
	printf '%s\n' 'repro = dio-partial-write' 'profile = raid1' >"$T/lava.conf"
	"$DIOGAP_ROOT/harness/export-lava" --kernel /nonexistent --sweep "$T/lava.conf" --out "$T/lava" \
		>"$T/lava.log" 2>&1 || rc=$?
	check_eq "export-lava refuses a sweep of two disks: exit 2" 2 "$rc"
	check "  saying why" grep -q "need 2 scratch disks; a LAVA job here carries one" "$T/lava.log"
}

main() {
	setup
	test_profiles
	test_nocow
	test_refusals
	t_done
}

main "$@"
