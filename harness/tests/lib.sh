# shellcheck shell=bash
# Tiny test helpers for harness/tests/*.sh: each check prints one KTAP-ish
# line; t_done prints the closing "N passed, N failed, N skipped" and sets
# the exit. A SKIP is counted apart: it is not a pass.
# Sourced after harness/lib/common.sh.

t_pass=0 t_fail=0 t_skip=0

t_n() { echo $((t_pass + t_fail + t_skip)); }

ok() {
	t_pass=$((t_pass + 1))
	printf 'ok %d %s\n' "$(t_n)" "$1"
}

not_ok() {
	t_fail=$((t_fail + 1))
	printf 'not ok %d %s\n' "$(t_n)" "$1"
	[[ -z ${2:-} ]] || printf '# %s\n' "$2"
}

# skip NAME REASON: a check that could not run here (KTAP "# SKIP").
skip() {
	t_skip=$((t_skip + 1))
	printf 'ok %d %s # SKIP %s\n' "$(t_n)" "$1" "$2"
}

# check NAME CMD...: ok when CMD succeeds.
check() {
	local name=$1
	shift
	if "$@" >/dev/null; then ok "$name"; else not_ok "$name" "failed: $*"; fi
}

# check_eq NAME WANT GOT
check_eq() {
	if [[ $2 == "$3" ]]; then ok "$1"; else not_ok "$1" "wanted '$2', got '$3'"; fi
}

# no_leftovers DIR: no mount and no loop device under DIR.
no_leftovers() {
	! grep -qF " $1" /proc/mounts && ! losetup -n -O BACK-FILE 2>/dev/null | grep -qF "$1"
}

# jqe FILE PROGRAM [ARGS]: true when PROGRAM's output on FILE is true.
jqe() { jq -e "${@:2}" "$1" >/dev/null; }

# QEMU processes booted from an initramfs under our scratch root
# (DIOGAP_SCRATCH), and their end: tests leave no VM behind.
our_vms() { pgrep -f -- "-initrd $DIOGAP_SCRATCH/" || true; }
no_vm_left() { [[ -z $(our_vms) ]]; }
kill_our_vms() {
	local p
	for p in $(our_vms); do kill -KILL "$p" 2>/dev/null || true; done
}

# vm_test_setup: T, a temporary directory, removed at exit with this
# test's own scratch root (DIOGAP_SCRATCH) and every VM booted from it.
vm_test_setup() {
	T=$(mktemp -d /var/tmp/diogap-t.XXXXXX)
	on_exit rm -rf "$T"
	on_exit rm -rf "$DIOGAP_SCRATCH"
	on_exit kill_our_vms
}

# t_done: the closing line, and the suite's exit: 1 when a check failed
# (an explicit exit: a bare false would be an internal error, common.sh).
t_done() {
	echo "$t_pass passed, $t_fail failed, $t_skip skipped"
	((t_fail == 0)) || exit 1
}
