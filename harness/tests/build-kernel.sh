#!/usr/bin/env bash
# Tests of harness/build-kernel on Debian's linux-source-6.1: a patch that
# does not apply, a build that fails, options that cannot come out, a cache
# hit, switching patch sets on the shared build directory (no stale object),
# and TERM in the middle of a build. Uses the real $DIOGAP_CACHE (a cold first
# run builds the stock kernel, ~5 min on 2 cores); removes only the cache
# entries its own throwaway patches created.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"

BK=$DIOGAP_ROOT/harness/build-kernel
FRAG=$DIOGAP_ROOT/configs/kernel/minimal-btrfs.config
SRC=linux-source-6.1
T='' NONCE=''

setup() {
	need_root
	T=$(mktemp -d /tmp/diogap-t-bk.XXXXXX)
	on_exit rm -rf -- "$T"
	NONCE=$(date +%s%N)
}

# log_of STDERR_FILE: the log path named by build-kernel's message.
log_of() { sed -n 's/.*log: \(\/[^ )]*\).*/\1/p' "$1" | tail -n 1; }
# tree_of LOG: the cached source tree the build used.
tree_of() { sed -n 's/^== tree: //p' "$1"; }
odir_of() { sed -n 's/^== build dir: //p' "$1"; }

# line_patch FILE FILE_IN_TREE LINE: a patch adding LINE after the first
# line of FILE_IN_TREE as shipped in 6.1.192 (an SPDX line).
line_patch() {
	cat >"$1" <<EOF
--- a/$2
+++ b/$2
@@ -1,2 +1,3 @@
 // SPDX-License-Identifier: GPL-2.0
+$3
 /*
EOF
}

# marker_patch FILE FILE_IN_TREE TEXT: a patch adding a string constant that
# ends up in vmlinux.
marker_patch() {
	line_patch "$1" "$2" "static const char diogap_test_marker[] __attribute__((used)) = \"$3\";"
}

# lacks PATTERN PATH...: no file under PATH contains PATTERN.
lacks() { [[ -e $2 ]] && ! grep -rqa -- "$1" "${@:2}"; }

# unlocked LOCKFILE TAG: the slot lock is free, or whoever holds it is not
# of the run tagged TAG (its environment): another build of the same source
# (a second checkout's tests, a user's) may hold it meanwhile.
unlocked() {
	local fd pid
	flock -n "$1" true && return 0
	while read -r fd; do
		pid=${fd#/proc/}
		pid=${pid%%/*}
		tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "DIOGAP_TEST_TAG=$2" && return 1
	done < <(find /proc/[0-9]*/fd -lname "$1" 2>/dev/null)
	return 0
}

# no_proc_in DIR: no process has its working directory in DIR (make and
# the compilers of an O= build run in the build directory).
no_proc_in() {
	local d
	for d in /proc/[0-9]*/cwd; do
		[[ $(readlink "$d" 2>/dev/null) == "$1"* ]] && return 1
	done
	return 0
}

test_usage_errors() {
	local rc=0
	"$BK" --no-such-flag >/dev/null 2>"$T/u.err" || rc=$?
	check_eq "unknown argument exits 2" 2 "$rc"
	rc=0
	"$BK" --source "$SRC" --config "$T/missing.config" >/dev/null 2>"$T/u.err" || rc=$?
	check_eq "missing fragment exits 2" 2 "$rc"
	check "the message names the missing fragment" grep -q "$T/missing.config" "$T/u.err"
	rc=0
	"$BK" --source "$T/nowhere" >/dev/null 2>"$T/u.err" || rc=$?
	check_eq "missing source exits 2" 2 "$rc"
}

test_patch_does_not_apply() {
	local p=$T/bad.patch rc=0 logf out
	# First hunk fits, second does not: nothing may be applied.
	line_patch "$p" fs/btrfs/inode.c "/* diogap-test-$NONCE */"
	cat >>"$p" <<EOF
--- a/fs/btrfs/file.c
+++ b/fs/btrfs/file.c
@@ -1,2 +1,3 @@
 // SPDX-License-Identifier: GPL-2.0
+/* diogap-test-$NONCE */
 this line is not in file.c
EOF
	out=$("$BK" --source "$SRC" --config "$FRAG" --patch "$p" 2>"$T/bad.err") || rc=$?
	check_eq "a patch that does not apply exits 2" 2 "$rc"
	check_eq "... and prints no kernel path" "" "$out"
	check "... the message says so and names the patch" grep -q "patch does not apply: $p" "$T/bad.err"
	logf=$(log_of "$T/bad.err")
	check "... the message names an existing log ($logf)" test -s "$logf"
	check "... the log holds patch's own output" grep -q 'FAILED' "$logf"
	check "... its first, fitting hunk was not left applied" \
		lacks "diogap-test-$NONCE" "$(tree_of "$logf")/fs/btrfs"
}

test_option_cannot_come_out() {
	local f=$T/impossible.config rc=0 out logf
	# EXT4_DEBUG depends on EXT4_FS (off). PRINTK_TIME: the last fragment
	# that names an option wins, so asking it off here is satisfied, and
	# IO_URING=y is satisfied too: neither may be reported.
	printf '%s\n' 'CONFIG_DIOGAP_NO_SUCH_OPTION=y' 'CONFIG_EXT4_DEBUG=y' \
		'# CONFIG_PRINTK_TIME is not set' 'CONFIG_IO_URING=y' >"$f"
	out=$("$BK" --source "$SRC" --config "$FRAG" --config "$f" 2>"$T/cfg.err") || rc=$?
	check_eq "an option that cannot come out exits 2" 2 "$rc"
	check_eq "... and prints no kernel path" "" "$out"
	check "... names the option that does not exist" grep -q 'CONFIG_DIOGAP_NO_SUCH_OPTION: asked y, got absent (no such option' "$T/cfg.err"
	check "... names the one whose dependency is off, and the dependency" \
		grep -q 'CONFIG_EXT4_DEBUG: asked y, got absent (defined in fs/ext4/Kconfig, depends on EXT4_FS' "$T/cfg.err"
	check "... counts exactly those two" grep -q '2 option(s) .*: CONFIG_DIOGAP_NO_SUCH_OPTION CONFIG_EXT4_DEBUG; log: ' "$T/cfg.err"
	logf=$(log_of "$T/cfg.err")
	check "... and the log lists them too" grep -q '^CONFIG_EXT4_DEBUG: asked y' "$logf"
}

test_cache_hit() {
	local p1 p2 rc=0 key m1 m2
	p1=$("$BK" --source "$SRC" --config "$FRAG" 2>"$T/hit1.err") || rc=$?
	check_eq "stock 6.1 builds (or is cached)" 0 "$rc"
	check "... the path is a bzImage" vmk_magic "$p1"
	m1=$(stat -c %Y.%i "$p1" 2>/dev/null || echo none)
	rc=0
	p2=$("$BK" --source "$SRC" --config "$FRAG" 2>"$T/hit2.err") || rc=$?
	check_eq "the same build again exits 0" 0 "$rc"
	check_eq "the same build again returns the same path" "$p1" "$p2"
	check "... and says it is a cache hit" grep -q 'cache hit' "$T/hit2.err"
	m2=$(stat -c %Y.%i "$p2" 2>/dev/null || echo gone)
	check_eq "... without rewriting the kernel" "$m1" "$m2"
	key=$(basename "$(dirname "$p1")")
	# shellcheck disable=SC2016 # jq code, not shell
	check "meta.json carries the key and the fragment's sha256" jq -e --arg k "$key" \
		--arg s "$(sha256sum "$FRAG" | cut -d' ' -f1)" '.key == $k and .fragments[0].sha256 == $s' \
		"$(dirname "$p1")/meta.json"
	check "the entry keeps .config and build.log" test -s "$(dirname "$p1")/.config" -a -s "$(dirname "$p1")/build.log"
	rc=0
	"$BK" --source "$SRC" --config "$FRAG" --out "$T/copy.bzImage" >"$T/out.txt" 2>/dev/null || rc=$?
	check_eq "--out prints the copy's path" "$T/copy.bzImage" "$(cat "$T/out.txt")"
	check "--out copies the kernel" cmp -s "$p1" "$T/copy.bzImage"
}

vmk_magic() { [[ $(od -An -c -j 514 -N 4 -- "$1" 2>/dev/null | tr -d ' ') == HdrS ]]; }

# Two throwaway patch sets on the one shared build directory: the second
# must put back what the first changed and rebuild it.
test_switch_patch_sets() {
	local pa=$T/a.patch pb=$T/b.patch ka kb rc=0 logf odir
	marker_patch "$pa" fs/btrfs/props.c "diogap-A-$NONCE"
	marker_patch "$pb" fs/btrfs/uuid-tree.c "diogap-B-$NONCE"
	ka=$("$BK" --source "$SRC" --config "$FRAG" --patch "$pa" 2>"$T/a.err") || rc=$?
	check_eq "a kernel with patch A builds" 0 "$rc"
	logf=$(log_of "$T/a.err")
	odir=$(odir_of "$logf")
	check "... vmlinux holds A's string" grep -qa "diogap-A-$NONCE" "$odir/vmlinux"
	rc=0
	kb=$("$BK" --source "$SRC" --config "$FRAG" --patch "$pb" 2>"$T/b.err") || rc=$?
	check_eq "then a kernel with patch B builds" 0 "$rc"
	check "... vmlinux holds B's string" grep -qa "diogap-B-$NONCE" "$odir/vmlinux"
	check "... and no longer A's (A's file was put back and rebuilt)" \
		lacks "diogap-A-$NONCE" "$odir/vmlinux"
	check_eq "the two keys differ" 1 "$([[ $ka != "$kb" ]] && echo 1 || echo 0)"
	check "the source tree is unpatched afterwards" \
		lacks "diogap-[AB]-$NONCE" "$(tree_of "$logf")/fs/btrfs"
	[[ -n $ka ]] && rm -rf -- "$(dirname "$ka")"
	[[ -n $kb ]] && rm -rf -- "$(dirname "$kb")"
}

test_broken_build() {
	local p=$T/err.patch rc=0 out logf
	line_patch "$p" fs/btrfs/props.c "#error diogap-test-$NONCE"
	out=$("$BK" --source "$SRC" --config "$FRAG" --patch "$p" 2>"$T/err.err") || rc=$?
	check_eq "a build that fails exits 2" 2 "$rc"
	check_eq "... and prints no kernel path" "" "$out"
	check "... says the build failed and names the log" grep -q 'kernel build failed; log: /' "$T/err.err"
	check "... shows the compiler's error" grep -q "error: #error diogap-test-$NONCE" "$T/err.err"
	logf=$(log_of "$T/err.err")
	check "... the patch was taken out again" \
		lacks "diogap-test-$NONCE" "$(tree_of "$logf")/fs/btrfs/props.c"
}

# TERM while make runs: make and its compilers end, the patch comes out,
# the lock is free, exit 143.
test_term_mid_build() {
	local p=$T/term.patch pid rc=0 i logf odir lock
	marker_patch "$p" fs/btrfs/props.c "diogap-T-$NONCE"
	DIOGAP_TEST_TAG=term-$NONCE "$BK" --source "$SRC" --config "$FRAG" --patch "$p" \
		>/dev/null 2>"$T/term.err" &
	pid=$!
	for ((i = 0; i < 600; i++)); do
		grep -q 'make -j' "$T/term.err" && break
		sleep 0.2
	done
	sleep 2
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	check_eq "TERM during make exits 143" 143 "$rc"
	logf=$(log_of "$T/term.err")
	odir=$(odir_of "$logf")
	check "... no make or compiler is left running in its build directory" no_proc_in "$odir"
	check "... the patch was taken out again" \
		lacks "diogap-T-$NONCE" "$(tree_of "$logf")/fs/btrfs/props.c"
	lock=$DIOGAP_CACHE/locks/$(basename "$(dirname "$(tree_of "$logf")")").lock
	check "... the source's lock is free (of this run)" unlocked "$lock" "term-$NONCE"
}

ALL_TESTS=(usage_errors cache_hit patch_does_not_apply option_cannot_come_out broken_build
	switch_patch_sets term_mid_build)

# build-kernel.sh [TEST...]: all tests, or the named ones (without "test_").
main() {
	local t
	setup
	(($#)) || set -- "${ALL_TESTS[@]}"
	for t in "$@"; do
		declare -F "test_$t" >/dev/null || die "no such test: $t (tests: ${ALL_TESTS[*]})"
		"test_$t"
	done
	t_done
}

main "$@"
