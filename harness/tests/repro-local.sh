#!/usr/bin/env bash
# repro-local.sh: the reproducers on the running kernel, which has the fixes,
# so every data case must PASS. On a loop-mounted btrfs (default mount and
# nodatasum, which keeps O_DIRECT writes direct on kernels with
# 968f19c5b1b7), every reproducer x fault pattern x size 4K..16M; tmpfs and
# ext4 with --any-fs as controls; every bad input with its exact exit code
# (2, or 4 for SKIP). The last line is "N passed, N failed".
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
n_pass=0
n_fail=0
n_case=0

SIZES="4K 16K 64K 256K 1M 4M 16M"

ok() {
	n_pass=$((n_pass + 1)) n_case=$((n_case + 1))
	echo "ok $n_case $*"
}

not_ok() {
	n_fail=$((n_fail + 1)) n_case=$((n_case + 1))
	echo "not ok $n_case $*"
}

# pages_of SIZE: the number of 4 KiB pages in SIZE (K/M suffix).
pages_of() {
	local s=$1
	case "$s" in
	*K) echo $((${s%K} / 4)) ;;
	*M) echo $((${s%M} * 256)) ;;
	*) echo $((s / 4096)) ;;
	esac
}

# patterns SIZE: every fault pattern, sized to fit SIZE.
patterns() {
	local np
	np=$(pages_of "$1")
	echo "first none all stride:3 random:42:30 pages:0,$((np / 2))-$((np - 1))"
}

# expect_pass NAME ARGS...: the reproducer exits 0, says "ok" in KTAP, and
# its JSON record says PASS with the sizes equal and the residency truth.
expect_pass() {
	local name=$1 rc=0 out rec
	shift
	: >"$JSON"
	out=$("$@" --json "$JSON" 2>&1) || rc=$?
	if ((rc != 0)); then
		not_ok "$name # exit $rc"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 12
		return
	fi
	rec=$(tail -n 1 "$JSON")
	if ! jq -e '.verdict == "PASS" and .size_seen == .size_expected and
		(.gaps | length) == 0 and .residency_source != null and (has("first_bad") | not) and
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
	if ((rc == DG_FAIL)) && jq -se '.[0].verdict == "PASS" and .[1].verdict == "FAIL" and
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
	if ((rc == DG_FAIL)) && jq -e '.verdict == "FAIL" and .size_seen == .size_expected + 4096 and
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

# controls: the same code on other filesystems with --any-fs.
controls() {
	local tmp ext4 r
	tmp=$(scratch_mem_fs tmpfs tmpfs size=64m)
	ext4=$(scratch_image_fs ext4 ext4 256M)
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
	expect_exit 2 "bad: test hook value" "punch, stale or grow" \
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

# describe_matches: --describe prints exactly the source's header block and
# its tags are the ones the harness parses.
describe_matches() {
	local r src want got
	for r in dio-partial-write dio-append-write; do
		src=$DIOGAP_ROOT/repro/$r.c
		want=$(awk 'f == 1 && /^ \*\// { exit } f == 1 { sub(/^ \* ?/, ""); sub(/^ \*$/, ""); print }
			/^\/\*$/ && !f { f = 1 }' "$src")
		got=$("$BIN/$r" --describe)
		if [[ $got == "$want" ]] && grep -q '^Fixes: [0-9a-f]\{12\} ("' <<<"$got" &&
			grep -q '^Params: ' <<<"$got" && grep -q '^May-hang: no$' <<<"$got"; then
			ok "$r --describe is the source header block"
		else
			not_ok "$r --describe differs from the source header block"
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

# rerun_same: the rerun line of a case reruns the same case (same name,
# same seed, same verdict).
rerun_same() {
	local mnt=$1 line name1 name2
	: >"$JSON"
	"$BIN/dio-partial-write" --size 64K --fault random:3:50 --json "$JSON" "$mnt" >/dev/null
	line=$(jq -r .rerun "$JSON")
	name1=$(jq -r '.name + " " + (.seed|tostring)' "$JSON")
	: >"$JSON"
	# shellcheck disable=SC2086 # the rerun line is a command line: split on purpose
	$line --json "$JSON" >/dev/null
	name2=$(jq -r '.name + " " + (.seed|tostring)' "$JSON")
	if [[ $name1 == "$name2" && $(jq -r .verdict "$JSON") == PASS ]]; then
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
	"$BIN/dio-uring-write" --size 1M --qd 4 --json "$JSON" "$mnt" >/dev/null
	"$BIN/dio-uring-write" --size 1M --qd 4 --chunk 64K --json "$JSON" "$mnt" >/dev/null
	"$BIN/dio-partial-write" --size 1M --buffer anon --json "$JSON" "$mnt" >/dev/null
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
	describe_matches
	controls
	bad_inputs "$mnt"
	rerun_same "$mnt"
	records_say_what_ran "$mnt"
	fail_path "$mnt"
	matrix "$mnt" "btrfs"
	scratch_remount "$mnt" nodatasum
	matrix "$mnt" "btrfs,nodatasum"
	fail_path "$mnt"
	expect_pass "btrfs --nocow partial 1M first" "$BIN/dio-partial-write" --nocow "$mnt"
	link_repros "$mnt"
	echo "$n_pass passed, $n_fail failed"
	((n_fail == 0)) || exit 1
}


# ---- dio-uring-read-fault (ca93e44bfb5f) and dio-fsync-race (cd9253c23aed) --
# This kernel has both fixes: the io_uring read over 2+ extents completes
# whole for every fault shape, the write and fsync loops run to the end
# without error; every bad input exits 2. The FAILs need a planted kernel
# (configs/patches/6.1/, make check-kernels).

# fsync_race_pass NAME ARGS...: exit 0, one PASS record in which both loops
# made calls, the rerun line keeps --seconds.
fsync_race_pass() {
	local name=$1 rc=0 out rec
	shift
	: >"$JSON"
	out=$("$@" --json "$JSON" 2>&1) || rc=$?
	rec=$(tail -n 1 "$JSON")
	if ((rc != 0)); then
		not_ok "$name # exit $rc"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -n 12
	elif ! jq -e '.verdict == "PASS" and .writes > 0 and .fsyncs > 0 and
		.write_errno == 0 and .fsync_errno == 0 and .symptom == null and
		.size_seen == .size_expected and (.rerun | test("--seconds [0-9.]+ "))' >/dev/null <<<"$rec"; then
		not_ok "$name # JSON record disagrees: $rec"
	else
		ok "$name ($(jq -r '"\(.writes) writes, \(.fsyncs) fsyncs"' <<<"$rec"))"
	fi
}

# link_repros MNT
link_repros() {
	local mnt=$1 rf=$BIN/dio-uring-read-fault fr=$BIN/dio-fsync-race page f
	page=$(getconf PAGESIZE)
	for f in first none all stride:2; do
		expect_pass "read-fault 2 extents $f" "$rf" --fault "$f" "$mnt"
	done
	expect_pass "read-fault 32 extents first" "$rf" --size $((32 * page)) "$mnt"
	expect_pass "read-fault 2 extents first, 3 iterations" "$rf" --iterations 3 "$mnt"
	expect_pass "read-fault --nocow 2 extents first" "$rf" --nocow "$mnt"
	if jq -e '.extents >= 2 and .res == .size_expected' "$JSON" >/dev/null; then
		ok "read-fault record: 2+ extents (FIEMAP), res = length"
	else
		not_ok "read-fault record: $(tail -n 1 "$JSON")"
	fi
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

main "$@"
