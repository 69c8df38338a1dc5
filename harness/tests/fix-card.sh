#!/usr/bin/env bash
# Tests of harness/fix-card on results made up to cover every cell state:
# fixed, missing, open upstream, not seen, unknown (SKIP, another
# signature, not run, no reproducer), and a chain file with mistakes.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"

CARD=$DIOGAP_ROOT/harness/fix-card
T=

# case_line KERNEL REPRO VERDICT MOUNT [RUN_JSON] [REASON]: one results.jsonl
# line, as results.jq writes them (only the fields the card reads).
case_line() {
	local run=${5:-'{"verdict": "PASS"}'}
	jq -nc --arg k "$1" --arg r "$2" --arg v "$3" --arg m "$4" --argjson run "$run" \
		--arg why "${6:-}" '{case: "\($r).\($m).\($v)", kernel: "6.1.0", kernel_label: $k,
		repro: $r, mount: $m, params: {}, verdict: $v,
		reason: (if $why == "" then null else $why end),
		gaps: ([$run.gaps? // empty | .[]]), splats: [], runs: [$run]}'
}

setup() {
	ensure_pkgs jq
	T=$(mktemp -d /tmp/diogap-t.XXXXXX)
	on_exit rm -rf "$T"
	local hole='{"verdict": "FAIL", "symptom": "data", "gaps": [[0, 4096, "zero"]], "size_seen": 8192, "size_expected": 8192}'
	local eio='{"verdict": "FAIL", "symptom": "eio-read", "size_seen": 0, "size_expected": 0}'
	# after a power cut the lost range reads as zeros, size right: lost, not hole
	local lost='{"verdict": "FAIL", "symptom": "lost-after-cut", "gaps": [[65536, 131072, "zero"]], "size_seen": 1048576, "size_expected": 1048576}'
	mkdir -p "$T/run"
	{
		case_line bad dio-partial-write FAIL defaults "$hole" "1 bad sector, zeros"
		case_line bad dio-partial-write PASS defaults
		case_line bad dio-append-write FAIL defaults "$hole" "zeros"
		case_line bad dio-append-write PASS defaults
		case_line bad dio-unstable-read FAIL defaults "$eio" "read back: EIO"
		case_line bad dio-self-mmap-write SKIP defaults '{"verdict": "SKIP"}' "write went buffered"
		case_line bad dio-dsync-uring FAIL defaults "$lost" "16 of 2048 promised sectors lost after the cut"
		case_line good dio-dsync-uring PASS defaults
		case_line good dio-partial-write PASS defaults
		case_line good dio-append-write PASS defaults
		case_line good dio-unstable-read PASS defaults
		case_line good dio-self-mmap-write PASS defaults
		case_line good dio-self-mmap-write SKIP defaults '{"verdict": "SKIP"}' "write went buffered"
	} >"$T/run/results.jsonl"
}

# cell LINK KERNEL: the state the card gave.
cell() {
	jq -r --arg l "$1" --arg k "$2" 'select(.link == $l and .kernel == $k) | .state' \
		"$T/run/fix-card.jsonl"
}

test_states() {
	local rc=0
	"$CARD" "$T/run" >"$T/card.out" 2>&1 || rc=$?
	check_eq "fix-card exits 0" 0 "$rc"
	check_eq "a hole FAIL: partial-hole missing" missing "$(cell partial-hole bad)"
	check_eq "a lost-after-cut FAIL (zeros, size right): lost-dsync missing" missing "$(cell lost-dsync bad)"
	check_eq "  and its PASS: lost-dsync fixed" fixed "$(cell lost-dsync good)"
	check "  with its evidence (count and first case)" jqe "$T/run/fix-card.jsonl" -s \
		'any(.[]; .link == "partial-hole" and .kernel == "bad" and (.evidence | test("^1/2 cases FAIL \\(hole\\); first: dio-partial-write")))'
	check_eq "all PASS: partial-hole fixed" fixed "$(cell partial-hole good)"
	check_eq "a FAIL with another link's signature: append unknown" unknown "$(cell append bad)"
	check "  saying so" jqe "$T/run/fix-card.jsonl" -s \
		'any(.[]; .link == "append" and .kernel == "bad" and (.evidence | test("another signature \\(hole\\)")))'
	check_eq "EIO where no fix exists: unstable-read open upstream" "open upstream" "$(cell unstable-read bad)"
	check_eq "no FAIL where no fix exists: not seen (never fixed)" "not seen" "$(cell unstable-read good)"
	check_eq "PASS and SKIP: deadlock fixed" fixed "$(cell deadlock good)"
	check "  naming the SKIP that did not test it" jqe "$T/run/fix-card.jsonl" -s \
		'any(.[]; .link == "deadlock" and .kernel == "good" and (.evidence | test("^1/2 cases PASS, 1 SKIP \\(did not test it: write went buffered")))'
	check_eq "SKIP only: deadlock unknown" unknown "$(cell deadlock bad)"
	check "  with the SKIP's reason" jqe "$T/run/fix-card.jsonl" -s \
		'any(.[]; .link == "deadlock" and .kernel == "bad" and (.evidence | test("1 SKIP; e.g. write went buffered")))'
	check_eq "no case of the sweep: unknown" unknown "$(cell unstable-write-csum good)"
	check_eq "no reproducer: unknown" unknown "$(cell fsync-race good)"
	check "the card is a table with one column per kernel" grep -q '^| link | fix | bad | good |$' "$T/run/fix-card.md"
	check "fix-card.md lists the evidence" grep -q '^- partial-hole on bad: \*\*missing\*\*' "$T/run/fix-card.md"
}

# A check-kernels directory: the note of the rule that judged a case (a
# verdicts.exp rule ending in "# note") is shown beside its cell.
test_rule_notes() {
	local exp=$T/rules.exp rules
	mkdir -p "$T/ck"
	cp "$T/run/results.jsonl" "$T/ck/"
	printf '%s\n' 'bad  dio-unstable-read  *  FAIL:eio  # open upstream: no fix merged' \
		'bad  *  *  ANY' >"$exp"
	rules=$(bash -c '. "$1/harness/lib/common.sh"; . "$1/harness/lib/expect.sh"; expect_rules "$2"' \
		_ "$DIOGAP_ROOT" "$exp")
	check "a rule's trailing # note is read, the rule still is 4 words" jq -e \
		'.[0].note == "open upstream: no fix merged" and .[0].expect == "FAIL:eio" and .[1].note == null' <<<"$rules"
	bash -c '. "$1/harness/lib/common.sh"; . "$1/harness/lib/expect.sh"
		expect_judge "$2" bad "$3"' _ "$DIOGAP_ROOT" "$rules" "$T/ck/results.jsonl" >"$T/ck/expectations.jsonl"
	"$CARD" "$T/ck" >/dev/null 2>&1
	check "the card shows the note beside the cell it judged" jqe "$T/ck/fix-card.jsonl" -s \
		'any(.[]; .link == "unstable-read" and .kernel == "bad" and .note == "open upstream: no fix merged"
		and (.evidence | endswith("(expected: open upstream: no fix merged)")))'
	check "and nowhere else" jqe "$T/ck/fix-card.jsonl" -s 'map(select(.note != null)) | length == 1'
}

test_bad_input() {
	local rc=0
	printf '[x]\nfix = 0\nbogus = 1\n' >"$T/bad.conf"
	"$CARD" --chain "$T/bad.conf" "$T/run" >"$T/bad.out" 2>&1 || rc=$?
	check_eq "a chain file with an unknown key: exit 2" 2 "$rc"
	check "  naming file:line" grep -q "bad.conf:3: unknown key bogus" "$T/bad.out"
	rc=0
	"$CARD" "$T/nothing" >"$T/none.out" 2>&1 || rc=$?
	check_eq "no results.jsonl: exit 2" 2 "$rc"
}

# The kernels' names: label, architecture and page size when the records
# carry them (run-vm, run-lava), the bare label when they do not.
test_arch_labels() {
	local hole='{"verdict": "FAIL", "symptom": "data", "gaps": [[0, 65536, "zero"]], "size_seen": 1048576, "size_expected": 1048576}'
	mkdir -p "$T/arch"
	{
		case_line hole-64k dio-partial-write FAIL defaults "$hole" "zeros" |
			jq -c '. + {arch: "arm64", page_size: 65536}'
		case_line stock dio-partial-write PASS defaults | jq -c '. + {arch: "x86_64", page_size: 4096}'
	} >"$T/arch/results.jsonl"
	"$CARD" "$T/arch" >"$T/arch.out" 2>&1 || true
	check "card header: label, arch and page size of each kernel" \
		grep -qxF '| link | fix | hole-64k (arm64, 64K pages) | stock (x86_64, 4K pages) |' "$T/arch/fix-card.md"
	check "evidence lines name the kernel so too" \
		grep -qF -- '- partial-hole on hole-64k (arm64, 64K pages): **missing**' "$T/arch/fix-card.md"
	check "fix-card.jsonl: kernel is the label, kernel_name, arch and page_size beside it" \
		jqe "$T/arch/fix-card.jsonl" -s 'map(select(.kernel == "hole-64k")) | length > 0 and
			all(.kernel_name == "hole-64k (arm64, 64K pages)" and .arch == "arm64" and .page_size == 65536)'
	check "records without arch: the bare label" grep -qxF '| link | fix | bad | good |' "$T/run/fix-card.md"
}

main() {
	setup
	test_states
	test_rule_notes
	test_arch_labels
	test_bad_input
	t_done
}

main "$@"
