#!/usr/bin/env bash
# Tests of how a case's verdict is made (harness/lib/results.jq): stub
# reproducers (tiny shell scripts writing JSON records to their --json file
# and exiting with a chosen code) run through the real runner
# (harness/lib/run-cases.sh and build/dg-case) and results.sh, and the
# verdict must be the worse of the two witnesses, the exit code and the
# records, with a reason for every BROKEN and SKIP; a FAIL is sticky; a
# kernel splat is a FAIL unless expected; a failing flush is not silent.
# Then the expectations (harness/lib/expect.sh): misspelt MATCH keys, mount=,
# expected splats, unexercised PASS rules.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"
# shellcheck source=harness/lib/results.sh
. "$DIOGAP_ROOT/harness/lib/results.sh"
# shellcheck source=harness/lib/expect.sh
. "$DIOGAP_ROOT/harness/lib/expect.sh"
# shellcheck source=harness/lib/fsck.sh
. "$DIOGAP_ROOT/harness/lib/fsck.sh"

T=
# A kernel log line that is a splat, and one only this test writes.
SPLAT="WARNING: test splat from diogap harness/tests/verdicts.sh"

setup() {
	need_root
	make -s -C "$DIOGAP_ROOT" tools
	T=$(mktemp -d /tmp/diogap-t-verdicts.XXXXXX)
	[[ -n ${KEEP:-} ]] || on_exit rm -rf "$T"
	mkdir -p "$T/bin" "$T/stub" "$T/tmp"
	ln -s "$DIOGAP_BUILD/dg-case" "$T/bin/dg-case"
	# mount and umount stubs first in PATH: nothing is mounted.
	printf '#!/bin/sh\nexit 0\n' >"$T/stub/mount"
	printf '#!/bin/sh\nexit 0\n' >"$T/stub/umount"
	chmod +x "$T/stub/mount" "$T/stub/umount"
	stub_repro
}

# stub_repro: $T/bin/stub --mode MODE --iterations N --json FILE DIR (any
# other argument: exit 2), a
# reproducer that does what MODE says: records (p PASS, f FAIL, s SKIP,
# e FAIL eio-read), kernel log lines, an exit code, or a hang.
stub_repro() {
	cat >"$T/bin/stub" <<EOF
#!/bin/sh
mode= n=1 json= dirs=0
while [ \$# -gt 0 ]; do
	case "\$1" in
	--mode) mode=\$2; shift ;;
	--iterations) n=\$2; shift ;;
	--json) json=\$2; shift ;;
	-*) echo "stub: unknown option \$1" >&2; exit 2 ;;
	*) dirs=\$((dirs + 1)) ;;
	esac
	shift
done
# One target directory, nothing else (columns 7 and 8 must not reach the args).
[ "\$dirs" = 1 ] || { echo "stub: \$dirs operands" >&2; exit 2; }
rec() {
	case "\$1" in
	p) v=PASS d=null s=null ;;
	f) v=FAIL d='"data lost at [0, 4096)"' s='"data"' ;;
	e) v=FAIL d='"read-back: EIO"' s='"eio-read"' ;;
	s) v=SKIP d='"precondition not met: stub"' s=null ;;
	esac
	printf '{"verdict":"%s","diag":%s,"symptom":%s,"iteration":1,"iterations":%s}\n' \
		"\$v" "\$d" "\$s" "\$n" >>"\$json"
}
case "\$mode" in
pass) rec p; exit 0 ;;
pass3) rec p; rec p; rec p; exit 0 ;;
fail-exit0) rec f; exit 0 ;;
none-exit0) exit 0 ;;
few-exit0) rec p; exit 0 ;;
pass-exit1) rec p; exit 1 ;;
fail-exit2) rec f; exit 2 ;;
fail-hang) rec f; exec sleep 60 ;;
skip) rec s; exit 4 ;;
skip-noreason) printf '{"verdict":"SKIP","iterations":1}\n' >>"\$json"; exit 4 ;;
die) echo 'stub.c:123: madvise: Function not implemented' >&2; exit 2 ;;
splat) echo '$SPLAT' >/dev/kmsg; rec p; exit 0 ;;
foreign) echo 'BTRFS warning (device not-ours): csum failed root 5 ino 257 off 0 (diogap test)' >/dev/kmsg
	rec p; exit 0 ;;
eio) echo 'BTRFS warning (device stub): csum failed root 5 ino 257 off 0 (diogap test)' >/dev/kmsg
	rec e; exit 1 ;;
esac
exit 2
EOF
	chmod +x "$T/bin/stub"
}

# case_line ID MODE [ITERATIONS [EXPECT_SPLAT [TIMEOUT]]]: a line of $T/cases.tsv.
case_line() {
	printf '%s\tstub\tdefaults\t%s\t0\t--mode %s --iterations %s\t-@1\t%s\n' \
		"$1" "${5:-10}" "$2" "${3:-1}" "${4:-}"
}

# run_stub_cases OUT [FLUSH_RC]: run $T/cases.tsv with the runner, results
# in OUT. With FLUSH_RC, the caller's dg_flush fails with that code.
run_stub_cases() {
	local out=$1 flush_rc=${2:-} rc=0
	DG_RESULTS_DEV=stub # the scratch device of these cases
	results_init "$out" "$T/cases.tsv"
	: >"$out/stream.txt"
	(
		# shellcheck source=harness/lib/run-cases.sh
		. "$DIOGAP_ROOT/harness/lib/run-cases.sh"
		if [[ -n $flush_rc ]]; then
			dg_flush() { return "$flush_rc"; }
		else
			dg_flush() { results_update "$out" "$out/stream.txt" local; }
		fi
		TMPDIR=$T/tmp PATH=$T/stub:$PATH run_cases "$T/cases.tsv" "$T/bin" /dev/null \
			"$T/mnt" "$out/stream.txt"
	) 2>"$out/runner.err" || rc=$?
	results_finish "$out" "$out/stream.txt" local "run ended"
	return "$rc"
}

# field OUT ID FIELD: one field of case ID's results line ("" for null).
field() { jq -r --arg id "$2" "select(.case == \$id) | .$3 // \"\"" "$1/results.jsonl"; }

# verdict_is NAME OUT ID VERDICT [REASON_REGEX]
verdict_is() {
	local name=$1 out=$2 id=$3 want=$4 re=${5:-} v why
	v=$(field "$out" "$id" verdict)
	why=$(field "$out" "$id" reason)
	if [[ $v != "$want" ]]; then
		not_ok "$name" "wanted $want, got '$v' (reason: $why)"
	elif [[ -n $re ]] && ! grep -Eq -- "$re" <<<"$why"; then
		not_ok "$name" "reason '$why' does not match /$re/"
	else
		ok "$name"
	fi
}

test_two_witnesses() {
	local out=$T/w
	{
		case_line pass pass
		case_line pass3 pass3 3
		case_line fail-exit0 fail-exit0
		case_line none-exit0 none-exit0
		case_line few-exit0 few-exit0 3
		case_line pass-exit1 pass-exit1
		case_line fail-exit2 fail-exit2
		case_line fail-hang fail-hang 1 '' 2
		case_line skip skip
		case_line skip-noreason skip-noreason
		case_line die die
	} >"$T/cases.tsv"
	run_stub_cases "$out" || true
	check_eq "one results line per case" 11 "$(grep -c . "$out/results.jsonl")"
	verdict_is "exit 0 + a PASS record: PASS" "$out" pass PASS
	verdict_is "exit 0 + 3 PASS records of 3: PASS" "$out" pass3 PASS
	verdict_is "exit 0 + a FAIL record: FAIL" "$out" fail-exit0 FAIL \
		'^exit 0 but a FAIL record: data lost'
	verdict_is "exit 0 + no record: BROKEN" "$out" none-exit0 BROKEN '^exit 0 but 0 of 1 records$'
	verdict_is "exit 0 + 1 record of 3: BROKEN" "$out" few-exit0 BROKEN '^exit 0 but 1 of 3 records$'
	verdict_is "exit 1 + only PASS records: BROKEN" "$out" pass-exit1 BROKEN \
		'^exit 1 but no FAIL record'
	verdict_is "exit 2 after a FAIL record: FAIL, reason keeps both" "$out" fail-exit2 FAIL \
		'^data lost.*; then exit 2$'
	verdict_is "timeout after a FAIL record: FAIL, reason keeps both" "$out" fail-hang FAIL \
		'^data lost.*; then exit 2 \(timeout\)$'
	verdict_is "exit 4 + a SKIP record: SKIP with its reason" "$out" skip SKIP \
		'^precondition not met: stub$'
	verdict_is "a SKIP without a diag still has a reason" "$out" skip-noreason SKIP '.'
	verdict_is "exit 2 with no record: BROKEN, the reason is what it said last" "$out" die BROKEN \
		'^exit 2: stub\.c:123: madvise: Function not implemented$'
	check "every BROKEN and SKIP case has a reason" jqe "$out/results.jsonl" -s \
		'all(.[] | select(.verdict == "BROKEN" or .verdict == "SKIP"); .reason | type == "string" and length > 0)'
	check "records carry iterations and count" jqe "$out/results.jsonl" -s \
		'map(select(.case == "few-exit0"))[0] | .iterations == 3 and .records == 1'
	check_eq "the run's exit code comes from the verdicts (FAIL)" 1 "$(results_exit "$out")"
	check "ktap.txt: exit 0 + FAIL record is 'not ok'" grep -q '^not ok 3 fail-exit0$' "$out/ktap.txt"
}

test_splats() {
	local out=$T/s
	[[ -w /dev/kmsg ]] || {
		not_ok "splats: /dev/kmsg is not writable here"
		return 0
	}
	{
		case_line splat splat
		case_line splat-expected splat 1 'WARNING: test splat'
		case_line splat-other-expected splat 1 'BUG: something else'
		case_line eio eio
		case_line foreign foreign
	} >"$T/cases.tsv"
	run_stub_cases "$out" || true
	verdict_is "a WARNING in the case's kernel log under PASS records: FAIL" "$out" splat FAIL \
		"^$SPLAT\$"
	check "... marked as made by the splat" jqe "$out/results.jsonl" -s \
		'map(select(.case == "splat"))[0] | .splat_fail and .verdict_before_splat == "PASS"'
	verdict_is "the same splat with expect_splat matching it: PASS" "$out" splat-expected PASS
	verdict_is "expect_splat that does not match it: FAIL" "$out" splat-other-expected FAIL \
		'^WARNING: test splat'
	verdict_is "a read-back EIO record: FAIL" "$out" eio FAIL '^read-back: EIO$'
	check "... with the case's 'csum failed' kernel lines attached" jqe "$out/results.jsonl" -s \
		'map(select(.case == "eio"))[0] | .runs[0].csum_lines | length == 1 and (.[0] | test("csum failed"))'
	verdict_is "'csum failed' of another device (a shared host): not the case's, PASS" \
		"$out" foreign PASS
}

# expect_splat in a sweep: carried as the case list's 7th column, the
# per-reproducer value over the global one; the runner reads past it.
test_sweep_carries_expect_splat() {
	local f=$T/splat.conf cases
	printf '%s\n' 'repro = dio-partial-write dio-append-write' 'size = 64K' \
		'expect_splat = WARNING: .*foo' 'dio-append-write.expect_splat = BUG: bar' >"$f"
	cases=$(bash -c '. "$1/harness/lib/common.sh"; . "$1/harness/lib/sweep.sh"
		sweep_load "$2" && sweep_cases' _ "$DIOGAP_ROOT" "$f")
	check_eq "expect_splat: the global regex in column 8" 'WARNING: .*foo' \
		"$(awk -F'\t' '$2 == "dio-partial-write" { print $8 }' <<<"$cases")"
	check_eq "expect_splat: REPRO.expect_splat for that reproducer" 'BUG: bar' \
		"$(awk -F'\t' '$2 == "dio-append-write" { print $8 }' <<<"$cases")"
}

# A dg_flush that fails: the runner goes on (every case runs, the stream is
# closed), says so on stderr and in Z records, and the run ends BROKEN.
test_flush_fails() {
	local out=$T/f rc=0
	{
		case_line pass pass
		case_line pass3 pass3 3
	} >"$T/cases.tsv"
	run_stub_cases "$out" 3 || rc=$?
	check_eq "a failing dg_flush does not stop the runner" 0 "$rc"
	check "every case still ran" grep -q '^E pass3 0 ' "$out/stream.txt"
	check "and the stream is closed (D)" grep -q '^D ' "$out/stream.txt"
	check "a Z record names the case whose flush failed" \
		grep -q '^Z pass recording failed: dg_flush exit 3$' "$out/stream.txt"
	check "and a line on stderr" grep -q 'recording failed: dg_flush exit 3 (case pass)' "$out/runner.err"
	check "the case is BROKEN, with the reason" jqe "$out/results.jsonl" -s \
		'map(select(.case == "pass"))[0] | .verdict == "BROKEN" and (.reason | test("recording failed"))'
	check "runner-errors.txt lists them" grep -q 'recording failed' "$out/runner-errors.txt"
	check "summary.md says the run is BROKEN" grep -q '^## Runner errors' "$out/summary.md"
	check_eq "the run exits 2" 2 "$(results_exit "$out")"
}

# A results line for the expectations tests.
res() {
	jq -nc --arg c "$1" --arg r "$2" --arg m "$3" --arg v "$4" --argjson p "$5" \
		--argjson sf "${6:-false}" --arg vb "${7:-}" \
		'{case: $c, repro: $r, mount: $m, verdict: $v, params: $p, gaps: [], predicted: [],
		  reason: "", splat_fail: $sf, verdict_before_splat: (if $vb == "" then null else $vb end)}'
}

test_expectations() {
	local exp=$T/v.exp rc=0 rules
	mkdir -p "$T/e/v1"
	printf 'v1  dio-uring-write  fixed_buffers=true  PASS\n' >"$exp"
	(expect_rules "$exp") >/dev/null 2>"$T/e.err" || rc=$?
	check "a misspelt MATCH key (fixed_buffers=) is an error" test "$rc" -ne 0
	check "naming file:line" grep -q "$exp:1: .*fixed_buffers" "$T/e.err"
	cat >"$exp" <<'EOF'
# header
v1  dio-partial-write  mount=nodatasum  SKIP
v1  dio-partial-write  *                PASS+splat
v1  dio-uring-write    fault=none       PASS
v1  *                  *                PASS
EOF
	rules=$(expect_rules "$exp")
	{
		res a dio-partial-write nodatasum,noatime SKIP '{"fault":"first"}'
		res b dio-partial-write defaults FAIL '{"fault":"first"}' true PASS
		res c dio-append-write defaults FAIL '{"fault":"first"}' true PASS
	} >"$T/e/v1/results.jsonl"
	rc=0
	expect_compare "$exp" "$T/e" v1 >"$T/e.out" 2>&1 || rc=$?
	check "mount=OPT matches a case whose mount option set has OPT" \
		jqe "$T/e/v1/expect.jsonl" -s 'map(select(.case == "a"))[0] | .ok and .rule == 2'
	check "PASS+splat: a FAIL made by a splat alone is as expected" \
		jqe "$T/e/v1/expect.jsonl" -s 'map(select(.case == "b"))[0].ok'
	check "plain PASS: a splat's FAIL is a mismatch" \
		jqe "$T/e/v1/expect.jsonl" -s 'map(select(.case == "c"))[0].ok | not'
	check "a PASS rule no case matched is reported" \
		grep -q '^# unexercised rule: v1: line 4: dio-uring-write fault=none PASS' "$T/e.out"
	check_eq "and the mismatch fails the comparison" 1 "$rc"
}

# test_fsck_after_cuts: the image check after a VM (lib/fsck.sh, run-vm):
# a cut filesystem whose image btrfs check rejects (here not a btrfs at
# all) makes its PASS cases FAIL with the reason, its FAIL stays, a case of
# another filesystem and a clean image keep their PASS; ktap.txt follows.
test_fsck_after_cuts() {
	local o=$T/fsck d=$T/fsck-disks
	mkdir -p "$o" "$d"
	ensure_pkgs btrfs-progs
	truncate -s 256M "$d/disk-1.img" "$d/disk-2.img" "$d/disk-3.img"
	mkfs.btrfs -q -f "$d/disk-2.img" >/dev/null
	printf '%s\t%s\t%s\t60\t0\t\t%s\t\n' \
		cut-pass r defaults -@1+flakey cut-fail r defaults -@1+flakey \
		plain-pass r defaults -@3 clean-pass r defaults -@2+flakey >"$o/cases.tsv"
	printf '{"case":"%s","verdict":"%s","reason":null}\n' cut-pass PASS cut-fail FAIL \
		plain-pass PASS clean-pass PASS >"$o/results.jsonl"
	printf 'KTAP version 1\n1..4\n' >"$o/ktap.txt"
	fsck_cut_disks "$o" "$d" "done" 2>/dev/null
	check "fsck: one line per cut filesystem" test "$(grep -c . "$o/fsck.txt")" = 2
	check "fsck: the clean image is clean" grep -qP '^-@2\t.*\t0\tclean$' "$o/fsck.txt"
	check_eq "fsck: the bad image's cases are judged" "cut-fail cut-pass " \
		"$(cut -f1 "$o/fsck-fail.tsv" | sort | tr '\n' ' ')"
	results_amend "$o"
	check "fsck: a PASS on the bad image becomes FAIL, saying btrfs check" \
		jqe "$o/results.jsonl" -s '.[0].verdict == "FAIL" and .[0].fsck_fail and (.[0].reason | startswith("btrfs check of the filesystem after"))'
	check "fsck: a FAIL there stays FAIL with its own reason" jqe "$o/results.jsonl" -s '.[1].verdict == "FAIL" and .[1].reason == null'
	check "fsck: another filesystem's PASS stays" jqe "$o/results.jsonl" -s '.[2].verdict == "PASS" and .[3].verdict == "PASS"'
	check "fsck: ktap.txt says not ok for the judged case" grep -qx 'not ok 1 cut-pass' "$o/ktap.txt"
	check "fsck: ... ok for the others" grep -qx 'ok 4 clean-pass' "$o/ktap.txt"
	rm -f "$o/fsck.txt" "$o/fsck-fail.tsv"
	fsck_cut_disks "$o" "$d" timeout 2>/dev/null
	check "fsck: after a VM that did not end cleanly nothing is judged" \
		test ! -e "$o/fsck-fail.tsv" -a "$(grep -c 'not checked' "$o/fsck.txt")" = 2
}

main() {
	setup
	test_two_witnesses
	test_splats
	test_sweep_carries_expect_splat
	test_flush_fails
	test_expectations
	test_fsck_after_cuts
	t_done
}

main "$@"
