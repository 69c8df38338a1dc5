#!/usr/bin/env bash
# repro-unstable.sh: the unstable-buffer reproducers (dio-unstable-write,
# dio-unstable-read) on the running kernel, on loop-mounted btrfs: single
# (datasum and nodatasum), DUP on one device, RAID1 over two and RAID10
# over four, nodatasum. The copies checker is shown to catch a difference: one
# mirror's copy of a file is overwritten on the raw loop device, and
# `dio-unstable-write --verify-only FILE` must FAIL copies where
# btrfs-map-logical (btrfs-progs, independent of our code) says copy 2 is.
# Figures for the running kernel are printed as `#` lines. The last line
# is "N passed, N failed".
#
#   harness/tests/repro-unstable.sh [BUILD_DIR]
#
# What is asserted about the kernel: dio-unstable-read FAILs with EIO and
# an intact re-read on any kernel so far (no fix merged); dio-unstable-write
# PASSes on kernels with 968f19c5b1b7 and 7c2830f00c3e (the host's 6.18.44
# has both). DIOGAP_TEST_EXPECT_WRITE=FAIL turns the write expectations
# around for a kernel without them.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"
export DIOGAP_SCRATCH=/var/tmp/diogap-test-unstable
# shellcheck source=harness/lib/scratch.sh
. "$DIOGAP_ROOT/harness/lib/scratch.sh"

BIN=${1:-$DIOGAP_BUILD}
W=
R=
J=
EXPECT_WRITE=${DIOGAP_TEST_EXPECT_WRITE:-PASS}

setup() {
	need_root
	ensure_pkgs btrfs-progs jq
	[[ ${1:-} ]] || make -s -C "$DIOGAP_ROOT" dio-unstable-write dio-unstable-read
	W=$BIN/dio-unstable-write R=$BIN/dio-unstable-read
	[[ -x $W && -x $R ]] || die "no reproducers in $BIN"
	scratch_new
	J=$DG_RUN_DIR/records.json
}

# loopdev NAME SIZE: a loop device over a new image in the run dir.
loopdev() {
	truncate -s "$2" "$DG_RUN_DIR/$1.img"
	losetup --find --show "$DG_RUN_DIR/$1.img"
}

# fs NAME MOUNT_OPTS MKFS_OPTS DEV...: mkfs.btrfs over DEVs, mounted on
# $DG_RUN_DIR/NAME; prints the mount point.
fs() {
	local name=$1 opts=$2 mkfs=$3 mnt=$DG_RUN_DIR/$1
	shift 3
	# shellcheck disable=SC2086 # mkfs options are a list
	mkfs.btrfs -q -f $mkfs "$@" >/dev/null 2>&1 || die "mkfs.btrfs $mkfs $* failed"
	mkdir -p "$mnt"
	mount -t btrfs -o "$opts" "$1" "$mnt" || die "mount $1 -o $opts failed"
	echo "$mnt"
}

# run_repro WANT_EXIT NAME CMD...: CMD's exit code is WANT_EXIT; its JSON
# records go to $J (fresh), its output to $DG_RUN_DIR/out.
run_repro() {
	local want=$1 name=$2 rc=0
	shift 2
	: >"$J"
	"$@" --json "$J" >"$DG_RUN_DIR/out" 2>&1 || rc=$?
	if ((rc == want)); then
		ok "$name: exit $rc"
	else
		not_ok "$name: exit $rc, expected $want" "$(tail -n 6 "$DG_RUN_DIR/out" | tr '\n' '|')"
	fi
}

# records [JQ_OPTIONS] PROGRAM: jq -s PROGRAM on the records is true.
# On false, the records (cut short) go to stderr.
records() {
	jq -se "$@" "$J" >/dev/null && return 0
	jq -c 'del(.rerun, .residency, .copies.map)' "$J" | cut -c1-900 | sed 's/^/#   /' >&2
	return 1
}

test_headers() {
	local p d
	for p in "$W" "$R"; do
		d=$("$p" --describe)
		# shellcheck disable=SC2016 # the inner script expands $1
		check "${p##*/} --describe has Fixes:, fstests:, Params: and May-hang: no" \
			bash -c 'grep -q "^Fixes: ." <<<"$1" && grep -q "^fstests: ." <<<"$1" &&
				grep -q "^Params: size chunk offset$" <<<"$1" && grep -q "^May-hang: no$" <<<"$1"' _ "$d"
	done
}

# The read side: a false checksum failure on every kernel without a fix.
test_read_datasum() {
	local mnt=$1
	run_repro 1 "dio-unstable-read 16M/1M on datasum FAILs" "$R" --size 16M --chunk 1M --iterations 2 "$mnt"
	check "read: both records FAIL eio-read, re-read intact, direct reads" \
		records 'length == 2 and all(.verdict == "FAIL" and .symptom == "eio-read" and
			.reread == "intact" and .eio_reads > 0 and .direct == true and
			(.diag | test("false checksum failures")))'
	check "read: KTAP 'not ok 2' line" grep -q '^not ok 2 dio-unstable-read\.' "$DG_RUN_DIR/out"
	check "read: the rerun line" grep -q '^# rerun: .*dio-unstable-read .*--seed [0-9]' "$DG_RUN_DIR/out"
	echo "# read side on $(uname -r): $(jq -sr 'map("\(.eio_reads)/\(.reads) EIO (first at read \(.first_eio_read))") | join(", ")' "$J")"
}

test_write_datasum() {
	local mnt=$1 code=0
	[[ $EXPECT_WRITE == FAIL ]] && code=1
	run_repro "$code" "dio-unstable-write 8M/1M x3 on datasum: $EXPECT_WRITE" \
		"$W" --size 8M --chunk 1M --iterations 3 "$mnt"
	if [[ $EXPECT_WRITE == FAIL ]]; then
		check "write: a record FAILs eio-read" records 'any(.symptom == "eio-read")'
	else
		check "write: 3 PASS records, no symptom, nothing bad" \
			records 'length == 3 and all(.verdict == "PASS" and .symptom == null and
				.eio_reads == 0 and .bad_sectors == 0 and .datasum_inode == "yes")'
	fi
	echo "# write side, datasum: direct = $(jq -sr 'map(.direct | tostring) | join(" ")' "$J")"
	DIOGAP_TEST_UNSTABLE=disk run_repro 1 "write: test hook disk (a byte changed on the device) -> FAIL" \
		"$W" --size 1M --chunk 256K --offset 64K --iterations 2 "$mnt"
	check "write: EIO on read-back of exactly the damaged unit, symptom eio-read" \
		records 'length == 2 and all(.verdict == "FAIL" and .symptom == "eio-read" and
			.test_unstable == "disk" and .first_eio == 65536 and .eio_reads == 1 and
			(.diag | test("csum failure")))'
	DIOGAP_TEST_CORRUPT=punch run_repro 1 "write: test hook punch -> FAIL data" \
		"$W" --size 1M --chunk 256K "$mnt"
	check "write: punched unit is a zero gap (hole), symptom data" \
		records '.[0].symptom == "data" and .[0].gaps[0][0] == 0 and .[0].gap_extents[0][2] == "hole"'
}

test_nodatasum_single() {
	local mnt=$1
	run_repro 4 "dio-unstable-write on nodatasum single: SKIP" "$W" --size 1M "$mnt"
	check "write SKIP: precondition not met, inode NODATASUM" \
		records '.[0].verdict == "SKIP" and .[0].precondition.met == false and
			(.[0].diag | startswith("precondition not met:")) and .[0].datasum_inode == "no"'
	run_repro 4 "dio-unstable-read on nodatasum: SKIP" "$R" --size 1M "$mnt"
	check "read SKIP: precondition not met" \
		records '.[0].verdict == "SKIP" and (.[0].diag | startswith("precondition not met:"))'
	local rc=0
	"$W" --copies --size 1M "$mnt" >/dev/null 2>&1 || rc=$?
	check_eq "--copies on a single profile: exit 2" 2 "$rc"
	rc=0
	"$W" --verify-only "$mnt" --size 1M >/dev/null 2>&1 || rc=$?
	check_eq "--verify-only with another option: exit 2" 2 "$rc"
}

# write_copies MNT PROFILE: the writes on a profile with two copies PASS
# (or FAIL copies), every copy compared.
write_copies() {
	local mnt=$1 profile=$2 code=0
	[[ $EXPECT_WRITE == FAIL ]] && code=1
	run_repro "$code" "dio-unstable-write 8M/1M x3 on $profile nodatasum: $EXPECT_WRITE" \
		"$W" --size 8M --chunk 1M --iterations 3 "$mnt"
	# shellcheck disable=SC2016 # $p is jq's
	check "$profile: every record compared 8 MiB of 2 copies" \
		records --arg p "$profile" 'length == 3 and all(.copies.checked and .copies.profile == $p and
			.copies.n == 2 and .copies.bytes == 8388608 and .datasum_inode == "no")'
	if [[ $EXPECT_WRITE == FAIL ]]; then
		check "$profile: a record FAILs copies" records 'any(.symptom == "copies")'
	else
		check "$profile: copies equal in every record" records 'all(.copies.differ_bytes == 0)'
	fi
	echo "# write side, $profile nodatasum: differ_bytes = $(jq -sr 'map(.copies.differ_bytes | tostring) | join(" ")' "$J"), direct = $(jq -sr 'map(.direct | tostring) | join(" ")' "$J")"
	run_repro "$code" "$profile: --copies is accepted where there are copies" "$W" --copies --size 1M "$mnt"
	# the read-back may read copy 2 (btrfs picks a mirror per reader): then
	# the content check sees the damage first (symptom data)
	DIOGAP_TEST_UNSTABLE=disk run_repro 1 "$profile: test hook disk (copy 2 changed) -> FAIL" \
		"$W" --size 1M "$mnt"
	check "$profile: copies differ in one byte at file offset 100 (symptom copies or data)" \
		records '.[0].verdict == "FAIL" and (.[0].symptom == "copies" or .[0].symptom == "data") and
			.[0].copies.first.file_offset == 100 and .[0].copies.differ_bytes == 1 and
			.[0].copies.first.copy == 2'
}

# damage_copy MNT PROFILE DEV: a file written with dd; its copies equal;
# copy 2 of the 4 KiB block at file offset OFF (in the fourth 64 KiB
# stripe: raid10 maps it to other devices than the first) overwritten on
# the raw device where btrfs-map-logical says it is; the checker must name
# that spot.
damage_copy() {
	local mnt=$1 profile=$2 dev=$3 f=$1/victim off=204800 lg map dev2 ph2
	dd if=/dev/urandom of="$f" bs=1M count=2 oflag=direct status=none
	sync
	run_repro 0 "$profile: --verify-only on an intact file PASSes" "$W" --verify-only "$f"
	check "$profile: intact file: 2 MiB compared, nothing differs" \
		records '.[0].verdict == "PASS" and .[0].copies.bytes == 2097152 and .[0].copies.differ_bytes == 0'
	lg=$(jq -r '.copies.map[] | select(.file_offset == 0) | .logical' "$J")
	map=$(btrfs-map-logical -l $((lg + off)) -b 4096 "$dev" 2>/dev/null | grep '^mirror 2 ') || map=
	ph2=$(sed -nE 's/^mirror 2 logical [0-9]+ physical ([0-9]+) device .*/\1/p' <<<"$map")
	dev2=$(sed -nE 's/.* device (.*)$/\1/p' <<<"$map")
	if [[ -z $lg || -z $ph2 || ! -b $dev2 ]]; then
		not_ok "$profile: copy 2 of logical $lg + $off from btrfs-map-logical" "$map"
		return
	fi
	# nodatasum: the mount's own reads may use either copy, it does not
	# matter; the checker reads the disks
	dd if=/dev/zero of="$dev2" bs=4096 count=1 seek=$((ph2 / 4096)) oflag=direct conv=notrunc status=none
	run_repro 1 "$profile: --verify-only after damaging copy 2 FAILs" "$W" --verify-only "$f"
	# shellcheck disable=SC2016 # $lg, $ph, $off are jq's
	check "$profile: symptom copies at file offset $off, logical and copy 2's physical as btrfs-map-logical" \
		records --argjson lg $((lg + off)) --argjson ph "$ph2" --argjson off $off \
		'.[0].symptom == "copies" and .[0].copies.first.file_offset == $off and
			.[0].copies.first.logical == $lg and .[0].copies.first.physical[1] == $ph and
			.[0].copies.differ_bytes > 0 and .[0].copies.differ_bytes <= 4096 and
			(.[0].diag | startswith("mirror copies differ"))'
	rm -f "$f"
}

main() {
	local single d1 d2 d3 mnt
	setup "$@"
	test_headers
	single=$(loopdev single 1G)
	mnt=$(fs single defaults "" "$single")
	test_read_datasum "$mnt"
	test_write_datasum "$mnt"
	umount "$mnt"
	mount -t btrfs -o nodatasum "$single" "$mnt"
	test_nodatasum_single "$mnt"
	umount "$mnt"

	d1=$(loopdev dup 1G)
	mnt=$(fs dup nodatasum "-d dup -m dup" "$d1")
	write_copies "$mnt" dup
	damage_copy "$mnt" dup "$d1"
	umount "$mnt"

	d2=$(loopdev raid1a 1G)
	d3=$(loopdev raid1b 1G)
	mnt=$(fs raid1 nodatasum "-d raid1 -m raid1" "$d2" "$d3")
	write_copies "$mnt" raid1
	damage_copy "$mnt" raid1 "$d2"
	umount "$mnt"

	mnt=$(fs raid10 nodatasum "-d raid10 -m raid1" "$(loopdev r10a 1G)" "$(loopdev r10b 1G)" \
		"$(loopdev r10c 1G)" "$(loopdev r10d 1G)")
	d1=$(findmnt -n -o SOURCE --target "$mnt")
	write_copies "$mnt" raid10
	damage_copy "$mnt" raid10 "$d1"
	umount "$mnt"
	t_done
}

main "$@"
