#!/usr/bin/env bash
# Tests of build/dg-case (repro/tools/dg-case.c), the case runner's helper:
# the records it appends for a case (S J O K E), exit codes and signals
# passed through, the timeout (kill, E "timeout", exit 3), a program that
# cannot run, the kernel log of the case and only of the case, and the
# results-disk push read back the way harness/lib/vm.sh reads it.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"
# shellcheck source=harness/lib/vm.sh
. "$DIOGAP_ROOT/harness/lib/vm.sh"

DGC=$DIOGAP_BUILD/dg-case
T=

setup() {
	need_root
	make -s -C "$DIOGAP_ROOT" tools
	T=$(mktemp -d /tmp/diogap-t-dgcase.XXXXXX)
	on_exit rm -rf "$T"
}

# prog NAME BODY: an executable script $T/NAME running BODY.
prog() {
	printf '#!/bin/sh\n%s\n' "$2" >"$T/$1"
	chmod +x "$T/$1"
}

# run_case ID TIMEOUT PROG...: dg-case run into $T/stream; DGC_RC its exit.
run_case() {
	local id=$1 to=$2
	shift 2
	DGC_RC=0
	"$DGC" run --stream "$T/stream" --id "$id" --seq 1 --timeout "$to" --json "$T/json" \
		--out "$T/out" --token test -- "$@" >"$T/dgc.err" 2>&1 || DGC_RC=$?
}

# rec TAG ID: the payloads of ID's TAG records.
rec() { awk -v t="$1" -v id="$2" '$1 == t && $2 == id { sub(/^[^ ]+ [^ ]+ ?/, ""); print }' "$T/stream"; }

test_records() {
	prog ok "printf '{\"verdict\":\"PASS\"}\\n{\"verdict\":\"FAIL\"}\\n' >\"\$1\"; printf 'line one\\r\\nline two\\n'; echo to-stderr >&2; exit 1"
	run_case c1 10 "$T/ok" "$T/json"
	check_eq "a case that ran to its end: exit 0" 0 "$DGC_RC"
	check "S record with a boot-time clock" grep -Eq '^S c1 [0-9]+$' "$T/stream"
	check_eq "one J record per JSON line, in order" '{"verdict":"PASS"}|{"verdict":"FAIL"}' \
		"$(rec J c1 | paste -sd'|')"
	check_eq "O records: stdout and stderr, carriage returns dropped" \
		'line one|line two|to-stderr' "$(rec O c1 | paste -sd'|')"
	check "E record: the program's exit code and its time" grep -Eq '^E c1 1 [0-9]+$' "$T/stream"
	check_eq "E is the case's last record" "E" "$(tail -n 1 "$T/stream" | cut -c1)"

	prog sig 'kill -TERM $$'
	run_case c2 10 "$T/sig"
	check "killed by a signal: exit 128+signal (143)" grep -Eq '^E c2 143 [0-9]+$' "$T/stream"

	run_case c3 10 "$T/does-not-exist"
	check "a program that cannot run: exit 127" grep -Eq '^E c3 127 [0-9]+$' "$T/stream"
	check "and why, in its output" grep -q '^O c3 dg-case: cannot run' "$T/stream"
	check_eq "no J record when the program wrote no JSON" "" "$(rec J c3)"
}

test_timeout() {
	local t0 el
	prog slow "echo \$\$ >'$T/slow.pid'; echo started; exec sleep 60"
	t0=$(vm_now_ms)
	run_case slow 2 "$T/slow"
	el=$(($(vm_now_ms) - t0))
	check_eq "a case past its timeout: dg-case exits 3" 3 "$DGC_RC"
	check "E record says timeout, exit 2 (BROKEN)" grep -Eq '^E slow 2 [0-9]+ timeout$' "$T/stream"
	check "it waited the timeout (2 s; took $el ms)" test "$el" -ge 2000
	check "and not much longer (took $el ms)" test "$el" -lt 10000
	check "the output before the timeout is kept" grep -q '^O slow started$' "$T/stream"
	check "the program was killed (and reaped)" bash -c "! kill -0 $(<"$T/slow.pid") 2>/dev/null"
}

test_kmsg() {
	local before="diogap-test before $$.$RANDOM" during="diogap-test during $$.$RANDOM"
	[[ -w /dev/kmsg ]] || {
		not_ok "kernel log: /dev/kmsg is not writable here"
		return 0
	}
	echo "$before" >/dev/kmsg
	prog klog "echo '$during' >/dev/kmsg"
	run_case k1 10 "$T/klog"
	check "K record: a kernel log line written during the case" \
		grep -Eq "^K k1 \[ *[0-9]+\.[0-9]{6}\] $during\$" "$T/stream"
	check "no K record for a line written before it" bash -c "! grep -q '$before' '$T/stream'"
	# Its own marker only: another run on this machine may log its markers
	# while the case runs, and those are kernel log lines of the case.
	check "the case's marker is in the kernel log, not in its records" \
		bash -c "dmesg | grep -q 'diogap: case-begin test.1 k1' && ! grep -q 'case-begin test.1 k1' '$T/stream'"
}

# The push, read back with run-vm's own reader (harness/lib/vm.sh).
test_push() {
	local img=$T/results.img len rc=0
	printf '%s\nlen 0\n' "$VM_MAGIC" >"$img"
	truncate -s 64M "$img"
	printf 'B - test\n' >"$T/pstream"
	"$DGC" push --stream "$T/pstream" --push "$img"
	check_eq "push: the header names the stream's length" 9 "$(vm_channel_len "$img")"
	prog big "head -c 3000 /dev/zero | tr '\\\\0' x; echo"
	"$DGC" run --stream "$T/pstream" --id p1 --seq 1 --timeout 10 --json "$T/json" \
		--out "$T/out" --push "$img" -- "$T/big"
	len=$(vm_channel_len "$img")
	check_eq "run --push: the whole stream is on the disk" "$(stat -c %s "$T/pstream")" "$len"
	vm_channel_read "$img" "$len" "$T/back"
	check "read back it equals the stream (a record across sectors)" cmp -s "$T/pstream" "$T/back"
	printf 'dmesg line\n' >"$T/dmesg"
	"$DGC" push --stream "$T/pstream" --push "$img" --dmesg "$T/dmesg"
	vm_channel_dmesg "$img" "$T/dmesg.back"
	check "--dmesg: the kernel log area holds it" cmp -s "$T/dmesg" "$T/dmesg.back"
	check_eq "and the stream length is kept" "$len" "$(vm_channel_len "$img")"
	truncate -s 1M "$T/not-results.img"
	"$DGC" push --stream "$T/pstream" --push "$T/not-results.img" 2>"$T/push.err" || rc=$?
	check_eq "a disk without the header: exit 2" 2 "$rc"
	check "and a message naming it" grep -q 'is not a results disk' "$T/push.err"
	check "the disk without the header is left alone" \
		bash -c "! grep -q . <(tr -d '\\\\0' <'$T/not-results.img')"
}

test_usage() {
	local rc=0
	"$DGC" run --stream "$T/x" --id a -- /bin/true 2>/dev/null || rc=$?
	check_eq "run without --seq/--timeout/--json/--out: exit 2" 2 "$rc"
	rc=0
	"$DGC" run --stream "$T/x" --id a --seq 1 --timeout 0 --json j --out o -- /bin/true \
		2>/dev/null || rc=$?
	check_eq "--timeout 0: exit 2" 2 "$rc"
	rc=0
	"$DGC" frobnicate 2>/dev/null || rc=$?
	check_eq "unknown command: exit 2" 2 "$rc"
}

# run_cases (harness/lib/run-cases.sh) around a dg-case that breaks: the
# case still gets an E record (BROKEN), and without dg-case at all the
# stream says why (Z). mount and umount are stubs first in PATH: nothing
# is mounted.
test_runner_errors() {
	local bin=$T/bin stub=$T/stub
	mkdir -p "$bin" "$stub"
	printf '#!/bin/sh
exit 0
' >"$stub/mount"
	printf '#!/bin/sh
exit 0
' >"$stub/umount"
	chmod +x "$stub/mount" "$stub/umount"
	printf 'c1\tdio-partial-write\tdefaults\t30\t-\t--size 64K\n' >"$T/cases.tsv"
	prog bin/dg-case 'echo "dg-case: broken on purpose" >&2; exit 2'
	mkdir -p "$T/tmp"
	TMPDIR=$T/tmp PATH=$stub:$PATH bash -c '. "$1"; run_cases "$2" "$3" /dev/null "$4" "$5"' _ \
		"$DIOGAP_ROOT/harness/lib/run-cases.sh" "$T/cases.tsv" "$bin" "$T/mnt" "$T/rstream" \
		>/dev/null 2>&1 || true
	check "a dg-case that fails: the case ends BROKEN (E 2 runner-error)" \
		grep -qx 'E c1 2 0 runner-error' "$T/rstream"
	check "and the stream is closed (D)" grep -q '^D ' "$T/rstream"
	rm -f "$bin/dg-case" "$T/rstream"
	mkdir -p "$T/tmp"
	TMPDIR=$T/tmp PATH=$stub:$PATH bash -c '. "$1"; run_cases "$2" "$3" /dev/null "$4" "$5"' _ \
		"$DIOGAP_ROOT/harness/lib/run-cases.sh" "$T/cases.tsv" "$bin" "$T/mnt" "$T/rstream" || true
	check "no dg-case: the stream says so (Z) and runs nothing" \
		bash -c "grep -q '^Z - no $bin/dg-case' '$T/rstream' && ! grep -q '^S ' '$T/rstream'"
	check "run_cases leaves no temporary directory behind" \
		test -z "$(find "$T/tmp" -mindepth 1 2>/dev/null)"
}

main() {
	setup
	test_records
	test_timeout
	test_kmsg
	test_push
	test_usage
	test_runner_errors
	t_done
}

main "$@"
