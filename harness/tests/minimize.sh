#!/usr/bin/env bash
# Tests of harness/minimize and the standalone reproducer of
# harness/report --bug, on real kernels (harness/build-kernel, cached):
# for the partial-dio-hole, append-isize and dio-fault-deadlock kernels, a small run-vm
# sweep FAILs; minimize must end with a case no larger in any dimension,
# smaller in at least one, with the same FAIL signature and its rate; the
# repro.c the bug report emits (one file, libc only, <= ~200 lines),
# compiled statically, must FAIL (exit 1) on that kernel and PASS (exit 0)
# on stock 6.1, booted by harness/run-standalone with no diogap binary in
# the guest. Bad input (no FAIL, a PASS case, a FAIL that PASSes when
# rerun) must exit 2 with a clear message.
# The unstable-write family runs on Debian's kernel packages (no build):
# its EIO FAIL on stock 6.1 (no 968f19c5b1b7) minimized in size, chunk and
# iterations; its repro.c (libc + pthreads) FAILs there and PASSes on 6.12
# (which has the fix).
# Arguments: the parts to run (hole append hang uring bad_input unstable;
# default all of them).
# DIOGAP_TEST_KEEP=1 keeps the results (path printed).
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"
# shellcheck source=harness/lib/standalone.sh
. "$DIOGAP_ROOT/harness/lib/standalone.sh"

H=$DIOGAP_ROOT/harness
FRAG=$DIOGAP_ROOT/configs/kernel/minimal-btrfs.config
export DIOGAP_SCRATCH=${DIOGAP_SCRATCH:-/var/tmp/diogap-test-minimize}
T='' STOCK=''

# The sweeps: one case that FAILs on its kernel (fault first) and its
# control (fault all), with room to shrink: size, write calls, pwritev.
SWEEP_HOLE='name = min-hole
repro = dio-partial-write
size = 1M
chunk = 256K
fault = first all
buffer = memfd
engine = pwritev
iterations = 1
timeout = 60
image_size = 256M
mount = defaults'

SWEEP_APPEND='name = min-append
repro = dio-append-write
size = 256K
fault = first all
buffer = anon
iterations = 1
timeout = 60
image_size = 256M
mount = defaults'

# The deadlock: a write from a mapping of the range it writes, nothing of
# it resident; in 4 write calls, so it can shrink in calls and size.
SWEEP_HANG='name = min-hang
repro = dio-self-mmap-write
size = 1M
chunk = 256K
fault = none
engine = psync
hang_timeout = 5
iterations = 1
timeout = 60
image_size = 256M
mount = defaults'

setup() {
	need_root
	ensure_pkgs jq qemu-system-x86 busybox-static btrfs-progs gcc libc6-dev
	T=$(mktemp -d /var/tmp/diogap-t-minimize.XXXXXX)
	if [[ -n ${DIOGAP_TEST_KEEP:-} ]]; then
		echo "# results kept in $T"
	else
		on_exit rm -rf "$T"
	fi
	on_exit rm -rf "$DIOGAP_SCRATCH"
	on_exit kill_our_vms
	make -s -C "$DIOGAP_ROOT" reproducers >/dev/null
	[[ $* == unstable ]] && return 0 # Debian's kernel packages only
	STOCK=$(kernel) || die "building the stock 6.1 kernel failed"
}

# kernel [PATCH]: the minimal 6.1 kernel (+ PATCH), built or from the cache.
kernel() {
	"$H/build-kernel" --source linux-source-6.1 --config "$FRAG" \
		${1:+--patch "$DIOGAP_ROOT/configs/patches/6.1/$1.patch"} 2>>"$T/build.log"
}

# standalone NAME KERNEL MOUNT WANT: repro.c of NAME on KERNEL exits WANT.
standalone() {
	local name=$1 k=$2 mount=$3 want=$4 label=$5 rc=0
	# 300 s: a kernel with the fix runs every round to its end, under TCG
	"$H/run-standalone" --kernel "$k" --prog "$T/$name.bin" --mount "$mount" --timeout 300 \
		--out "$T/$name.sa-$label" >"$T/$name.sa-$label.out" 2>&1 || rc=$?
	check_eq "$name: repro.c on $label exits $want ($(grep -m1 -E '^(PASS|FAIL)' "$T/$name.sa-$label.out" || echo no verdict line))" \
		"$want" "$rc"
	[[ $rc == "$want" ]] || sed 's/^/#   /' "$T/$name.sa-$label.out" | tail -n 8
	sed 's/^/#   /' "$T/$name.sa-$label.out" | grep -v 'booting' | head -n 6
}

# family NAME PATCH SWEEP SIGNATURE: the whole chain on one bad kernel.
family() {
	local name=$1 sig=$4 bad out rc=0 t0 secs m c lines mount
	bad=$(kernel "$2") || { not_ok "$name: build the $2 kernel" "see $T/build.log"; return 0; }
	printf '%s\n' "$3" >"$T/$name.conf"
	out=$T/$name
	"$H/run-vm" --kernel "$bad" --label "$2" --sweep "$T/$name.conf" --out "$out" \
		>"$T/$name.run.log" 2>&1 || rc=$?
	check_eq "$name: the sweep FAILs on $2" 1 "$rc"
	# shellcheck disable=SC2016 # jq code
	check "$name: its FAIL case has signature $sig" jq -se --arg s "$sig" -L "$H/lib" \
		'include "signature"; any(.[]; .verdict == "FAIL" and dg_signature == $s)' "$out/results.jsonl"

	t0=$SECONDS rc=0
	"$H/minimize" "$out" >"$T/$name.min.log" 2>&1 || rc=$?
	secs=$((SECONDS - t0))
	check_eq "$name: minimize exits 0 (${secs}s)" 0 "$rc"
	m=$out/minimize.json
	[[ -s $m ]] || { not_ok "$name: minimize.json written" "$(tail -n 3 "$T/$name.min.log")"; return 0; }
	grep '^minimize: step\|^minimize: minimized' "$T/$name.min.log" | sed 's/^/#   /'
	check_eq "$name: same signature" "$sig" "$(jq -r .result.signature "$m")"
	check_eq "$name: no larger in any dimension" "" "$(jq -r '.larger_in | join(",")' "$m")"
	check "$name: smaller in at least one ($(jq -r '.smaller_in | join(", ")' "$m"))" \
		jq -e '.smaller_in | length > 0' "$m"
	check "$name: every dimension compared" jq -e \
		'[.original.dims, .result.dims] | map(keys) | .[0] == .[1] and (.[0] | length) >= 8' "$m"
	check "$name: the result still FAILs, rate reported ($(jq -r '"\(.result.fail)/\(.result.runs)"' "$m"))" \
		jq -e '.result.fail > 0 and .result.runs >= .result.fail and .result.rate_lower > 0' "$m"
	check "$name: runs per step recorded" jq -e \
		'.steps | length >= 3 and all(.[]; .runs > 0 and (.accepted | type) == "boolean")' "$m"
	check "$name: minimize.md names the smallest case, rerun line and rate" \
		grep -q 'FAIL rate of the result' "$out/minimize.md"
	check "$name: minimize.md has the rerun line" grep -q '^Rerun (reproducer): `.*--iterations' "$out/minimize.md"

	rc=0
	"$H/report" --bug "$out" >"$T/$name.report.log" 2>&1 || rc=$?
	check_eq "$name: report --bug exits 0" 0 "$rc"
	c=$out/repro.c
	[[ -s $c ]] || { not_ok "$name: repro.c written" "$(tail -n 3 "$T/$name.report.log")"; return 0; }
	lines=$(grep -c '' "$c")
	echo "# $name: repro.c has $lines lines"
	check "$name: repro.c is <= 210 lines" test "$lines" -le 210
	check "$name: repro.c uses libc only" bash -c \
		"! grep -E '^#include' '$c' | grep -vE '<(errno|fcntl|signal|stdint|stdio|stdlib|string|unistd|sys/(mman|stat|uio|wait|types))\\.h>'"
	check "$name: repro.c names kernel, fix and build line" bash -c \
		"grep -q 'Failed on: .*$(jq -r .kernel.release "$m")' '$c' && grep -q 'Suspected missing fix: [0-9a-f]\\{12\\}' '$c' && grep -q 'cc -O2 -static -o repro repro.c' '$c'"
	check "$name: bug report names the minimized case first" awk \
		'/^Minimized case/ { m = NR } /^Original case/ { o = NR } END { exit !(m && o && m < o) }' "$out/bug-report.txt"
	check "$name: bundle has repro.c and the fstests draft" bash -c \
		"tar -tzf '$out/bug-report.tar.gz' | grep -q '/repro.c\$' &&
		 tar -tzf '$out/bug-report.tar.gz' | grep -q 'fstests-draft/tests/generic/NNN\$' &&
		 tar -tzf '$out/bug-report.tar.gz' | grep -q 'fstests-draft/tests/generic/NNN.out\$' &&
		 tar -tzf '$out/bug-report.tar.gz' | grep -q 'fstests-draft/src/.*\\.c\$'"
	tar -xzf "$out/bug-report.tar.gz" -C "$T" --wildcards '*/fstests-draft/*'
	check "$name: fstests draft: _begin_fstest, _require_scratch, _fixed_by_kernel_commit, DRAFT" bash -c \
		"f=\$(find '$T' -path '*fstests-draft/tests/generic/NNN' | head -n 1); grep -q _begin_fstest \$f &&
		 grep -q _require_scratch \$f && grep -q '_fixed_by_kernel_commit [0-9a-f]\\{12\\}' \$f && grep -q DRAFT \$f"
	if ! cc -O2 -static -Wall -Wextra -Werror -o "$T/$name.bin" "$c" 2>"$T/$name.cc.log"; then
		not_ok "$name: repro.c builds with cc -O2 -static -Wall -Wextra -Werror" "$(head -n 3 "$T/$name.cc.log")"
		return 0
	fi
	ok "$name: repro.c builds with cc -O2 -static -Wall -Wextra -Werror"
	mount=$(jq -r .result.mount "$m")
	standalone "$name" "$bad" "$mount" 1 "$2"
	standalone "$name" "$STOCK" "$mount" 0 stock-6.1
}

# uring_template: a case that stays io_uring gets the uring-write template
# (liburing, static): it FAILs on partial-dio-hole and PASSes on stock.
uring_template() {
	local bad c lines
	bad=$(kernel partial-dio-hole) || { not_ok "uring: build the partial-dio-hole kernel"; return 0; }
	c='{"case":"dio-uring-write.1M.first.memfd.qd4.c256K.defaults","repro":"dio-uring-write",
	    "mount":"defaults","params":{"size":"1M","fault":"first","buffer":"memfd","qd":"4","chunk":"256K"},
	    "kernel":"6.1.192","kernel_label":"partial-dio-hole","signature":"hole","rerun":"(by hand)"}'
	if ! (sa_emit "$c" "$T/uring.c") 2>"$T/uring.emit.log"; then
		not_ok "uring: repro.c emitted" "$(head -n 2 "$T/uring.emit.log")"
		return 0
	fi
	lines=$(grep -c '' "$T/uring.c")
	check "uring: repro.c is <= 210 lines ($lines)" test "$lines" -le 210
	check "uring: repro.c ($lines lines) uses liburing and names its build line" bash -c \
		"grep -q '<liburing.h>' '$T/uring.c' && grep -q 'cc -O2 -static -o repro repro.c -luring' '$T/uring.c'"
	if ! cc -O2 -static -Wall -Wextra -Werror -o "$T/uring.bin" "$T/uring.c" -luring 2>"$T/uring.cc.log"; then
		not_ok "uring: repro.c builds (-luring, static)" "$(head -n 3 "$T/uring.cc.log")"
		return 0
	fi
	ok "uring: repro.c builds (-luring, static)"
	standalone uring "$bad" defaults 1 partial-dio-hole
	standalone uring "$STOCK" defaults 0 stock-6.1
}

# The unstable-write family: a one-case sweep on a single-profile btrfs
# with data checksums, on Debian's stock 6.1 (no fix) and 6.12 (the fix).
DEB_61=linux-image-6.1.0-56-cloud-amd64
DEB_612=linux-image-6.12.117+deb12-cloud-amd64
SWEEP_UNSTABLE='name = min-unstable
repro = dio-unstable-write
size = 8M
chunk = 1M
iterations = 3
timeout = 120
image_size = 1G
profile = single
mount = defaults'

# unstable: the chain for the eio signature: sweep, minimize (size, chunk,
# iterations), report --bug, repro.c FAILs on 6.1 and PASSes on 6.12.
unstable() {
	local out=$T/unstable m c lines rc=0 t0 include_ok
	printf '%s\n' "$SWEEP_UNSTABLE" >"$T/unstable.conf"
	"$H/run-vm" --kernel "$DEB_61" --label deb-6.1 --sweep "$T/unstable.conf" --out "$out" \
		>"$T/unstable.run.log" 2>&1 || rc=$?
	check_eq "unstable: the sweep FAILs on $DEB_61" 1 "$rc"
	# shellcheck disable=SC2016 # jq code
	check "unstable: its FAIL case has signature eio" jq -se -L "$H/lib" \
		'include "signature"; any(.[]; .verdict == "FAIL" and dg_signature == "eio")' "$out/results.jsonl"
	t0=$SECONDS rc=0
	"$H/minimize" "$out" >"$T/unstable.min.log" 2>&1 || rc=$?
	check_eq "unstable: minimize exits 0 ($((SECONDS - t0))s)" 0 "$rc"
	m=$out/minimize.json
	[[ -s $m ]] || { not_ok "unstable: minimize.json written" "$(tail -n 3 "$T/unstable.min.log")"; return 0; }
	grep '^minimize: step\|^minimize: minimized' "$T/unstable.min.log" | sed 's/^/#   /'
	check_eq "unstable: same signature" eio "$(jq -r .result.signature "$m")"
	check_eq "unstable: no larger in any dimension" "" "$(jq -r '.larger_in | join(",")' "$m")"
	check "unstable: smaller in size or write calls ($(jq -r '.smaller_in | join(", ")' "$m"))" \
		jq -e '.smaller_in | any(. == "size" or . == "write_calls")' "$m"
	check "unstable: the result still FAILs, rate reported ($(jq -r '"\(.result.fail)/\(.result.runs)"' "$m"))" \
		jq -e '.result.fail > 0 and .result.runs >= .result.fail and .result.rate_lower > 0' "$m"
	rc=0
	"$H/report" --bug "$out" >"$T/unstable.report.log" 2>&1 || rc=$?
	check_eq "unstable: report --bug exits 0" 0 "$rc"
	c=$out/repro.c
	[[ -s $c ]] || { not_ok "unstable: repro.c written" "$(tail -n 3 "$T/unstable.report.log")"; return 0; }
	lines=$(grep -c '' "$c")
	echo "# unstable: repro.c has $lines lines"
	check "unstable: repro.c is <= 210 lines" test "$lines" -le 210
	include_ok='<(errno|fcntl|pthread|stdint|stdio|stdlib|string|unistd)\.h>'
	check "unstable: repro.c uses libc and pthreads only" bash -c \
		"! grep -E '^#include' '$c' | grep -vE '$include_ok'"
	check "unstable: repro.c names kernel, fix 968f19c5b1b7 and build line" bash -c \
		"grep -q 'Failed on: .*$(jq -r .kernel.release "$m")' '$c' &&
		 grep -q 'Suspected missing fix: 968f19c5b1b7' '$c' && grep -q 'cc -O2 -static -pthread -o repro repro.c' '$c'"
	check "unstable: the EIO message" grep -q 'read back: Input/output error (csum failed?)' "$c"
	check "unstable: bug report gives the -pthread build line" grep -q 'cc -O2 -static -pthread' "$out/bug-report.txt"
	mkdir -p "$T/unstable-draft"
	tar -xzf "$out/bug-report.tar.gz" -C "$T/unstable-draft" --wildcards '*/fstests-draft/*'
	check "unstable: fstests draft names generic/761 and the fix" bash -c \
		"f=\$(find '$T/unstable-draft' -path '*fstests-draft/tests/generic/NNN' | head -n 1);
		 grep -q 'generic/761' \$f && grep -q '_fixed_by_kernel_commit 968f19c5b1b7' \$f && grep -q DRAFT \$f"
	if ! cc -O2 -static -pthread -Wall -Wextra -Werror -o "$T/unstable.bin" "$c" 2>"$T/unstable.cc.log"; then
		not_ok "unstable: repro.c builds with cc -O2 -static -pthread -Wall -Wextra -Werror" "$(head -n 3 "$T/unstable.cc.log")"
		return 0
	fi
	ok "unstable: repro.c builds with cc -O2 -static -pthread -Wall -Wextra -Werror"
	standalone unstable "$DEB_61" defaults 1 deb-6.1
	standalone unstable "$DEB_612" defaults 0 deb-6.12
}

# bad_input: exit 2 with a message, no VM for what needs none.
bad_input() {
	local src=$T/hole d rc msg
	[[ -s $src/results.jsonl ]] || { skip "bad input" "no run of the hole family to derive it from"; return 0; }
	d=$T/nofail
	mkdir -p "$d"
	cp "$src/meta.json" "$d/"
	jq -c 'select(.verdict != "FAIL")' "$src/results.jsonl" >"$d/results.jsonl"
	rc=0; msg=$("$H/minimize" "$d" 2>&1) || rc=$?
	check_eq "bad input: no FAIL case -> exit 2" 2 "$rc"
	check "bad input: ... says so" grep -q 'no FAIL case' <<<"$msg"
	rc=0; msg=$("$H/minimize" "$src" --case "$(head -n 1 "$d/results.jsonl" | jq -r .case)" 2>&1) || rc=$?
	check_eq "bad input: --case names a PASS case -> exit 2" 2 "$rc"
	check "bad input: ... says so" grep -q 'not FAIL' <<<"$msg"
	rc=0; msg=$("$H/minimize" "$T/no-such-dir" 2>&1) || rc=$?
	check_eq "bad input: not a directory -> exit 2" 2 "$rc"
	rc=0; msg=$("$H/run-standalone" --kernel "$STOCK" --prog /bin/true 2>&1) || rc=$?
	check_eq "bad input: run-standalone refuses a dynamic program -> exit 2" 2 "$rc"
	check "bad input: ... says so" grep -q 'not a static binary' <<<"$msg"
	# the FAIL case of the bad kernel, its meta.json pointing at stock 6.1:
	# the rerun PASSes
	d=$T/passes
	cp -r "$src" "$d"
	rm -rf "$d/minimize" "$d/minimize.json"
	jq --arg k "$STOCK" '.kernel.origin = $k | .kernel.image = $k' "$src/partial-dio-hole/meta.json" \
		>"$d/partial-dio-hole/meta.json"
	rc=0; msg=$("$H/minimize" "$d" --calibrate-runs 3 2>&1) || rc=$?
	check_eq "bad input: a FAIL case that PASSes when rerun -> exit 2" 2 "$rc"
	check "bad input: ... says so" grep -q 'does not FAIL when rerun' <<<"$msg"
}

main() {
	local t0=$SECONDS part
	local -a parts=("$@")
	((${#parts[@]})) || parts=(hole append hang uring bad_input unstable)
	setup "${parts[@]}"
	for part in "${parts[@]}"; do
		case "$part" in
		hole) family hole partial-dio-hole "$SWEEP_HOLE" hole ;;
		append) family append append-isize "$SWEEP_APPEND" size ;;
		hang) family hang dio-fault-deadlock "$SWEEP_HANG" hang ;;
		uring) uring_template ;;
		bad_input) bad_input ;;
		unstable) unstable ;;
		*) die "unknown part: $part (hole append hang uring bad_input unstable)" ;;
		esac
	done
	echo "# minimize suite: $((SECONDS - t0)) s"
	t_done
}

main "$@"
