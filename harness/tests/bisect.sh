#!/usr/bin/env bash
# Tests of harness/bisect, harness/bisect-step and harness/validate-fix on
# real kernels: a git tree of linux-source-6.1 (made once, cached in
# $DIOGAP_CACHE/bisect) with series of 8 commits on top (see
# harness/lib/bisect-series.sh): the partial-dio-hole patch planted at a
# known commit, a commit that does not build, a revert. Every step is an
# incremental build and a TCG boot running dio-partial-write (1 MiB, fault
# first). arm64 (part arm64, opt-in: `make check-bisect-arm64`, as its
# cross build of the bisect tree costs ~8 min cold): validate-fix and one
# bisect-step with --arch arm64 --page-size 64K, whose kernels must be arm64
# Images and whose guests must say arm64 and 65536. Ends with "N passed,
# N failed".
#
#   harness/tests/bisect.sh [PART...]   parts: stats refusals bug fixed codes
#                                       interrupt validate arm64 (default: all
#                                       but arm64)
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"
# shellcheck source=harness/lib/bisect-series.sh
. "$DIOGAP_ROOT/harness/lib/bisect-series.sh"
# shellcheck source=harness/lib/sweep.sh
. "$DIOGAP_ROOT/harness/lib/sweep.sh"
# shellcheck source=harness/lib/bisect-case.sh
. "$DIOGAP_ROOT/harness/lib/bisect-case.sh"
# shellcheck source=harness/lib/bisect-stats.sh
. "$DIOGAP_ROOT/harness/lib/bisect-stats.sh"

BISECT=$DIOGAP_ROOT/harness/bisect
STEP=$DIOGAP_ROOT/harness/bisect-step
VALIDATE=$DIOGAP_ROOT/harness/validate-fix
CASE=(--repro dio-partial-write --args "--size 1M --fault first")
T=

setup() {
	need_root
	ensure_pkgs jq git
	T=$(mktemp -d /var/tmp/diogap-t-bisect.XXXXXX)
	on_exit rm -rf "$T"
	on_exit bs_reset
	bs_base
}

# times OUT: print the steps, their times and the total of one bisect.
times() {
	jq -r '"#   step \(.step) \(.role) \(.commit[0:12]) \(.verdict) \(.fails)/\(.runs) FAIL: build \(.build_s) s, VM \(.vm_s) s, total \(.total_s) s \(if .verdict == "skip" then "(" + .reason[0:60] + ")" else "" end)"' \
		"$1/steps.jsonl"
	# shellcheck disable=SC2016 # jq code, not shell
	jq -rs --arg wall "$2" '"# \(length) steps (\(map(select(.role == "step")) | length) bisect steps + \(map(select(.role != "step")) | length) end checks), \((map(.total_s) | add) / length | floor) s per step, \(map(.total_s) | add) s in steps, \($wall) s wall"' \
		"$1/steps.jsonl"
}

# truth_ok OUT FIRST LAST: every step's verdict agrees with where the bug is
# (commits FIRST..LAST of the series have it); the broken commit is a skip.
truth_ok() {
	local out=$1 first=$2 last=$3 sha verdict i want bad=0
	while IFS=$'\t' read -r sha verdict; do
		for i in "${!BS_SHAS[@]}"; do
			[[ ${BS_SHAS[i]} == "$sha" ]] || continue
			if [[ ${BS_ROLES[i]} == broken ]]; then want=skip
			elif ((i >= first && i <= last)); then want=bad
			else want=good; fi
			if [[ $verdict != "$want" ]]; then
				echo "# commit $i (${BS_ROLES[i]}): $verdict, wanted $want" && bad=1
			fi
		done
	done < <(jq -r '[.commit, .verdict] | @tsv' "$out/steps.jsonl")
	return "$bad"
}

# tree_restored BRANCH: HEAD back on BRANCH, clean, no bisect left.
tree_restored() {
	[[ $(git -C "$BS_TREE" symbolic-ref -q --short HEAD) == "$1" ]] &&
		[[ -z $(git -C "$BS_TREE" status --porcelain --untracked-files=no) ]] &&
		[[ ! -e $BS_TREE/.git/BISECT_START ]]
}

# The arithmetic against known values (Clopper-Pearson, Fisher), and the
# count of one boot's results, without a VM.
test_stats() {
	check_eq "p_lo of 10/10 at 0.99 = 0.01^(1/10)" 0.630957 "$(bst_p_lower 10 10 0.99)"
	check_eq "p_lo of 5/10 at 0.99 (Clopper-Pearson table: 0.1504)" 0.150443 "$(bst_p_lower 5 10 0.99)"
	check_eq "p_lo of 0/10 is 0" 0 "$(bst_p_lower 0 10 0.99)"
	check_eq "PASS runs needed at p 0.630957, 0.99" 5 "$(bst_runs_needed 0.630957 0.99)"
	check_eq "PASS runs needed at p 0.5, 0.99" 7 "$(bst_runs_needed 0.5 0.99)"
	check_eq "Fisher 50/50 vs 0/50 = 1/C(100,50)" 9.91e-30 "$(bst_fisher 50 50 0 50)"
	check_eq "Fisher 3/10 vs 0/10 = C(17,10)/C(20,10)" 0.105 "$(bst_fisher 3 10 0 10)"
	mkdir -p "$T/count"
	printf '%s\n' '{"case":"a","verdict":"FAIL","reason":"lost","splats":[],"gaps":[[0,4096,"zero"]],"runs":[{"verdict":"FAIL","iteration":1},{"verdict":"PASS","iteration":2},{"verdict":"PASS","iteration":3}]}' \
		>"$T/count/results.jsonl"
	bc_count "$T/count"
	check_eq "count: FAIL runs of a case that failed once" "1 3 1" "$BC_FAILS $BC_RUNS $BC_FIRST_ONLY"
	printf '%s\n' '{"case":"a","verdict":"FAIL","reason":"lost","splats":[],"gaps":[],"runs":[{"verdict":"FAIL","iteration":1},{"verdict":"FAIL","iteration":2}]}' \
		'{"case":"b","verdict":"BROKEN","reason":"timeout","splats":[],"gaps":[],"runs":[]}' >"$T/count/results.jsonl"
	bc_count "$T/count"
	check_eq "count: repeats that fail again are not first-only; BROKEN counted" "2 0 1" \
		"$BC_FAILS $BC_FIRST_ONLY $BC_BROKEN"
}

test_bisect_bug() {
	local out=$T/bug rc=0 t0=$SECONDS plant broken
	bs_series bisect-test-bug bug
	plant=${BS_SHAS[BS_PLANT]} broken=${BS_SHAS[BS_BROKEN]}
	echo "# series: base ${BS_SHAS[0]:0:12}, plant #$BS_PLANT ${plant:0:12}, broken #$BS_BROKEN ${broken:0:12}"
	"$BISECT" --tree "$BS_TREE" --good "${BS_SHAS[0]}" --bad "${BS_SHAS[8]}" --out "$out" \
		"${CASE[@]}" >"$T/bug.out" 2>"$T/bug.err" || rc=$?
	check_eq "bisect: exit 0" 0 "$rc"
	check "bisect names the planted commit" grep -q "^first bad commit: $plant " "$T/bug.out"
	check "bisect.md names it" grep -q "^\*\*$plant\*\*" "$out/bisect.md"
	check "bisect.md has every step and the raw git bisect log" \
		grep -q "^## git bisect log" "$out/bisect.md"
	check "the raw log says the same" grep -q "^# first bad commit: \[$plant\]" "$out/bisect-log.txt"
	# shellcheck disable=SC2016 # jq code, not shell
	check "the commit that does not build was tested and skipped (125)" \
		jq -se --arg c "$broken" 'any(.commit == $c and .verdict == "skip" and .exit == 125
			and (.reason | test("build failed")))' "$out/steps.jsonl"
	check "every verdict matches where the bug is" truth_ok "$out" "$BS_PLANT" 8
	check "the bad steps saw zeros from offset 0 (the hole)" \
		jq -se 'map(select(.verdict == "bad")) | length > 0 and all(.gaps | test("^\\[0,[0-9]+\\) zero"))' \
		"$out/steps.jsonl"
	check "tree back on its branch, clean, no bisect left" tree_restored bisect-test-bug
	times "$out" "$((SECONDS - t0))"
}

test_bisect_fixed() {
	local out=$T/fixed rc=0 t0=$SECONDS revert
	bs_series bisect-test-fixed fixed
	revert=${BS_SHAS[BS_REVERT]}
	"$BISECT" --tree "$BS_TREE" --fixed --bad "${BS_SHAS[BS_PLANT]}" --good "${BS_SHAS[8]}" \
		--out "$out" "${CASE[@]}" >"$T/fixed.out" 2>"$T/fixed.err" || rc=$?
	check_eq "bisect --fixed: exit 0" 0 "$rc"
	check "bisect --fixed names the revert" grep -q "^first fixed commit: $revert " "$T/fixed.out"
	check "raw log: first fixed commit" grep -q "^# first fixed commit: \[$revert\]" "$out/bisect-log.txt"
	check "--fixed: every verdict matches where the bug is" truth_ok "$out" "$BS_PLANT" "$((BS_REVERT - 1))"
	check "tree back on its branch after --fixed" tree_restored bisect-test-fixed
	times "$out" "$((SECONDS - t0))"
}

test_refusals() {
	local rc=0
	bs_series bisect-test-bug bug
	echo "dirty" >>"$BS_TREE/MAINTAINERS"
	"$BISECT" --tree "$BS_TREE" --good "${BS_SHAS[0]}" --bad "${BS_SHAS[8]}" --out "$T/dirty" \
		"${CASE[@]}" >"$T/dirty.out" 2>&1 || rc=$?
	check_eq "a dirty tree is refused (exit 2)" 2 "$rc"
	check "... saying why" grep -q "uncommitted changes" "$T/dirty.out"
	check "... and the change is still there" grep -q '^dirty$' "$BS_TREE/MAINTAINERS"
	git -C "$BS_TREE" checkout -q -- MAINTAINERS
	rc=0
	"$BISECT" --tree "$BS_TREE" --good "${BS_SHAS[8]}" --bad "${BS_SHAS[0]}" --out "$T/swap" \
		"${CASE[@]}" >"$T/swap.out" 2>&1 || rc=$?
	check_eq "good after bad is refused (exit 2)" 2 "$rc"
	check "... suggesting --fixed" grep -q -- "--fixed" "$T/swap.out"
	rc=0
	git -C "$BS_TREE" bisect start "${BS_SHAS[8]}" "${BS_SHAS[0]}" >/dev/null 2>&1
	"$BISECT" --tree "$BS_TREE" --good "${BS_SHAS[0]}" --bad "${BS_SHAS[8]}" --out "$T/busy" \
		"${CASE[@]}" >"$T/busy.out" 2>&1 || rc=$?
	check_eq "a bisect already in progress is refused (exit 2)" 2 "$rc"
	check "... and left alone" test -e "$BS_TREE/.git/BISECT_START"
	git -C "$BS_TREE" bisect reset >/dev/null 2>&1
	rc=0
	(cd "$BS_TREE" && "$STEP" --repro dio-partial-write --args "--qd 4") >/dev/null 2>&1 || rc=$?
	check_eq "bisect-step: a wrong option aborts git bisect (255), never 1 or 2" 255 "$rc"
}

# One step straight from bisect-step: exit codes, and a broken VM.
test_step_codes() {
	local rc=0
	export DIOGAP_BISECT_STEPS=$T/steps-direct.jsonl
	bs_git checkout -q "${BS_SHAS[BS_PLANT]}"
	"$STEP" --tree "$BS_TREE" --fixed --rate 1 --out "$T/step-fixed" "${CASE[@]}" >/dev/null 2>&1 || rc=$?
	check_eq "bisect-step --fixed on the planted commit: 0 (still broken)" 0 "$rc"
	rc=0
	VM_QEMU=/bin/false "$STEP" --tree "$BS_TREE" --rate 1 --out "$T/step-noqemu" "${CASE[@]}" \
		>/dev/null 2>&1 || rc=$?
	check_eq "bisect-step: a VM that never boots is a skip (125)" 125 "$rc"
	check "... recorded as BROKEN in the steps file" \
		jq -se 'last | .verdict == "skip" and (.reason | test("BROKEN"))' "$DIOGAP_BISECT_STEPS"
	unset DIOGAP_BISECT_STEPS
	bs_git checkout -q "$BS_BRANCH"
}

no_step_left() {
	! pgrep -f "bisect-step --tree $BS_TREE" >/dev/null
}

# Ctrl-C in the middle of a bisect: the tree goes back, nothing is left.
test_interrupt() {
	local pid rc=0 i
	bs_series bisect-test-bug bug
	# Job control: the bisect gets its own process group, as a command
	# started from a terminal has, and does not ignore SIGINT (env restores
	# the default disposition in case we started with it ignored: nohup ... &).
	set -m
	env --default-signal=INT "$BISECT" --tree "$BS_TREE" --good "${BS_SHAS[0]}" --bad "${BS_SHAS[8]}" --out "$T/int" \
		--no-endpoint-check --rate 0.5 "${CASE[@]}" >"$T/int.out" 2>&1 &
	pid=$!
	set +m
	for ((i = 0; i < 600; i++)); do
		grep -q "building" "$T/int/bisect-run.log" 2>/dev/null && break
		sleep 0.1
	done
	# What Ctrl-C does: SIGINT to the foreground process group.
	kill -INT -- "-$pid"
	wait "$pid" || rc=$?
	check_eq "Ctrl-C: bisect exits 130" 130 "$rc"
	check "Ctrl-C: tree back on its branch, clean, no bisect left" tree_restored bisect-test-bug
	# bisect waits for its whole process group before it exits: no sleep here
	check "Ctrl-C: no bisect-step left running" no_step_left
}

kernel() {
	"$DIOGAP_ROOT/harness/build-kernel" --source linux-source-6.1 \
		--config "$DIOGAP_ROOT/configs/kernel/minimal-btrfs.config" "$@" 2>>"$T/kernels.log"
}

test_validate_fix() {
	local stock hole deadlock rc=0 out=$T/vf a_real a_runs
	if ! stock=$(kernel) ||
		! hole=$(kernel --patch "$DIOGAP_ROOT/configs/patches/6.1/partial-dio-hole.patch") ||
		! deadlock=$(kernel --patch "$DIOGAP_ROOT/configs/patches/6.1/dio-fault-deadlock.patch"); then
		not_ok "validate-fix: kernels built" "see $T/kernels.log"
		return 0
	fi
	"$VALIDATE" --kernel "$hole" --kernel "$stock" --runs 20 --out "$out" "${CASE[@]}" \
		>"$T/vf.out" 2>"$T/vf.err" || rc=$?
	check_eq "validate-fix hole -> stock: exit 0" 0 "$rc"
	grep '^B ' "$T/vf.out" | sed 's/^/# /'
	check "... says B fixes it: 0 FAIL on B, some on A" \
		grep -Eq '^B fixes it: 0/([0-9]+) FAIL on B vs [1-9][0-9]*/\1 on A' "$T/vf.out"
	a_real=$(cat "$out"/A/boot-*/results.jsonl | jq -s '[.[].runs[] | select(.verdict == "FAIL")] | length')
	a_runs=$(cat "$out"/A/boot-*/results.jsonl | jq -s '[.[].runs[]] | length')
	check "... with A's real counts ($a_real/$a_runs)" grep -q "vs $a_real/$a_runs on A" "$T/vf.out"
	check "... and the deadlock check passed on B" grep -q "passes on B (no deadlock)" "$T/vf.out"
	rc=0
	"$VALIDATE" --kernel "$hole" --kernel "$deadlock" --runs 5 --out "$out-dl" "${CASE[@]}" \
		>"$T/vf-dl.out" 2>"$T/vf-dl.err" || rc=$?
	check_eq "validate-fix hole -> deadlock kernel: exit 1" 1 "$rc"
	grep '^B ' "$T/vf-dl.out" | sed 's/^/# /'
	check "... rejected: B brings back the deadlock" grep -q '^B brings back the deadlock' "$T/vf-dl.out"
	rc=0
	"$VALIDATE" --kernel "$stock" --kernel "$stock" --runs 5 --no-deadlock-check --out "$out-none" \
		"${CASE[@]}" >"$T/vf-none.out" 2>&1 || rc=$?
	check_eq "validate-fix stock -> stock: inconclusive (exit 2)" 2 "$rc"
	check "... A does not show the bug" grep -q 'A does not show the bug' "$T/vf-none.out"
}

# arm64_kernel [PATCH]: the minimal 6.1 kernel for arm64 with 64 KiB pages.
arm64_kernel() {
	kernel --arch arm64 --page-size 64K ${1:+--patch "$DIOGAP_ROOT/configs/patches/6.1/$1"}
}

# is_arm64_image FILE: an arm64 Image ("ARM\x64" at offset 56 of its header).
is_arm64_image() {
	[[ $(od -An -c -j 56 -N 4 "$1" 2>/dev/null | tr -d ' ') == 'ARMd' ]]
}

# guests_are_arm64_64k DIR...: every run-vm meta.json under DIR says arm64, and every
# result record there says arm64 and a 65536-byte page.
guests_are_arm64_64k() {
	local m n=0
	while IFS= read -r m; do
		n=$((n + 1))
		jq -e '.arch == "arm64"' "$m" >/dev/null || return 1
	done < <(find "$@" -name meta.json -path '*/boot-*' -o -name meta.json -path '*-deadlock*')
	((n > 0)) || return 1
	find "$@" -name results.jsonl -exec cat {} + |
		jq -se 'length > 0 and all(.arch == "arm64" and .page_size == 65536)' >/dev/null
}

# --arch arm64 through validate-fix (run-vm) and bisect-step (build-kernel
# and run-vm): were it ignored, the kernels would be bzImages, the guests
# x86_64 with 4 KiB pages, or the arm64 Images refused by run-vm.
test_arm64() {
	local stock hole rc=0 out=$T/vf-arm64 step=$T/step-arm64 kimg
	export DIOGAP_BISECT_STEPS=$T/steps-arm64.jsonl
	bs_series bisect-test-bug bug
	bs_git checkout -q "${BS_SHAS[BS_PLANT]}"
	"$STEP" --tree "$BS_TREE" --arch arm64 --page-size 64K --rate 1 --out "$step" "${CASE[@]}" \
		>"$T/step-arm64.out" 2>&1 || rc=$?
	bs_git checkout -q "$BS_BRANCH"
	unset DIOGAP_BISECT_STEPS
	check_eq "bisect-step --arch arm64 --page-size 64K on the planted commit: 1 (bad)" 1 "$rc"
	sed -n 's/^bisect-step: /# /p' "$T/step-arm64.out"
	((rc == 1)) || tail -n 5 "$T/step-arm64.out" | sed 's/^/# /'
	kimg=$(jq -r '.kernel' "$T/steps-arm64.jsonl" 2>/dev/null | tail -n 1)
	check "... its kernel is an arm64 Image ($kimg)" is_arm64_image "$kimg"
	check "... built with 64K pages (build-kernel's meta.json)" \
		jq -e '.arch == "arm64" and .page_size == 65536' "${kimg%/*}/meta.json"
	check "... its guest said arm64 and 65536" guests_are_arm64_64k "$step"
	if ! stock=$(arm64_kernel) || ! hole=$(arm64_kernel partial-dio-hole.patch); then
		not_ok "arm64: 64K kernels built" "see $T/kernels.log"
		return 0
	fi
	rc=0
	"$VALIDATE" --arch arm64 --kernel "$hole" --kernel "$stock" --runs 5 --out "$out" "${CASE[@]}" \
		>"$T/vf-arm64.out" 2>"$T/vf-arm64.err" || rc=$?
	check_eq "validate-fix --arch arm64 hole -> stock (64K pages): exit 0" 0 "$rc"
	grep '^B ' "$T/vf-arm64.out" | sed 's/^/# /'
	check "... B fixes it: 0 FAIL on B, some on A" \
		grep -Eq '^B fixes it: 0/([0-9]+) FAIL on B vs [1-9][0-9]*/\1 on A' "$T/vf-arm64.out"
	check "... every boot's meta.json says arm64, every record arm64 and page_size 65536" \
		guests_are_arm64_64k "$out/A" "$out/B" "$out/B-deadlock"
	check "... A's hole is the first 64 KiB page: [0,65536) zeros" \
		jq -se 'map(select(.verdict == "FAIL")) | length > 0 and all(.gaps[0][0:2] == [0, 65536])' \
		"$out"/A/boot-*/results.jsonl
}

main() {
	local part
	local -a parts=("$@")
	((${#parts[@]})) || parts=(stats refusals bug fixed codes interrupt validate)
	setup
	for part in "${parts[@]}"; do
		case $part in
		stats) test_stats ;;
		refusals) test_refusals ;;
		bug) test_bisect_bug ;;
		fixed) test_bisect_fixed ;;
		codes) test_step_codes ;;
		interrupt) test_interrupt ;;
		validate) test_validate_fix ;;
		arm64) test_arm64 ;;
		*) die "unknown part: $part (stats refusals bug fixed codes interrupt validate arm64)" ;;
		esac
	done
	t_done
}

main "$@"
