#!/usr/bin/env bash
# repro-local.sh: the reproducers on the running kernel, which has the fixes,
# so every data case must PASS. On a loop-mounted btrfs (default mount and
# nodatasum, which keeps O_DIRECT writes direct on kernels with
# 968f19c5b1b7), every reproducer x fault pattern x size 4K..16M; tmpfs and
# ext4 with --any-fs as controls; every bad input with its exact exit code
# (2, or 4 for SKIP). The last line is "N passed, N failed".
#
# Verdicts that cannot lie: on this kernel (968f19c5b1b7) the default,
# checksummed mount turns the O_DIRECT writes buffered, so there every data
# case must be SKIP "write went buffered" (never counted as a pass), and
# PASS only on nodatasum / --nocow. Preconditions (the fault shape the
# pattern needs), EIO (FAIL eio-read), sticky FAIL, the datasum label, no
# madvise/fadvise (build/enosys) and untouched anon pages are checked too.
#
#   harness/tests/repro-local.sh [BUILD_DIR]
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/lib/scratch.sh
. "$DIOGAP_ROOT/harness/lib/scratch.sh"
# shellcheck source=harness/lib/scratch-fs.sh
. "$DIOGAP_ROOT/harness/lib/scratch-fs.sh"

BIN=
JSON=
PAGE=$(getconf PAGESIZE)
n_pass=0
n_fail=0
n_case=0
n_retry=0
# what a data case must say on the mount under test: pass (nodatasum) or
# buffered (SKIP "write went buffered", the default mount on this kernel)
MODE=pass

SIZES="4K 16K 64K 256K 1M 4M 16M"

ok() {
	n_pass=$((n_pass + 1)) n_case=$((n_case + 1))
	echo "ok $n_case $*"
}

not_ok() {
	n_fail=$((n_fail + 1)) n_case=$((n_case + 1))
	echo "not ok $n_case $*"
}

# bytes_of SIZE: SIZE (K/M suffix) in bytes.
bytes_of() {
	local s=$1
	case "$s" in
	*K) echo $((${s%K} * 1024)) ;;
	*M) echo $((${s%M} * 1048576)) ;;
	*) echo "$s" ;;
	esac
}

# pages_of SIZE: the number of pages (the real page size) in SIZE, at least 1.
pages_of() {
	local n
	n=$((($(bytes_of "$1") + PAGE - 1) / PAGE))
	echo $((n > 0 ? n : 1))
}

# patterns SIZE: every fault pattern, sized to fit SIZE.
patterns() {
	local np
	np=$(pages_of "$1")
	echo "first none all stride:3 random:42:30 pages:0,$((np / 2))-$((np - 1))"
}

# retry_if_buffered NAME ARGS...: after a run of ARGS that left its exit
# code and output in the caller's rc and out and its records in $JSON, a
# SKIP "write went buffered" runs ARGS once more (rc, out and $JSON anew):
# nr_dirtied/nr_written noise (other writers' writeback) can only make a
# direct write look buffered.
retry_if_buffered() {
	local name=$1
	shift
	((rc == 0 || rc == DG_SKIP)) || return 0
	jq -se 'any(.verdict == "SKIP" and (.diag | startswith("write went buffered (")))' \
		"$JSON" >/dev/null || return 0
	n_retry=$((n_retry + 1))
	echo "# $name: retried once: $(grep -m1 '# SKIP' <<<"$out" | sed 's/.*(\(.*\))$/\1/')"
	rc=0
	: >"$JSON"
	out=$("$@" --json "$JSON" 2>&1) || rc=$?
}

# expect_pass NAME ARGS...: the reproducer exits 0, says "ok" in KTAP, and
# its JSON record says PASS with the sizes equal, the residency truth, the
# write direct and the precondition met. With MODE=buffered (a checksummed
# mount on a kernel with 968f19c5b1b7) it must instead SKIP every iteration
# with "write went buffered" and direct false: expect_buffered.
expect_pass() {
	if [[ $MODE == buffered ]]; then
		expect_buffered "$@"
		return
	fi
	local name=$1 rc=0 out rec
	shift
	: >"$JSON"
	out=$("$@" --json "$JSON" 2>&1) || rc=$?
	if ((rc == DG_SKIP)) && jq -se 'all(.verdict != "FAIL" and .verdict != "BROKEN") and
		any(.verdict == "SKIP" and (.diag | startswith("write went buffered (")) and
			(.seen | map(.[0]) | index(0)) == null)' "$JSON" >/dev/null &&
		! jq -se 'any(.verdict == "SKIP" and (.seen | map(.[0]) | index(0)) != null)' "$JSON" >/dev/null; then
		# measured on 6.18: a write whose first page is not resident
		# submits nothing direct; btrfs faults the buffer in and finishes
		# it buffered (+N written back). Nothing direct, nothing to lose:
		# SKIP is the truthful answer, and expected
		ok "$name (SKIP: first page not resident, the write went buffered)"
		return
	fi
	retry_if_buffered "$name" "$@"
	if ((rc != 0)); then
		not_ok "$name # exit $rc"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 12
		return
	fi
	rec=$(tail -n 1 "$JSON")
	if ! jq -e '.verdict == "PASS" and .size_seen == .size_expected and
		(.gaps | length) == 0 and .residency_source != null and (has("first_bad") | not) and
		.symptom == null and .direct == true and .precondition.met == true and
		.seen == .residency.ranges and
		(.rerun | test("--seed [0-9]+"))' >/dev/null <<<"$rec"; then
		not_ok "$name # JSON record disagrees: $rec"
		return
	fi
	if ! grep -q '^# Totals: pass:[1-9][0-9]* fail:0 xfail:0 xpass:0 skip:0 error:0$' <<<"$out"; then
		not_ok "$name # KTAP totals line missing or wrong"
		return
	fi
	ok "$name"
}

# expect_buffered NAME ARGS...: exit 4 (SKIP), every record SKIP with
# "write went buffered (...)" and direct false, the raw deltas recorded.
expect_buffered() {
	local name=$1 rc=0 out
	shift
	: >"$JSON"
	out=$("$@" --json "$JSON" 2>&1) || rc=$?
	if ((rc != DG_SKIP)); then
		not_ok "$name # exit $rc, expected 4 (SKIP: write went buffered)"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 8
	elif ! jq -se 'length >= 1 and all(.verdict == "SKIP" and .direct == false and
		(.diag | test("^write went buffered \\([0-9]+ pages dirtied, [0-9]+ written back for [0-9]+ written\\): btrfs does so for checksummed files since 968f19c5b1b7")) and
		.dirtied_pages >= .dirtied_written and .writeback_pages * 2 >= .dirtied_written and
		.symptom == null and .datasum == "yes")' "$JSON" >/dev/null; then
		not_ok "$name # records disagree: $(tr '\n' '|' <"$JSON" | cut -c1-600)"
	elif ! grep -q '^# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:[1-9][0-9]* error:0$' <<<"$out"; then
		not_ok "$name # KTAP totals: $(grep Totals <<<"$out")"
	else
		ok "$name (SKIP: write went buffered)"
	fi
}

# expect_exit CODE NAME WORD ARGS...: exit CODE and (for 2) a one-line
# message on stderr that contains WORD.
expect_exit() {
	local want=$1 name=$2 word=$3 rc=0 err lines
	shift 3
	err=$("$@" 2>&1 >/dev/null) || rc=$?
	lines=$(grep -c . <<<"$err" || true)
	if ((rc != want)); then
		not_ok "$name # exit $rc, expected $want: $err"
	elif ((want == DG_BROKEN)) && ((lines != 1)); then
		not_ok "$name # expected one line on stderr, got $lines: $err"
	elif [[ -n $word && $err != *"$word"* ]]; then
		not_ok "$name # message lacks '$word': $err"
	else
		ok "$name"
	fi
}

# expect_enospc REPRO MNT: a write that hits ENOSPC is BROKEN (exit 2,
# KTAP "not ok ... # ERROR" with the reason), never FAIL.
expect_enospc() {
	local r=$1 mnt=$2 rc=0 out
	out=$("$r" --any-fs --size 8M "$mnt" 2>&1) || rc=$?
	if ((rc == DG_BROKEN)) && grep -q '^not ok 1 .* # ERROR$' <<<"$out" &&
		grep -q '^# BROKEN: .*No space left on device: the scratch filesystem is full' <<<"$out"; then
		ok "ENOSPC is BROKEN, never FAIL (${r##*/})"
	else
		not_ok "ENOSPC (${r##*/}): exit $rc: $(tr '\n' '|' <<<"$out")"
	fi
}

# fail_path MNT: the FAIL path of the real binaries. The running kernel has
# the fixes, so the test hook DIOGAP_TEST_CORRUPT makes the damage a buggy
# kernel would leave (holes punched in the predicted ranges, or a file one
# unit too long) between the writes and the read-back.
fail_path() {
	local mnt=$1 r=$BIN/dio-partial-write a=$BIN/dio-append-write rc out line kept
	rc=0
	: >"$JSON"
	out=$(DIOGAP_TEST_CORRUPT=punch "$r" --size 1M --chunk 256K --iterations 2 --keep \
		--json "$JSON" "$mnt") || rc=$?
	if ((rc == DG_FAIL)) && grep -q '^not ok 2 dio-partial-write\.' <<<"$out" &&
		grep -q '^# rerun: DIOGAP_TEST_CORRUPT=punch .*--seed [0-9]' <<<"$out" &&
		grep -q '^# gaps match the prediction$' <<<"$out" &&
		grep -q '^# Totals: pass:0 fail:2 ' <<<"$out" &&
		jq -se 'length == 2 and all(.verdict == "FAIL" and .predicted_match == true and
			(.predicted | length) == 4 and
			([.gaps[] | [.[0], .[1]]] == .predicted) and
			all(.gap_extents[]; .[2] == "hole") and
			.first_bad.offset == .gaps[0][0] and .first_bad.class == "zero" and
			.first_bad.got == ("0" * 1024) and (.first_bad.want | length) == 1024 and
			(.first_bad.want | startswith("64676f6964676170")))' "$JSON" >/dev/null; then
		ok "FAIL path: punched predicted ranges -> exit 1, gaps == predicted, holes, first_bad bytes"
	else
		not_ok "FAIL path (punch): exit $rc: $(tr '\n' '|' <<<"$out")"
	fi
	kept=$(sed -n 's/^# kept the target file: //p' <<<"$out")
	if [[ -n $kept && -f $kept ]]; then
		ok "--keep keeps the target file of a FAIL"
		rm -f "$kept"
	else
		not_ok "--keep: no kept file ($kept)"
	fi
	line=$(jq -rs '.[0].rerun' "$JSON")
	rc=0
	# shellcheck disable=SC2086 # the rerun line is a command line: split on purpose
	env $line >/dev/null || rc=$?
	if ((rc == DG_FAIL)) && [[ -z $(find "$mnt" -name 'diogap-*' -print -quit) ]]; then
		ok "the rerun line reruns the FAIL (exit 1), file removed without --keep"
	else
		not_ok "rerun of a FAIL: exit $rc"
	fi
	rc=0
	: >"$JSON"
	DIOGAP_TEST_CORRUPT=stale "$r" --size 256K --chunk 64K --iterations 2 --json "$JSON" \
		"$mnt" >/dev/null || rc=$?
	if ((rc == DG_FAIL)) && jq --arg first "$([[ $MODE == pass ]] && echo PASS || echo SKIP)" \
		-se '.[0].verdict == $first and .[1].verdict == "FAIL" and .[1].symptom == "data" and
		.[1].predicted_match == true and all(.[1].gaps[]; .[2] == "stale") and
		(.[0] | has("first_bad") | not) and .[1].first_bad.class == "stale" and
		.[1].first_bad.got != .[1].first_bad.want' "$JSON" >/dev/null; then
		ok "FAIL path: lost overwrite -> stale gaps in iteration 2"
	else
		not_ok "FAIL path (stale): exit $rc: $(tr '\n' '|' <"$JSON")"
	fi
	rc=0
	: >"$JSON"
	out=$(DIOGAP_TEST_CORRUPT=grow "$a" --size 64K --buffer anon --json "$JSON" "$mnt") || rc=$?
	if ((rc == DG_FAIL)) && jq -e '.verdict == "FAIL" and .symptom == "size" and .size_seen == .size_expected + 4096 and
		(.gaps | length) == 0 and .test_corrupt == "grow" and (has("first_bad") | not)' \
		"$JSON" >/dev/null &&
		grep -q '^# FAIL: file size 69632, expected 65536' <<<"$out"; then
		ok "FAIL path: wrong file size -> exit 1"
	else
		not_ok "FAIL path (grow): exit $rc: $(tr '\n' '|' <<<"$out")"
	fi
	rc=0
	: >"$JSON"
	DIOGAP_TEST_CORRUPT=punch "$a" --size 64K --buffer anon --json "$JSON" "$mnt" >/dev/null || rc=$?
	if ((rc == DG_FAIL)) && jq -e '.verdict == "FAIL" and .gaps == [[0, 4096, "zero"]]' \
		"$JSON" >/dev/null; then
		ok "FAIL path: append, punched first page -> exit 1, one zero gap"
	else
		not_ok "FAIL path (append punch): exit $rc: $(cat "$JSON")"
	fi
}

# matrix MNT LABEL: every reproducer x pattern x size on the mount.
matrix() {
	local mnt=$1 label=$2 size f eng buf
	for size in $SIZES; do
		for f in $(patterns "$size"); do
			for eng in psync pwritev; do
				expect_pass "$label partial $eng $size $f memfd" \
					"$BIN/dio-partial-write" --engine "$eng" --size "$size" \
					--fault "$f" --iterations 2 "$mnt"
			done
			for buf in memfd anon; do
				expect_pass "$label append $size $f $buf" \
					"$BIN/dio-append-write" --size "$size" --fault "$f" \
					--buffer "$buf" --iterations 2 "$mnt"
			done
		done
		expect_pass "$label partial $size first anon" \
			"$BIN/dio-partial-write" --size "$size" --buffer anon "$mnt"
		expect_pass "$label partial $size first file" \
			"$BIN/dio-partial-write" --size "$size" --buffer "file:$DG_RUN_DIR" "$mnt"
		expect_pass "$label partial $size first file in the target" \
			"$BIN/dio-partial-write" --size "$size" --buffer file "$mnt"
	done
	if [[ -z $(find "$mnt" -name 'diogap-buf.*') ]]; then
		ok "$label --buffer file leaves no buffer file behind"
	else
		not_ok "$label --buffer file left $(find "$mnt" -name 'diogap-buf.*' | head -n 1)"
	fi
	# several write calls, offsets, the generic/362 shape
	expect_pass "$label partial 1M chunk 64K first" \
		"$BIN/dio-partial-write" --size 1M --chunk 64K --iterations 2 "$mnt"
	expect_pass "$label partial pwritev 4M chunk 256K offset 1M stride:5" \
		"$BIN/dio-partial-write" --engine pwritev --size 4M --chunk 256K \
		--offset 1M --fault stride:5 "$mnt"
	expect_pass "$label append 16M chunk 1M first anon" \
		"$BIN/dio-append-write" --size 16M --chunk 1M --buffer anon "$mnt"
	expect_pass "$label append 8K offset 64K first anon (generic/362)" \
		"$BIN/dio-append-write" --size 8K --offset 64K --buffer anon "$mnt"
}

# loop_dio MNT: the loop device under MNT does direct I/O to its backing
# file. A buffered loop device dirties and later writes back its backing
# file's page cache (a flush from the filesystem fsyncs it), which lands in
# the nr_dirtied/nr_written window of a later write and makes a direct
# write look buffered (a SKIP, measured here: ext4 iteration 2, +256
# written back for 256 written).
loop_dio() {
	local dev
	dev=$(findmnt -n -o SOURCE --target "$1")
	if [[ $dev == /dev/loop* ]] && losetup --direct-io=on "$dev" 2>/dev/null; then
		echo "# $dev: direct I/O to its backing file"
	else
		echo "# $dev: no loop direct I/O; a noisy 'write went buffered' is retried once"
	fi
}

# controls: the same code on other filesystems with --any-fs.
controls() {
	local tmp ext4 r
	tmp=$(scratch_mem_fs tmpfs tmpfs size=64m)
	ext4=$(scratch_image_fs ext4 ext4 256M)
	loop_dio "$ext4"
	for r in dio-partial-write dio-append-write; do
		expect_pass "tmpfs control $r 1M first" "$BIN/$r" --any-fs --size 1M "$tmp"
		expect_pass "ext4 control $r 1M stride:2" "$BIN/$r" --any-fs --size 1M \
			--fault stride:2 --iterations 2 "$ext4"
	done
}

# bad_inputs BTRFS_MNT: every bad input gets its exact exit code.
bad_inputs() {
	local mnt=$1 r=$BIN/dio-partial-write a=$BIN/dio-append-write tmp ro ramfs full file
	tmp=$DG_RUN_DIR/tmpfs
	ro=$(scratch_mem_fs tmpfs ro ro,size=1m)
	ramfs=$(scratch_mem_fs ramfs ramfs)
	full=$(scratch_mem_fs tmpfs full size=4m)
	file=$DG_RUN_DIR/a-file
	: >"$file"

	expect_exit 2 "bad: size not aligned" "DIO alignment 4096" "$r" --size 1000 "$mnt"
	expect_exit 2 "bad: offset not aligned" "DIO alignment 4096" "$r" --offset 512 "$mnt"
	expect_exit 2 "bad: chunk not aligned" "DIO alignment 4096" "$r" --chunk 6000 "$mnt"
	expect_exit 2 "bad: chunk > size" "larger than --size" "$r" --size 64K --chunk 1M "$mnt"
	expect_exit 2 "bad: size 0" "--size" "$r" --size 0 "$mnt"
	expect_exit 2 "bad: size not a number" "not a size" "$r" --size lots "$mnt"
	expect_exit 2 "bad: size suffix T" "not a size" "$r" --size 1T "$mnt"
	expect_exit 2 "bad: size too large" "1..1G" "$r" --size 2G "$mnt"
	expect_exit 2 "bad: target missing" "No such file" "$r" "$DG_RUN_DIR/nope"
	expect_exit 2 "bad: target is a file" "not a directory" "$r" "$file"
	expect_exit 2 "bad: target read-only" "not writable" "$r" --any-fs "$ro"
	expect_exit 2 "bad: target not btrfs" "not btrfs" "$r" "$tmp"
	expect_exit 2 "bad: append target not btrfs" "not btrfs" "$a" "$tmp"
	expect_exit 2 "bad: no target" "missing TARGET_DIR" "$r"
	expect_exit 2 "bad: two targets" "exactly one" "$r" "$mnt" "$mnt"
	expect_exit 2 "bad: unknown option" "unknown option" "$r" --bogus "$mnt"
	expect_exit 2 "bad: option without value" "needs a value" "$r" "$mnt" --size
	expect_exit 2 "bad: --engine on append" "unknown option --engine" "$a" --engine psync "$mnt"
	expect_exit 2 "bad: --qd on partial" "unknown option --qd" "$r" --qd 4 "$mnt"
	expect_exit 2 "bad: --async on partial" "unknown option --async" "$r" --async "$mnt"
	expect_exit 2 "bad: engine name" "must be one of" "$r" --engine aio "$mnt"
	expect_exit 2 "bad: pattern word" "unknown fault pattern" "$r" --fault sometimes "$mnt"
	expect_exit 2 "bad: pattern stride:0" "stride:N" "$r" --fault stride:0 "$mnt"
	expect_exit 2 "bad: pattern random pct" "random:SEED:PCT" "$r" --fault random:1:200 "$mnt"
	expect_exit 2 "bad: pattern pages backwards" "backwards" "$r" --fault pages:5-3 "$mnt"
	expect_exit 2 "bad: pattern pages out of range" "outside the buffer" "$r" --size 64K --fault pages:16 "$mnt"
	expect_exit 2 "bad: pattern pages empty" "pages:" "$r" --fault pages: "$mnt"
	expect_exit 2 "bad: buffer kind" "memfd, anon, file or file:PATH" "$r" --buffer heap "$mnt"
	expect_exit 2 "bad: buffer file exists" "exists" "$r" --buffer "file:$file" "$mnt"
	expect_exit 2 "bad: iterations 0" "--iterations" "$r" --iterations 0 "$mnt"
	expect_exit 2 "bad: seed not a number" "--seed" "$r" --seed x "$mnt"
	expect_exit 2 "bad: json unwritable" "--json" "$r" --json "$DG_RUN_DIR/nope/x.json" "$mnt"
	expect_exit 2 "bad: nocow not on btrfs" "--nocow needs btrfs" "$r" --any-fs --nocow "$tmp"
	expect_exit 2 "bad: test hook value" "punch, stale, grow or eio" \
		env DIOGAP_TEST_CORRUPT=bogus "$r" "$mnt"
	expect_enospc "$r" "$full"
	expect_enospc "$a" "$full"
	expect_exit 4 "SKIP: O_DIRECT unsupported (ramfs)" "" "$r" --any-fs --size 64K "$ramfs"
	expect_exit 4 "SKIP: O_DIRECT unsupported, append (ramfs)" "" "$a" --any-fs --size 64K "$ramfs"
	expect_exit 0 "--describe" "" "$r" --describe
	expect_exit 0 "--help" "" "$r" --help
	if [[ -z $(find "$mnt" "$tmp" "$ramfs" "$full" -name 'diogap-*' -print -quit) ]]; then
		ok "no target files left behind"
	else
		not_ok "target files left behind: $(find "$mnt" "$tmp" "$ramfs" "$full" -name 'diogap-*')"
	fi
}

# describe_matches: --describe and --describe --json print the same
# metadata table (the one place it is kept), in the forms the harness reads.
describe_matches() {
	local r got json
	for r in dio-partial-write dio-append-write; do
		got=$("$BIN/$r" --describe)
		json=$("$BIN/$r" --describe --json)
		if grep -q '^Fixes: [0-9a-f]\{12\} ("' <<<"$got" && grep -q '^May-hang: no$' <<<"$got" &&
			[[ $(sed -n 's/^Params: //p' <<<"$got") == "$(jq -r '.params | join(" ")' <<<"$json")" ]] &&
			[[ $(sed -n 's/^Fixes: \([0-9a-f]*\) .*/\1/p' <<<"$got") == "$(jq -r '.fixes[0].sha' <<<"$json")" ]] &&
			jq -e '.may_hang == false and (.fstests | length > 0)' <<<"$json" >/dev/null; then
			ok "$r --describe and --describe --json print the same table"
		else
			not_ok "$r --describe and --describe --json differ: $got / $json"
		fi
	done
	for r in dio-append-write dio-partial-write dio-self-mmap-write dio-uring-write; do
		got=$("$BIN/$r" --describe | tail -c 1 | od -An -tx1 | tr -d ' ')
		if [[ $got == 0a ]]; then
			ok "$r --describe ends with a newline"
		else
			not_ok "$r --describe ends with byte '$got', not a newline"
		fi
	done
}

# verdict_checks MNT: the verdicts that cannot lie, on a checksummed mount
# (MNT) and after it on nodatasum (MNT_NODATASUM, the same device again).
#
# eio_and_sticky MNT: EIO on read-back is FAIL eio-read (the test hook
# DIOGAP_TEST_CORRUPT=eio, labelled), and FAIL is sticky: a setup error
# after a FAIL (a --json file that cannot be written: /dev/full) exits 1.
eio_and_sticky() {
	local mnt=$1 r rc out err
	for r in dio-partial-write dio-append-write dio-uring-write dio-self-mmap-write; do
		rc=0
		: >"$JSON"
		out=$(DIOGAP_TEST_CORRUPT=eio "$BIN/$r" --nocow --size 64K --json "$JSON" "$mnt" 2>&1) || rc=$?
		if ((rc == DG_FAIL)) && jq -e '.verdict == "FAIL" and .symptom == "eio-read" and
			.test_corrupt == "eio" and (.diag | test("^read back \\[[0-9]+,\\+65536\\): Input/output error \\(checksum failure\\? see the kernel log\\)$"))' \
			"$JSON" >/dev/null && grep -q '^# test hook: DIOGAP_TEST_CORRUPT=eio' <<<"$out" &&
			grep -q '^not ok 1 ' <<<"$out"; then
			ok "EIO on read-back is FAIL eio-read, not BROKEN ($r)"
		else
			not_ok "EIO read-back ($r): exit $rc: $(tr '\n' '|' <<<"$out" | cut -c1-400)"
		fi
	done
	rc=0
	err=$(DIOGAP_TEST_CORRUPT=punch "$BIN/dio-partial-write" --nocow --size 64K --json /dev/full \
		"$mnt" 2>&1 >/dev/null) || rc=$?
	if ((rc == DG_FAIL)) && grep -q 'the run broke after an iteration FAILed: exit 1' <<<"$err"; then
		ok "FAIL is sticky: a setup error after a FAIL exits 1, not 2"
	else
		not_ok "sticky FAIL: exit $rc: $err"
	fi
}

# datasum_label MNT NODATASUM_MNT: the label says what the file has; the
# 968f19c5b1b7 note only where data checksums are on.
datasum_label() {
	local mnt=$1 want=$2 name=$3 out note=0
	shift 3
	out=$("$BIN/dio-partial-write" --size 64K "$@" "$mnt" 2>&1 || true)
	grep -q '^# note: kernels with 968f19c5b1b7' <<<"$out" && note=1
	if grep -q "^# dio-partial-write seed [0-9]* fs btrfs datasum $want " <<<"$out" &&
		[[ $want/$note == yes/1 || $want/$note == no/0 ]]; then
		ok "datasum label $want: $name"
	else
		not_ok "datasum label ($name): $(grep -E 'datasum|note' <<<"$out" | tr '\n' '|')"
	fi
}

# preconditions MNT (nodatasum): the fault shape happened or the case SKIPs.
preconditions() {
	local mnt=$1 rc out rec np want path
	np=$(pages_of 1M)
	want=$(((np + 31) / 32))
	# a file buffer already in the page cache: PTEs are measured, and the
	# page-sized fill gives exactly the touched pages (mincore said 256/256)
	path=$DG_RUN_DIR/buffer-in-page-cache
	: >"$JSON"
	rc=0
	"$BIN/dio-partial-write" --size 1M --fault stride:32 --buffer "file:$path" --json "$JSON" \
		"$mnt" >/dev/null 2>&1 || rc=$?
	if ((rc == 0)) && jq -e --argjson w "$want" '.verdict == "PASS" and .residency.resident == $w and
		.residency_source == "pagemap" and .precondition.met == true and .seen == .want' \
		"$JSON" >/dev/null; then
		ok "file:PATH in the page cache, stride:32: exactly the $want touched pages resident, PASS"
	else
		not_ok "file:PATH stride:32: exit $rc: $(cut -c1-500 "$JSON")"
	fi
	: >"$JSON"
	rc=0
	out=$(DIOGAP_TEST_NO_PAGEMAP=1 "$BIN/dio-partial-write" --size 1M --fault stride:32 \
		--buffer "file:$path" --json "$JSON" "$mnt" 2>&1) || rc=$?
	if ((rc == DG_SKIP)) && jq -e '.verdict == "SKIP" and .precondition.met == false and
		.residency_source == "mincore" and
		.diag == "precondition not met: residency of a shared mapping cannot be measured without /proc/self/pagemap (CONFIG_PROC_PAGE_MONITOR)"' \
		"$JSON" >/dev/null && grep -q '^# test hook: DIOGAP_TEST_NO_PAGEMAP' <<<"$out"; then
		ok "no pagemap: a shared mapping's residency (mincore) is not truth -> SKIP"
	else
		not_ok "no pagemap, file buffer: exit $rc: $(cut -c1-500 "$JSON")"
	fi
	: >"$JSON"
	rc=0
	DIOGAP_TEST_NO_PAGEMAP=1 "$BIN/dio-partial-write" --size 1M --fault stride:32 --buffer memfd \
		--json "$JSON" "$mnt" >/dev/null 2>&1 || rc=$?
	if ((rc == 0)) && jq -e --argjson w "$want" '.verdict == "PASS" and .residency.resident == $w and
		(.buffer_note | test("using an anon buffer"))' "$JSON" >/dev/null; then
		ok "no pagemap: memfd falls back to an anon buffer (mincore truthful there), PASS"
	else
		not_ok "no pagemap, memfd: exit $rc: $(cut -c1-500 "$JSON")"
	fi
	shmem_force "$mnt" "$want"
	# the self-mmap reproducer: fault-around maps 16 pages, 64K first has
	# no missing page left to fault on; none: nothing resident
	: >"$JSON"
	rc=0
	"$BIN/dio-self-mmap-write" --size 64K --fault first --json "$JSON" "$mnt" >/dev/null 2>&1 || rc=$?
	if ((rc == DG_SKIP)) && jq -e '.verdict == "SKIP" and .precondition.met == false and
		(.diag | startswith("precondition not met: "))' "$JSON" >/dev/null; then
		ok "self-mmap 64K first, all resident after fault-around: SKIP precondition not met"
	else
		not_ok "self-mmap 64K first: exit $rc: $(cut -c1-400 "$JSON")"
	fi
	expect_pass "self-mmap 1M none (nothing resident)" "$BIN/dio-self-mmap-write" --size 1M --fault none "$mnt"
	expect_pass "self-mmap 1M first" "$BIN/dio-self-mmap-write" --size 1M --fault first "$mnt"
	expect_pass "self-mmap 256K all" "$BIN/dio-self-mmap-write" --size 256K --fault all "$mnt"
	expect_pass "uring 1M qd4 first" "$BIN/dio-uring-write" --size 1M --qd 4 "$mnt"
}

# shmem_force MNT WANT: shmem_enabled=force gives memfd huge folios (a touch
# maps 512 pages): the buffer falls back to anon and the shape happens.
# The setting is restored.
shmem_force() {
	local mnt=$1 want=$2 knob=/sys/kernel/mm/transparent_hugepage/shmem_enabled old rc=0
	if [[ ! -w $knob ]]; then
		echo "# no $knob: shmem force not tested"
		return
	fi
	old=$(sed 's/.*\[\(.*\)\].*/\1/' "$knob")
	echo force >"$knob"
	: >"$JSON"
	"$BIN/dio-partial-write" --size 4M --fault stride:32 --buffer memfd --json "$JSON" "$mnt" \
		>/dev/null 2>&1 || rc=$?
	echo "$old" >"$knob"
	if ((rc == 0)) && jq -e --argjson w "$((want * 4))" '.verdict == "PASS" and
		.residency.resident == $w and (.buffer_note | test("large folios"))' "$JSON" >/dev/null; then
		ok "shmem_enabled=force: memfd -> anon buffer, $((want * 4)) pages resident, PASS (restored $old)"
	else
		not_ok "shmem_enabled=force: exit $rc: $(cut -c1-500 "$JSON")"
	fi
}

# no_advise MNT: every reproducer as on a kernel without madvise and
# fadvise (build/enosys, seccomp ENOSYS): PASS or SKIP with a reason, never
# BROKEN.
no_advise() {
	local mnt=$1 r rc out
	for r in dio-partial-write dio-append-write dio-uring-write dio-self-mmap-write; do
		for buf in memfd anon; do
			[[ $r == dio-self-mmap-write && $buf == anon ]] && continue
			rc=0
			: >"$JSON"
			if [[ $r == dio-self-mmap-write ]]; then
				out=$("$BIN/enosys" madvise,fadvise64 "$BIN/$r" --size 1M --json "$JSON" "$mnt" 2>&1) || rc=$?
			else
				out=$("$BIN/enosys" madvise,fadvise64 "$BIN/$r" --size 1M --buffer "$buf" \
					--json "$JSON" "$mnt" 2>&1) || rc=$?
			fi
			if { ((rc == 0)) || { ((rc == DG_SKIP)) && jq -e '.diag != null' "$JSON" >/dev/null; }; } &&
				! grep -q '# ERROR' <<<"$out" &&
				{ [[ $r != dio-self-mmap-write ]] || grep -q '^# page cache dropped with echo 1 > /proc/sys/vm/drop_caches (posix_fadvise: ENOSYS)' <<<"$out"; } &&
				{ [[ $r == dio-self-mmap-write || $buf == anon ]] || jq -e '.buffer_note | test("no madvise")' "$JSON" >/dev/null; }; then
				ok "no madvise/fadvise (ENOSYS): $r --buffer $buf -> exit $rc"
			else
				not_ok "no madvise/fadvise: $r $buf: exit $rc: $(tr '\n' '|' <<<"$out" | cut -c1-400)"
			fi
		done
	done
}

# unverifiable_anon MNT: an anon buffer's untouched pages are listed.
unverifiable_anon() {
	local mnt=$1 out
	: >"$JSON"
	out=$("$BIN/dio-append-write" --size 64K --buffer anon --json "$JSON" "$mnt" 2>&1 || true)
	if jq -e --argjson p "$PAGE" '.unverifiable == [[$p, 65536]]' "$JSON" >/dev/null &&
		grep -q "unverifiable: $((65536 - PAGE)) bytes in 1 ranges, first \[$PAGE, 65536)" <<<"$out"; then
		ok "anon: untouched pages are unverifiable [$PAGE, 65536), with a KTAP line"
	else
		not_ok "unverifiable: $(jq -c .unverifiable "$JSON") $(grep unverif <<<"$out")"
	fi
}

# direct_figures MNT LABEL: print the nr_dirtied/nr_written deltas of 1M.
direct_figures() {
	local mnt=$1 label=$2
	shift 2
	: >"$JSON"
	"$BIN/dio-partial-write" --size 1M "$@" --json "$JSON" "$mnt" >/dev/null 2>&1 || true
	echo "# $label 1M: $(jq -r '"direct \(.direct) nr_dirtied +\(.dirtied_pages) nr_written +\(.writeback_pages) for \(.dirtied_written) pages (device stack \(.dirtied_base))"' "$JSON")"
}

# rerun_same: the rerun line of a case reruns the same case (same name,
# same seed, same verdict).
rerun_same() {
	local mnt=$1 line name1 name2 verdict1
	: >"$JSON"
	"$BIN/dio-partial-write" --nocow --size 64K --fault random:3:50 --json "$JSON" "$mnt" >/dev/null || true
	line=$(jq -r .rerun "$JSON")
	verdict1=$(jq -r .verdict "$JSON")
	name1=$(jq -r '.name + " " + (.seed|tostring)' "$JSON")
	: >"$JSON"
	# shellcheck disable=SC2086 # the rerun line is a command line: split on purpose
	$line --json "$JSON" >/dev/null || true
	name2=$(jq -r '.name + " " + (.seed|tostring)' "$JSON")
	if [[ $name1 == "$name2" && $(jq -r .verdict "$JSON") == "$verdict1" && $verdict1 != FAIL && $verdict1 != BROKEN ]]; then
		ok "rerun line reproduces the case ($name1)"
	else
		not_ok "rerun line: '$name1' vs '$name2'"
	fi
}

# records_say_what_ran MNT: the JSON chunk is the chunk the writes used
# (dio-uring-write's default is size/qd), the buffer is recorded.
records_say_what_ran() {
	local mnt=$1 got
	: >"$JSON"
	"$BIN/dio-uring-write" --size 1M --qd 4 --json "$JSON" "$mnt" >/dev/null || true
	"$BIN/dio-uring-write" --size 1M --qd 4 --chunk 64K --json "$JSON" "$mnt" >/dev/null || true
	"$BIN/dio-partial-write" --size 1M --buffer anon --json "$JSON" "$mnt" >/dev/null || true
	got=$(jq -r '[.chunk, .chunks // "-", .buffer] | map(tostring) | join(" ")' "$JSON" | paste -sd '|')
	if [[ $got == "262144 4 memfd|65536 16 memfd|1048576 - anon" ]]; then
		ok "records carry the chunk really used (uring default size/qd) and the buffer"
	else
		not_ok "records' chunk/buffer: $got"
	fi
}

main() {
	local mnt r
	BIN=$(realpath "${1:-$DIOGAP_BUILD}")
	need_root
	for r in dio-partial-write dio-append-write; do
		[[ -x $BIN/$r ]] || die "$BIN/$r is missing: run make first"
	done
	command -v jq >/dev/null || die "jq is missing (make deps)"
	scratch_new
	JSON=$DG_RUN_DIR/records.jsonl
	echo "KTAP version 1"
	echo "# kernel $(uname -r), scratch $DG_RUN_DIR"
	mnt=$(scratch_image_fs btrfs btrfs 2G)
	loop_dio "$mnt"
	describe_matches
	controls
	bad_inputs "$mnt"
	rerun_same "$mnt"
	records_say_what_ran "$mnt"
	eio_and_sticky "$mnt"
	datasum_label "$mnt" yes "default mount"
	datasum_label "$mnt" no "--nocow on the default mount" --nocow
	direct_figures "$mnt" "datasum"
	direct_figures "$mnt" "datasum --nocow" --nocow
	expect_pass "btrfs --nocow partial 1M first (direct on a checksummed mount)" \
		"$BIN/dio-partial-write" --nocow "$mnt"
	MODE=buffered
	fail_path "$mnt"
	matrix "$mnt" "btrfs"
	expect_pass "btrfs uring 1M qd4" "$BIN/dio-uring-write" --size 1M --qd 4 "$mnt"
	expect_pass "btrfs self-mmap 1M" "$BIN/dio-self-mmap-write" --size 1M "$mnt"
	fsync_race_buffered "$mnt"
	direct_probe "$mnt" skip
	MODE=pass
	scratch_remount "$mnt" nodatasum
	datasum_label "$mnt" no "nodatasum mount"
	direct_figures "$mnt" "nodatasum"
	matrix "$mnt" "btrfs,nodatasum"
	fail_path "$mnt"
	preconditions "$mnt"
	no_advise "$mnt"
	unverifiable_anon "$mnt"
	direct_probe "$mnt" pass
	expect_pass "btrfs --nocow partial 1M first" "$BIN/dio-partial-write" --nocow "$mnt"
	echo "# $n_retry cases retried once after a noisy 'write went buffered' on nodatasum"
	link_repros "$mnt"
	dsync_repro "$mnt"
	echo "$n_pass passed, $n_fail failed"
	((n_fail == 0)) || exit 1
}


# direct_probe MNT WANT: an 8K write (2 pages) with 16 pages of someone
# else's writeback in its window (DIOGAP_TEST_NOISE): its own deltas look
# buffered, so a 64-page probe beside it judges. WANT=pass (nodatasum: the
# probe writes direct, the case PASSes with direct true) or skip (this
# kernel's checksummed mount: the probe goes buffered too, SKIP "write went
# buffered"). Either way the noise shows in the write's own deltas and the
# record carries the probe's figures.
direct_probe() {
	local mnt=$1 want=$2 rc=0 out rec name
	name="an 8K write with noise in its window ($want): the 64-page probe judges"
	: >"$JSON"
	out=$(DIOGAP_TEST_NOISE=16 "$BIN/dio-partial-write" --size 8K --fault all --json "$JSON" "$mnt" 2>&1) || rc=$?
	rec=$(tail -n 1 "$JSON")
	if ! jq -e '.dirtied_pages >= 16 and .writeback_pages >= 16 and .direct_probe.pages == 64' \
		>/dev/null <<<"$rec"; then
		not_ok "$name # no noise seen or no probe: $rec"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 8
	elif [[ $want == pass ]] && ! { ((rc == 0)) && jq -e '.verdict == "PASS" and .direct == true and
		.direct_probe.dirtied < 32' >/dev/null <<<"$rec"; }; then
		not_ok "$name # exit $rc: $rec"
	elif [[ $want == skip ]] && ! { ((rc == DG_SKIP)) && jq -e '.verdict == "SKIP" and .direct == false and
		.direct_probe.dirtied >= 32 and .direct_probe.written >= 32 and
		(.diag | startswith("write went buffered ("))' >/dev/null <<<"$rec"; }; then
		not_ok "$name # exit $rc: $rec"
	elif ! grep -q 'too few pages to tell from noise, so a probe of 64 pages' <<<"$out"; then
		not_ok "$name # no line about the probe"
	else
		ok "$name ($(jq -r '"own +\(.dirtied_pages)/+\(.writeback_pages), probe +\(.direct_probe.dirtied)/+\(.direct_probe.written): \(.verdict)"' <<<"$rec"))"
	fi
	[[ -z $(find "$mnt" -maxdepth 1 -name '.diogap-*') ]] ||
		not_ok "$name # left a probe or noise file in $mnt"
}

# ---- dio-uring-read-fault (ca93e44bfb5f) and dio-fsync-race (cd9253c23aed) --
# This kernel has both fixes: the io_uring read over 2+ extents completes
# whole for every fault shape, the write and fsync loops run to the end
# without error; every bad input exits 2. The FAILs need a planted kernel
# (configs/patches/6.1/, make check-kernels).

# fsync_race_pass NAME ARGS...: exit 0, one PASS record in which both loops
# made calls and the writes were direct, the rerun line keeps --seconds. A
# "write went buffered" SKIP is run once more (counter noise can only make
# a direct write look buffered).
fsync_race_pass() {
	local name=$1 rc=0 out rec
	shift
	: >"$JSON"
	out=$("$@" --json "$JSON" 2>&1) || rc=$?
	retry_if_buffered "$name" "$@"
	rec=$(tail -n 1 "$JSON")
	if ((rc != 0)); then
		not_ok "$name # exit $rc"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 12
	elif ! jq -e '.verdict == "PASS" and .writes > 0 and .fsyncs > 0 and
		.write_errno == 0 and .fsync_errno == 0 and .symptom == null and
		.direct == true and .dirtied_written > 0 and
		.size_seen == .size_expected and (.rerun | test("--seconds [0-9.]+ "))' >/dev/null <<<"$rec"; then
		not_ok "$name # JSON record disagrees: $rec"
	else
		ok "$name ($(jq -r '"\(.writes) writes, \(.fsyncs) fsyncs"' <<<"$rec"))"
	fi
}

# fsync_race_buffered MNT: on a checksummed mount this kernel (968f19c5b1b7)
# turns the race's O_DIRECT writes buffered: both engines exit 4, the
# record SKIP "write went buffered" with direct false and the raw figures,
# the race itself having run (writes and fsyncs made); --nocow on the same
# mount stays direct (PASS).
fsync_race_buffered() {
	local mnt=$1 fr=$BIN/dio-fsync-race e rc out rec
	for e in dsync plain; do
		rc=0
		: >"$JSON"
		out=$("$fr" --seconds 0.5 --engine "$e" --json "$JSON" "$mnt" 2>&1) || rc=$?
		rec=$(tail -n 1 "$JSON")
		if ((rc != DG_SKIP)); then
			not_ok "fsync-race $e, datasum mount: SKIP (write went buffered) # exit $rc"
			printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 8
		elif ! jq -e '.verdict == "SKIP" and (.diag | startswith("write went buffered (")) and
			.direct == false and .writeback_pages >= .dirtied_written / 2 and
			.writes > 0 and .fsyncs > 0 and .symptom == null' >/dev/null <<<"$rec"; then
			not_ok "fsync-race $e, datasum mount: SKIP (write went buffered) # JSON record disagrees: $rec"
		elif ! grep -q "^ok 1 dio-fsync-race\.$e\..* # SKIP write went buffered (" <<<"$out"; then
			not_ok "fsync-race $e, datasum mount: SKIP (write went buffered) # KTAP line without the reason"
		else
			ok "fsync-race $e, datasum mount: SKIP (write went buffered: $(jq -r '"\(.dirtied_pages) dirtied, \(.writeback_pages) written back for \(.dirtied_written)"' <<<"$rec"))"
		fi
	done
	fsync_race_pass "fsync-race --nocow on the datasum mount: direct" "$fr" --seconds 0.5 --nocow "$mnt"
}

# read_fault_pass NAME ARGS...: exit 0, the KTAP totals, and a PASS record:
# the whole length read (res = size), no bad range, 2+ extents (precondition
# met). (expect_pass asks for a direct write: this reproducer reads.)
read_fault_pass() {
	local name=$1 rc=0 out rec
	shift
	: >"$JSON"
	out=$("$@" --json "$JSON" 2>&1) || rc=$?
	rec=$(tail -n 1 "$JSON")
	if ((rc != 0)); then
		not_ok "$name # exit $rc"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 12
	elif ! jq -e '.verdict == "PASS" and .size_seen == .size_expected and
		.res == .size_expected and .extents >= 2 and (.gaps | length) == 0 and
		.symptom == null and .precondition.met == true and .residency_source != null and
		(.rerun | test("--seed [0-9]+"))' >/dev/null <<<"$rec"; then
		not_ok "$name # JSON record disagrees: $rec"
	elif ! grep -q '^# Totals: pass:[1-9][0-9]* fail:0 xfail:0 xpass:0 skip:0 error:0$' <<<"$out"; then
		not_ok "$name # KTAP totals line missing or wrong"
	else
		ok "$name"
	fi
}

# read_fault_layout LAYOUT KIND ARGS...: --layout LAYOUT gives a verdict
# that agrees with FIEMAP: PASS (whole read, data right) with KIND (the
# record's compressed_extents or inline_extents) >= 1 and the precondition
# met, or SKIP "precondition not met: ..." naming FIEMAP (or FS_COMPR_FL,
# refused on a --nocow file) with the precondition false; the record says the layout, the KTAP name carries it.
read_fault_layout() {
	local layout=$1 kind=$2 rc=0 out rec
	shift 2
	: >"$JSON"
	out=$("$@" --layout "$layout" --json "$JSON" 2>&1) || rc=$?
	rec=$(tail -n 1 "$JSON")
	if ! jq -e --arg l "$layout" '.layout == $l and (.name | contains(".\($l)."))' >/dev/null <<<"$rec"; then
		not_ok "read-fault --layout $layout # record or name without the layout: $rec"
	elif ((rc == 0)) && jq -e --arg k "$kind" '.verdict == "PASS" and .[$k] >= 1 and
		.precondition.met == true and .res == .size_expected and (.gaps | length) == 0' >/dev/null <<<"$rec"; then
		ok "read-fault --layout $layout: PASS over $(jq -r --arg k "$kind" '"\(.extents) extents, \(.[$k]) \($k | sub("_extents"; ""))"' <<<"$rec")"
	elif ((rc == DG_SKIP)) && jq -e '.verdict == "SKIP" and .precondition.met == false and
		(.diag | startswith("precondition not met: ") and test("FIEMAP|FS_COMPR_FL"))' >/dev/null <<<"$rec"; then
		ok "read-fault --layout $layout: SKIP ($(jq -r .diag <<<"$rec"))"
	else
		not_ok "read-fault --layout $layout # exit $rc: $rec"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 6
	fi
}

# link_repros MNT
link_repros() {
	local mnt=$1 rf=$BIN/dio-uring-read-fault fr=$BIN/dio-fsync-race page f
	page=$(getconf PAGESIZE)
	for f in first none all stride:2; do
		read_fault_pass "read-fault 2 extents $f" "$rf" --fault "$f" "$mnt"
	done
	read_fault_pass "read-fault 32 extents first" "$rf" --size $((32 * page)) "$mnt"
	read_fault_pass "read-fault 2 extents first, 3 iterations" "$rf" --iterations 3 "$mnt"
	read_fault_pass "read-fault --nocow 2 extents first" "$rf" --nocow "$mnt"
	read_fault_pass "read-fault --layout plain 2 extents first" "$rf" --layout plain "$mnt"
	read_fault_layout compressed compressed_extents "$rf" --size $((8 * page)) "$mnt"
	read_fault_layout inline inline_extents "$rf" --size $((4 * page)) "$mnt"
	read_fault_layout compressed compressed_extents "$rf" --size $((4 * page)) --nocow "$mnt"
	expect_exit 2 "bad: read-fault --layout word" "must be one of plain|compressed|inline" "$rf" --layout zip "$mnt"
	expect_exit 2 "bad: read-fault --layout compressed, 2 pages" "3 or more pages" "$rf" --layout compressed "$mnt"
	expect_exit 2 "bad: fsync-race --layout" "unknown option --layout" "$fr" --layout plain "$mnt"
	fsync_race_pass "fsync-race 1 s (dsync)" "$fr" --seconds 1 "$mnt"
	fsync_race_pass "fsync-race 1 s, --engine plain" "$fr" --seconds 1 --engine plain "$mnt"
	fsync_race_pass "fsync-race --nocow 1 s (direct on every kernel)" "$fr" --seconds=1 --nocow "$mnt"
	fsync_race_pass "fsync-race 2 pages at an offset, 2 iterations" \
		"$fr" --seconds 0.5 --size $((2 * page)) --offset "$page" --iterations 2 "$mnt"
	expect_exit 2 "bad: read-fault one page" "2 or more whole pages" "$rf" --size "$page" "$mnt"
	expect_exit 2 "bad: read-fault offset" "the file starts at 0" "$rf" --offset "$page" "$mnt"
	expect_exit 2 "bad: read-fault --qd" "unknown option --qd" "$rf" --qd 2 "$mnt"
	expect_exit 2 "bad: read-fault pattern" "unknown fault pattern" "$rf" --fault sometimes "$mnt"
	expect_exit 2 "bad: read-fault size not aligned" "DIO alignment" "$rf" --size 1000 "$mnt"
	expect_exit 2 "bad: fsync-race --seconds 0" "--seconds" "$fr" --seconds 0 "$mnt"
	expect_exit 2 "bad: fsync-race --seconds word" "--seconds" "$fr" --seconds x "$mnt"
	expect_exit 2 "bad: fsync-race --seconds without value" "needs a value" "$fr" "$mnt" --seconds
	expect_exit 2 "bad: fsync-race --buffer" "unknown option --buffer" "$fr" --buffer anon "$mnt"
	expect_exit 2 "bad: fsync-race engine" "must be one of dsync|plain" "$fr" --engine psync "$mnt"
	expect_exit 2 "bad: fsync-race size not aligned" "DIO alignment" "$fr" --size 1000 "$mnt"
	expect_exit 0 "read-fault --describe" "" "$rf" --describe
	expect_exit 0 "fsync-race --describe" "" "$fr" --describe
}

# ---- dio-dsync-uring (8184620ae212): the power cut ---------------------------
# The reproducer cuts the power itself and only on dm-flakey: on a plain
# loop device it must SKIP before writing anything, naming why (and what the
# runner said when it could not make one); it never PASSes untested. With
# device mapper here, a flakey device over a loop device must PASS (this
# kernel has the fix). Bad inputs exit 2.
dsync_skip() {
	local name=$1 want=$2 rc=0 out rec
	shift 2
	: >"$JSON"
	out=$("$@" --json "$JSON" 2>&1) || rc=$?
	rec=$(tail -n 1 "$JSON")
	if ((rc != DG_SKIP)); then
		not_ok "$name # exit $rc, expected 4 (SKIP)"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 8
	elif ! jq -e --arg w "$want" '.verdict == "SKIP" and .symptom == null and
		(.diag | startswith("no dm-flakey under the scratch: ") and contains($w))' \
		>/dev/null <<<"$rec"; then
		not_ok "$name # JSON record disagrees: $rec"
	elif [[ -n $(find "${@: -1}" -maxdepth 1 -name 'diogap-dio-dsync-uring-*') ]]; then
		not_ok "$name # left its file behind"
	else
		ok "$name ($(jq -r .diag <<<"$rec" | cut -c1-100))"
	fi
}

# dsync_flakey_pass: a flakey device over a loop device of its own under a
# fresh btrfs, the reproducer's cut on it: PASS, the cut counted.
dsync_flakey_pass() {
	local dd=$BIN/dg-dm name=diogap-$$-test node mnt=$DG_RUN_DIR/flakey rc=0 rec dev
	truncate -s 256M "$DG_RUN_DIR/flakey.img"
	dev=$(losetup --find --show --direct-io=on "$DG_RUN_DIR/flakey.img") || die "losetup failed"
	on_exit losetup -d "$dev"
	if ! node=$("$dd" create "$name" "$dev" 2>&1); then
		echo "# no dm-flakey here ($node): the cut's PASS path needs a kernel with it (make check-kernels)"
		return 0
	fi
	on_exit "$dd" remove --deferred "$name"
	mkdir -p "$mnt"
	if ! mkfs.btrfs -q -f "$node" >/dev/null 2>&1 || ! mount "$node" "$mnt"; then
		not_ok "dsync-uring on dm-flakey: mkfs/mount $node failed"
		return 0
	fi
	on_exit unmount "$mnt"
	: >"$JSON"
	"$BIN/dio-dsync-uring" --qd 4 --json "$JSON" "$mnt" >/dev/null 2>&1 || rc=$?
	rec=$(tail -n 1 "$JSON")
	if ((rc == 0)) && jq -e '.verdict == "PASS" and .cut_us > 0 and .writes == 16 and (.lost | length) == 0' >/dev/null <<<"$rec"; then
		ok "dsync-uring on dm-flakey over a loop device: PASS after the cut ($(jq -r .cut_us <<<"$rec") us)"
	else
		not_ok "dsync-uring on dm-flakey: exit $rc: $rec"
	fi
	umount "$mnt" || true
	"$dd" remove "$name" >/dev/null 2>&1 || true
}

dsync_repro() {
	local mnt=$1 ds=$BIN/dio-dsync-uring
	dsync_skip "dsync-uring on a plain loop device: SKIP, no writes" "" "$ds" "$mnt"
	dsync_skip "dsync-uring: the runner's reason is the SKIP's" "dg-dm create: no flakey here" \
		env DIOGAP_FLAKEY_WHY="dg-dm create: no flakey here" "$ds" --qd 2 "$mnt"
	expect_exit 2 "bad: dsync-uring engine" "must be one of dsync|odsync" "$ds" --engine psync "$mnt"
	expect_exit 2 "bad: dsync-uring --buffer" "unknown option --buffer" "$ds" --buffer anon "$mnt"
	expect_exit 2 "bad: dsync-uring chunk not aligned" "DIO alignment" "$ds" --chunk 1000 "$mnt"
	expect_exit 0 "dsync-uring --describe" "" "$ds" --describe
	if "$ds" --describe --json | jq -e '.needs == ["dm-flakey"] and .fixes[0].sha == "8184620ae212"' >/dev/null; then
		ok "dsync-uring --describe --json: needs dm-flakey, fixes 8184620ae212"
	else
		not_ok "dsync-uring --describe --json: $("$ds" --describe --json)"
	fi
	expect_exit 2 "dg-dm without arguments" "usage" "$BIN/dg-dm"
	expect_exit 2 "dg-dm remove-run 0" "usage" "$BIN/dg-dm" remove-run 0
	dsync_flakey_pass
	fsync_error_repro "$mnt"
}

# ---- dio-fsync-after-error (f13e01b89daf): failed writes, fsync, the cut ----
# Like dio-dsync-uring it needs dm-flakey: on a plain loop device SKIP
# before writing, its files gone; bad inputs exit 2. Its FAIL (Debian's
# 6.1) and PASS (6.12, 6.1 with the fix) need a guest: make check-kernels.
fsync_error_repro() {
	local mnt=$1 fe=$BIN/dio-fsync-after-error rc=0 out rec
	: >"$JSON"
	out=$("$fe" --json "$JSON" "$mnt" 2>&1) || rc=$?
	rec=$(tail -n 1 "$JSON")
	if ((rc != DG_SKIP)); then
		not_ok "fsync-after-error on a plain loop device: SKIP # exit $rc"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 8
	elif ! jq -e '.verdict == "SKIP" and .symptom == null and (.writes_failed // 0) == 0 and
		(.diag | startswith("no dm-flakey under the scratch: "))' >/dev/null <<<"$rec"; then
		not_ok "fsync-after-error on a plain loop device: SKIP # JSON record disagrees: $rec"
	elif [[ -n $(find "$mnt" -maxdepth 1 -name 'diogap-dio-fsync-after-error-*') ]]; then
		not_ok "fsync-after-error on a plain loop device: SKIP # left files behind"
	else
		ok "fsync-after-error on a plain loop device: SKIP ($(jq -r .diag <<<"$rec" | cut -c1-80))"
	fi
	expect_exit 2 "bad: fsync-after-error engine" "must be one of fsync|fdatasync" "$fe" --engine dsync "$mnt"
	expect_exit 2 "bad: fsync-after-error --qd" "unknown option --qd" "$fe" --qd 2 "$mnt"
	expect_exit 2 "bad: fsync-after-error size not aligned" "DIO alignment" "$fe" --size 1000 "$mnt"
	if "$fe" --describe --json | jq -e '.needs == ["dm-flakey"] and .fixes[0].sha == "f13e01b89daf"' >/dev/null; then
		ok "fsync-after-error --describe --json: needs dm-flakey, fixes f13e01b89daf"
	else
		not_ok "fsync-after-error --describe --json: $("$fe" --describe --json)"
	fi
}

main "$@"
