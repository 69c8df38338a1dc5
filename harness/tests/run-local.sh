#!/usr/bin/env bash
# Tests of harness/run-local on the running kernel: a clean sweep, its
# results layout, malformed sweeps, refused scratch roots, Ctrl-C, SIGKILL
# and a rerun, a full filesystem, --resume.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"

RUN=$DIOGAP_ROOT/harness/run-local
export DIOGAP_SCRATCH=/var/tmp/diogap-test-run-local
T=

setup() {
	need_root
	T=$(mktemp -d /var/tmp/diogap-t.XXXXXX)
	on_exit rm -rf "$T"
	make -s -C "$DIOGAP_ROOT" reproducers
}

# sweep NAME LINES...: a sweep file in the test dir.
sweep() {
	local f=$T/$1.conf
	shift
	printf '%s\n' "$@" >"$f"
	echo "$f"
}

test_clean_run() {
	local rc=0 out=$T/clean n cases
	"$RUN" --sweep "$DIOGAP_ROOT/configs/sweeps/quick.conf" --out "$out" >"$T/clean.log" 2>&1 || rc=$?
	check_eq "quick sweep on the running kernel exits 0" 0 "$rc"
	n=$(jq -s 'map(select(.verdict == "PASS")) | length' "$out/results.jsonl")
	check "quick sweep: some cases PASS ($n)" test "$n" -gt 0
	check_eq "quick sweep: no FAIL" 0 "$(jq -s 'map(select(.verdict == "FAIL")) | length' "$out/results.jsonl")"
	cases=$(grep -c . "$out/cases.tsv")
	check_eq "one results line per case" "$cases" "$(grep -c . "$out/results.jsonl")"
	check "ktap.txt has a plan and totals" grep -q "^1\.\.$cases\$" "$out/ktap.txt"
	check "ktap.txt totals line" grep -q '^# Totals: pass:' "$out/ktap.txt"
	# shellcheck disable=SC2016 # jq code, not shell
	check "meta.json names the kernel" jq -e --arg r "$(uname -r)" '.kernel.release == $r' "$out/meta.json"
	check "summary.md has the counts table" grep -q '^| kernel |' "$out/summary.md"
	check "results lines carry kernel and parameters" \
		jq -se 'all(.kernel != null and .params.size != null)' "$out/results.jsonl"
	check "no mount or loop device left" no_leftovers "$DIOGAP_SCRATCH"
}

test_malformed_sweep() {
	local f rc=0
	f=$(sweep bad 'repro = dio-partial-write' 'size 1M')
	"$RUN" --sweep "$f" --out "$T/bad" >"$T/bad.log" 2>&1 || rc=$?
	check_eq "malformed sweep line exits 2" 2 "$rc"
	check "the message names file and line" grep -q "$f:2: malformed" "$T/bad.log"
	rc=0
	f=$(sweep badval 'repro = dio-partial-write' 'fault = sometimes')
	"$RUN" --sweep "$f" --out "$T/bad" >"$T/bad.log" 2>&1 || rc=$?
	check_eq "nonsense fault pattern in a sweep exits 2" 2 "$rc"
	rc=0
	f=$(sweep outside 'repro = dio-partial-write' "buffer = file:$T/outside")
	"$RUN" --sweep "$f" --out "$T/bad" >"$T/bad.log" 2>&1 || rc=$?
	check_eq "a buffer file outside the scratch filesystem is refused (exit 2)" 2 "$rc"
	check "the message says why" grep -q "would write outside the scratch filesystem" "$T/bad.log"
	check "and nothing was written there" test ! -e "$T/outside"
	sweep_refused "a key for a reproducer the sweep does not run" \
		"bad.conf:3: key 'dio-uring-write.qd': the sweep does not run dio-uring-write" \
		'repro = dio-partial-write' 'size = 64K' 'dio-uring-write.qd = 4'
	sweep_refused "a global key no reproducer of the sweep takes" \
		"bad.conf:2: key 'qd': no reproducer of the sweep takes it" \
		'repro = dio-partial-write' 'qd = 4'
	sweep_refused "a per-reproducer key it does not take (append has no engine)" \
		"bad.conf:2: key 'dio-append-write.engine': dio-append-write takes no engine" \
		'repro = dio-partial-write dio-append-write' 'dio-append-write.engine = psync'
	sweep_refused "mount = ro" \
		"bad.conf:2: mount = ro would make the scratch filesystem read-only" \
		'repro = dio-partial-write' 'mount = ro'
	sweep_refused "an option set with ro in it" \
		"bad.conf:2: mount = nodatasum,ro would make the scratch filesystem read-only" \
		'repro = dio-partial-write' 'mount = defaults nodatasum,ro'
	sweep_refused "mount = norecovery" \
		"bad.conf:2: mount = norecovery would make the scratch filesystem read-only" \
		'repro = dio-partial-write' 'mount = norecovery'
	sweep_refused "expect_splat that is no regex" \
		"bad.conf:2: expect_splat: 'WARNING: (' is not a regular expression" \
		'repro = dio-partial-write' 'expect_splat = WARNING: ('
}

# sweep_refused NAME MESSAGE LINES...: a sweep (bad.conf) run-local must
# refuse at load time, exit 2, with MESSAGE, before anything is mounted.
sweep_refused() {
	local name=$1 msg=$2 f rc=0
	shift 2
	f=$(sweep bad "$@")
	"$RUN" --sweep "$f" --out "$T/bad" >"$T/bad.log" 2>&1 || rc=$?
	if [[ $rc != 2 ]]; then
		not_ok "sweep refused: $name" "wanted exit 2, got $rc"
	elif ! grep -qF -- "$msg" "$T/bad.log"; then
		not_ok "sweep refused: $name" "no '$msg' in: $(tail -n 2 "$T/bad.log")"
	else
		ok "sweep refused: $name (exit 2, names the line)"
	fi
}

# Every case SKIP: exit 4. io_uring cannot register fixed buffers backed by
# a file on btrfs ("buffer = file": a new file on the scratch filesystem).
test_all_skip() {
	local f rc=0 out=$T/skip
	f=$(sweep skip 'repro = dio-uring-write' 'size = 1M' 'fault = all' 'buffer = file' \
		'fixed_buffers = 1' 'qd = 1 4' 'timeout = 60' 'image_size = 256M')
	"$RUN" --sweep "$f" --out "$out" >"$T/skip.log" 2>&1 || rc=$?
	check_eq "a sweep whose every case SKIPs exits 4" 4 "$rc"
	check_eq "both cases SKIP" "SKIP SKIP" "$(jq -r .verdict "$out/results.jsonl" | paste -sd' ')"
	check "the reason names the file-backed buffer" \
		jq -se 'all(.reason | test("file-backed memory"))' "$out/results.jsonl"
	check "no mount or loop device left" no_leftovers "$DIOGAP_SCRATCH"
}

# no_dm_left: no device-mapper device named diogap-* (devtmpfs or not,
# sysfs names them).
no_dm_left() {
	! cat /sys/block/dm-*/dm/name 2>/dev/null | grep -q '^diogap-'
}

# A power-cut case (its reproducer needs dm-flakey): where the host has a
# device mapper with dm-flakey it runs and PASSes (this kernel has the fix),
# where not it SKIPs naming why; either way no dm device is left, and a
# sweep cannot put such a case on a filesystem of several disks.
test_power_cut() {
	local f rc=0 out=$T/cut want
	f=$(sweep cut 'repro = dio-dsync-uring' 'size = 1M' 'chunk = 64K' 'qd = 4' 'timeout = 60' \
		'image_size = 256M')
	"$RUN" --sweep "$f" --out "$out" >"$T/cut.log" 2>&1 || rc=$?
	if [[ -w /dev/mapper/control ]] && "$DIOGAP_BUILD/dg-dm" cleanup >/dev/null 2>&1; then
		want=PASS
		check_eq "a power-cut case with device mapper here exits 0" 0 "$rc"
	else
		want=SKIP
		check_eq "a power-cut case without device mapper exits 4 (SKIP)" 4 "$rc"
		check "  the reason names the missing dm-flakey" \
			jq -se 'all(.reason | test("^no dm-flakey under the scratch: "))' "$out/results.jsonl"
	fi
	check_eq "  the case is $want" "$want" "$(jq -r .verdict "$out/results.jsonl" | paste -sd' ')"
	check "  no diogap dm device left" no_dm_left
	check "  no mount or loop device left" no_leftovers "$DIOGAP_SCRATCH"
	sweep_refused "a power cut over two disks" "needs dm-flakey (a power cut): one disk per filesystem" \
		'repro = dio-dsync-uring' 'profile = raid1' 'timeout = 60'
}

test_refused_scratch() {
	local rc=0
	DIOGAP_SCRATCH=/etc "$RUN" --sweep "$DIOGAP_ROOT/configs/sweeps/quick.conf" \
		--out "$T/x" >"$T/refuse.log" 2>&1 || rc=$?
	check_eq "scratch root /etc is refused (exit 2)" 2 "$rc"
	mkdir -p "$T/notours"
	touch "$T/notours/precious"
	rc=0
	DIOGAP_SCRATCH=$T/notours "$RUN" --sweep "$DIOGAP_ROOT/configs/sweeps/quick.conf" \
		--out "$T/x" >"$T/refuse.log" 2>&1 || rc=$?
	check_eq "a foreign existing directory is refused (exit 2)" 2 "$rc"
	check "and its files are untouched" test -f "$T/notours/precious"
}

# wait_mounted: until run-local has its scratch btrfs mounted (max 60 s).
wait_mounted() {
	local i
	for ((i = 0; i < 600; i++)); do
		grep -qF " $DIOGAP_SCRATCH/" /proc/mounts && return 0
		sleep 0.1
	done
	return 1
}

test_sigint() {
	local pid rc=0
	# Job control on: the run gets its own process group and, unlike a plain
	# background job, does not start with SIGINT ignored; Ctrl-C on a
	# terminal signals the whole group, so does this test. env restores the
	# default disposition: under `nohup make check &` everything starts with
	# SIGINT ignored, and bash cannot trap a signal ignored on entry.
	set -m
	env --default-signal=INT "$RUN" --sweep "$DIOGAP_ROOT/configs/sweeps/default.conf" --out "$T/int" >"$T/int.log" 2>&1 &
	pid=$!
	set +m
	check "run-local mounts its scratch btrfs" wait_mounted
	kill -INT -- "-$pid"
	wait "$pid" || rc=$?
	check_eq "SIGINT ends run-local with 130" 130 "$rc"
	check "after SIGINT: no mount or loop device left" no_leftovers "$DIOGAP_SCRATCH"
	check "after SIGINT: no scratch run dir left" \
		test -z "$(find "$DIOGAP_SCRATCH" -maxdepth 1 -name 'run.*' 2>/dev/null)"
	check "after SIGINT: no runner temporary dir left in ${TMPDIR:-/tmp}" \
		test ! -e "${TMPDIR:-/tmp}/diogap-case.$pid"
}

test_sigkill_then_rerun() {
	local pid rc=0 f
	"$RUN" --sweep "$DIOGAP_ROOT/configs/sweeps/default.conf" --out "$T/kill" >"$T/kill.log" 2>&1 &
	pid=$!
	wait_mounted || true
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	check "SIGKILL leaves the mount behind (precondition)" \
		grep -qF " $DIOGAP_SCRATCH/" /proc/mounts
	# nodatasum: the write stays direct (a default mount on v6.15+ SKIPs)
	f=$(sweep one 'repro = dio-partial-write' 'size = 64K' 'fault = all' 'image_size = 256M' \
		'mount = nodatasum')
	"$RUN" --sweep "$f" --out "$T/rerun" >"$T/rerun.log" 2>&1 || rc=$?
	check_eq "the rerun passes" 0 "$rc"
	check "the rerun says it cleaned up the killed run" \
		grep -q 'cleaning up after a run that was killed' "$T/rerun.log"
	check "after the rerun: no mount or loop device left" no_leftovers "$DIOGAP_SCRATCH"
}

test_full_fs() {
	local f rc=0
	f=$(sweep full 'repro = dio-partial-write' 'size = 512M' 'fault = all' 'image_size = 256M')
	"$RUN" --sweep "$f" --out "$T/full" >"$T/full.log" 2>&1 || rc=$?
	check_eq "a full scratch filesystem exits 2 (BROKEN)" 2 "$rc"
	check_eq "and the case is BROKEN, not FAIL" BROKEN "$(jq -r .verdict "$T/full/results.jsonl")"
}

test_resume() {
	local rc=0 out=$T/clean
	"$RUN" --sweep "$DIOGAP_ROOT/configs/sweeps/quick.conf" --resume "$out" >"$T/resume.log" 2>&1 || rc=$?
	check_eq "--resume of a finished run exits 0" 0 "$rc"
	check_eq "--resume runs no case again" 0 "$(grep -c '^S ' "$out/stream.txt" || true)"
	check_eq "--resume keeps every result" "$(grep -c . "$out/cases.tsv")" "$(grep -c . "$out/results.jsonl")"
}

main() {
	setup
	test_malformed_sweep
	test_refused_scratch
	test_clean_run
	test_all_skip
	test_power_cut
	test_resume
	test_full_fs
	test_sigint
	test_sigkill_then_rerun
	t_done
}

main "$@"
