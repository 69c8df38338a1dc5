#!/usr/bin/env bash
# No stray exit 1: every harness entry point, made to fail somewhere no
# one planned for (a PATH shim makes one tool fail), exits 2 (BROKEN) with
# one line "SCRIPT: internal error at FILE:LINE: COMMAND (exit N)", never 1
# (which means "corruption seen" to users and to git bisect run);
# bisect-step turns it into 125 (skip). run-local also finishes what it
# recorded: every case BROKEN with the reason, summary.md, meta.json.
# Nothing here boots a VM or builds a kernel: each failure comes before.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"

H=$DIOGAP_ROOT/harness
export DIOGAP_SCRATCH=/var/tmp/diogap-test-internal-error
T=

setup() {
	need_root
	ensure_pkgs jq btrfs-progs git
	T=$(mktemp -d /var/tmp/diogap-t.XXXXXX)
	on_exit rm -rf "$T"
	on_exit rm -rf "$DIOGAP_SCRATCH"
	make -s -C "$DIOGAP_ROOT" reproducers
	: >"$T/fake-bzImage"
	git init -q "$T/tree"
	git -C "$T/tree" -c user.name=t -c user.email=t@t commit -q --allow-empty -m base
	mkdir -p "$T/lava" "$T/card"
	echo '{"labels": ["k1"]}' >"$T/lava/export.json"
	# one results line, enough for fix-card and minimize to start
	echo '{"case": "c", "kernel": "k", "kernel_label": "local", "repro": "dio-partial-write",
		"mount": "defaults", "params": {}, "verdict": "PASS", "gaps": [], "splats": [], "runs": []}' |
		jq -c . >"$T/card/results.jsonl"
}

# shim CMD [MATCH]: a directory whose CMD fails (exit 1), always or only
# when its arguments contain MATCH; otherwise it runs the real CMD.
shim() {
	local dir=$T/shim-$1 real
	real=$(command -v "$1")
	mkdir -p "$dir"
	cat >"$dir/$1" <<EOF
#!/bin/sh
case "\$*" in
*"${2:-}"*) echo "test shim: $1 \$* fails" >&2; exit 1 ;;
esac
exec $real "\$@"
EOF
	chmod +x "$dir/$1"
	echo "$dir"
}

# injected WANT_RC CMD SCRIPT ARGS...: run harness/SCRIPT with the shim for
# CMD first on PATH; check its exit code and its one internal-error line.
injected() {
	local want=$1 cmd=$2 script=$3 rc=0 err dir
	shift 3
	dir=$(shim "$cmd")
	PATH=$dir:$PATH timeout 300 "$H/$script" "$@" >"$T/$script.out" 2>"$T/$script.err" \
		</dev/null || rc=$?
	check_eq "$script, $cmd failing: exit $want" "$want" "$rc"
	err=$(grep -E "^[a-z-]+: internal error at [^:]+:[0-9]+: .* \(exit [0-9]+\)$" "$T/$script.err" |
		head -n 1) || true
	check "$script, $cmd failing: says 'internal error at FILE:LINE: COMMAND (exit N)'" \
		test -n "$err"
	[[ -n $err ]] || sed 's/^/#   /' "$T/$script.err" | tail -n 5
}

# run-local with the scratch mount's work directory impossible to make: the
# case runner fails after the run began; what was recorded is finished.
test_run_local() {
	local dir rc=0 out=$T/rl sweep=$T/tiny.conf n
	printf '%s\n' 'repro = dio-partial-write' 'size = 64K' 'fault = first all' \
		'buffer = memfd' 'image_size = 256M' 'timeout = 30' >"$sweep"
	dir=$(shim mkdir /mnt/work)
	PATH=$dir:$PATH "$H/run-local" --sweep "$sweep" --out "$out" >"$T/rl.out" 2>"$T/rl.err" || rc=$?
	check_eq "run-local, mkdir failing in the runner: exit 2" 2 "$rc"
	check "run-local: one internal-error line naming run-cases.sh" \
		grep -qE '^run-local: internal error at .*run-cases\.sh:[0-9]+: mkdir .*\(exit 1\)$' "$T/rl.err"
	n=$(grep -c . "$out/cases.tsv" || true)
	check_eq "run-local: a results line for each of the $n cases" "$n" \
		"$(grep -c . "$out/results.jsonl" || true)"
	check "run-local: every case BROKEN with the internal error as its reason" \
		jqe "$out/results.jsonl" -s 'length > 0 and all(.verdict == "BROKEN" and (.reason | test("internal error at")))'
	check "run-local: summary.md written" test -s "$out/summary.md"
	check "run-local: ktap.txt closed with totals" grep -q '^# Totals:' "$out/ktap.txt"
	check "run-local: meta.json names the reason" jqe "$out/meta.json" '.reason | test("internal error at .*mkdir")'
	check "run-local: no mount or loop device left" no_leftovers "$DIOGAP_SCRATCH"
}

test_entry_points() {
	local tree=$T/tree
	injected 2 realpath run-vm --kernel "$T/fake-bzImage" --out "$T/vm"
	injected 2 realpath run-lava --convert-only "$T/lava"
	injected 2 realpath check-kernels --variant stock-6.1 --out "$T/ck"
	injected 2 realpath validate-fix --kernel "$T/fake-bzImage" --kernel "$T/fake-bzImage" \
		--repro dio-partial-write --args "--size 1M" --out "$T/vf"
	injected 2 realpath report "$T"
	injected 2 realpath export-lava --kernel "$T/fake-bzImage" --out "$T/el"
	injected 2 realpath bisect --tree "$tree" --good HEAD --bad HEAD \
		--repro dio-partial-write --args "--size 1M" --out "$T/bi"
	# git bisect run reads 2 as "bad": bisect-step says skip instead.
	injected 125 realpath bisect-step --tree "$tree" --repro dio-partial-write \
		--args "--size 1M" --out "$T/bs"
	injected 2 sha256sum build-kernel --source linux-source-6.1
	injected 2 mktemp bench-vm --kernel "$T/fake-bzImage"
	injected 2 mktemp bench-kernel
	injected 2 mktemp bench-detect
	injected 2 mktemp bench-lava --kernel "$T/fake-bzImage"
	injected 2 flock bench-bisect
	injected 2 realpath bench-repro
	injected 2 mktemp fix-card "$T/card"
	injected 2 realpath minimize "$T/card"
	injected 2 mktemp check-mutants predict-off-by-a-page
	injected 2 realpath run-standalone --kernel "$T/fake-bzImage" --prog "$DIOGAP_BUILD/dg-case"
}

# Another apt holding dpkg's lock (unattended upgrades on a fresh machine,
# a second diogap run) makes the install wait, not fail.
test_apt_lock() {
	local t0 rc=0 held=8
	python3 -c 'import fcntl, sys, time
f = open("/var/lib/dpkg/lock-frontend", "w")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[1]))' "$held" >"$T/lock.out" &
	on_exit kill $! 2>/dev/null
	until grep -q locked "$T/lock.out" 2>/dev/null; do sleep 0.1; done
	t0=$SECONDS
	apt_get install -y -qq --no-install-recommends jq >"$T/apt.log" 2>&1 || rc=$?
	check_eq "dpkg lock held by another process: apt_get install waits and succeeds" 0 "$rc"
	if ((SECONDS - t0 >= held - 1)); then
		ok "and it waited for the lock ($((SECONDS - t0)) s)"
	else
		not_ok "and it waited for the lock" "returned after $((SECONDS - t0)) s: $(tail -2 "$T/apt.log")"
	fi
}

# run-tests, a suite failing early in a long check: its failing lines come
# again at the end, before the "check:" line (CI keeps only a log's tail).
test_run_tests_tail() {
	local dir=$T/shim-make rc=0 out=$T/run-tests.out real
	real=$(command -v make)
	mkdir -p "$dir"
	cat >"$dir/make" <<MAKE
#!/bin/sh
case "\$*" in
*check-early*) echo 'ok 1 fine'; echo 'not ok 2 the early check'; echo '1 passed, 1 failed'; exit 1 ;;
*check-late*) i=0; while [ \$i -lt 200 ]; do i=\$((i + 1)); echo "ok \$i late"; done
	echo '# mismatches:'; echo '#   k1 c1: expected FAIL (rule 3: FAIL), seen PASS no gap'
	echo 'kernels: 200 passed, 1 failed'; exit 1 ;;
esac
exec $real "\$@"
MAKE
	chmod +x "$dir/make"
	PATH=$dir:$PATH "$H/run-tests" early late >"$out" 2>&1 </dev/null || rc=$?
	check_eq "run-tests, two failing suites: exit 1" 1 "$rc"
	check_eq "run-tests: the last line counts both" "check: 201 passed, 2 failed, 0 skipped" \
		"$(tail -n 1 "$out")"
	check "run-tests: the early suite's 'not ok' is among the last 10 lines" \
		grep -q '^#   early: not ok 2 the early check$' <(tail -n 10 "$out")
	check "run-tests: ... and the late suite's mismatch" \
		grep -q '^#   late: #   k1 c1: expected FAIL (rule 3: FAIL), seen PASS' <(tail -n 10 "$out")
}

main() {
	setup
	test_run_tests_tail
	test_apt_lock
	test_run_local
	test_entry_points
	t_done
}

main "$@"
