# shellcheck shell=bash
# Shared helpers for every harness script: outcomes, messages, packages,
# cleanup stack. Sourced, never run.

# Outcomes, the same numbers as repro/lib/diogap.h.
# shellcheck disable=SC2034 # used by the scripts that source this file
readonly DG_PASS=0 DG_FAIL=1 DG_BROKEN=2 DG_SKIP=4

DIOGAP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIOGAP_CACHE=${DIOGAP_CACHE:-/var/cache/diogap}
DIOGAP_BUILD=${DIOGAP_BUILD:-$DIOGAP_ROOT/build}
export DIOGAP_ROOT DIOGAP_CACHE DIOGAP_BUILD

dg_prog=$(basename "$0")

log() { printf '%s: %s\n' "$dg_prog" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$dg_prog" "$*" >&2; }
# die MSG: an infrastructure or usage error, exit 2 (BROKEN).
die() {
	printf '%s: error: %s\n' "$dg_prog" "$*" >&2
	exit "$DG_BROKEN"
}

verdict_name() {
	case "$1" in
	0) echo PASS ;;
	1) echo FAIL ;;
	4) echo SKIP ;;
	*) echo BROKEN ;;
	esac
}

verdict_code() {
	case "$1" in
	PASS) echo 0 ;;
	FAIL) echo 1 ;;
	SKIP) echo 4 ;;
	*) echo 2 ;;
	esac
}

# worst_exit CODE...: 1 if any FAIL, else 2 if any BROKEN (or unknown code),
# else 4 if all SKIP, else 0. No codes at all is BROKEN: nothing ran.
worst_exit() {
	local c fail=0 broken=0 pass=0 skip=0
	for c in "$@"; do
		case "$c" in
		0) pass=1 ;;
		1) fail=1 ;;
		4) skip=1 ;;
		*) broken=1 ;;
		esac
	done
	if ((fail)); then echo 1
	elif ((broken)); then echo 2
	elif ((pass)); then echo 0
	elif ((skip)); then echo 4
	else echo 2
	fi
}

need_root() {
	[[ $EUID -eq 0 ]] || die "must run as root (loop devices, mounts, apt-get)"
}

# apt_get ARG...: apt-get that waits for another apt or dpkg (unattended
# upgrades on a fresh machine, a second diogap run) instead of failing on
# its lock: up to 15 min for dpkg's lock; "update" retries while the lists
# lock is held.
apt_get() {
	local try out
	if [[ $1 != update ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 "$@"
		return
	fi
	for try in $(seq 1 90); do
		if out=$(apt-get -o DPkg::Lock::Timeout=900 "$@" 2>&1); then
			return 0
		fi
		grep -q 'Could not get lock\|Unable to acquire\|Unable to lock' <<<"$out" || break
		((try == 1)) && log "apt-get update: waiting for another apt to release its lock"
		sleep 10
	done
	printf '%s\n' "$out" >&2
	return 1
}

# ensure_pkgs PKG...: install the Debian packages that are missing.
ensure_pkgs() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing Debian packages: ${missing[*]}"
	command -v apt-get >/dev/null || die "apt-get not found; install: ${missing[*]}"
	if ! apt_get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
		apt_get update -qq >&2 || die "apt-get update failed"
		apt_get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
			die "apt-get install failed: ${missing[*]}"
	fi
}

# ensure_foreign_arch ARCH: dpkg knows ARCH (dpkg --add-architecture), and
# apt's lists have its packages: cross builds take ARCH's libraries
# (liburing-dev:arm64) and guests its busybox from Debian.
ensure_foreign_arch() {
	[[ $1 == "$(dpkg --print-architecture)" ]] && return 0
	dpkg --print-foreign-architectures | grep -qx -- "$1" && return 0
	log "adding the Debian architecture $1 (dpkg --add-architecture $1; apt-get update)"
	dpkg --add-architecture "$1" || die "dpkg --add-architecture $1 failed"
	apt_get update -qq >&2 || die "apt-get update failed"
}

# Cleanup stack: on_exit CMD [ARG...] registers a command (its arguments
# are kept as given); all run in reverse order on EXIT, and on INT/TERM
# (which then exit 130/143). Failures in cleanups are ignored.
dg_cleanups=()
on_exit() {
	local cmd
	printf -v cmd '%q ' "$@"
	dg_cleanups+=("$cmd")
}
dg_run_cleanups() {
	local i
	trap - EXIT INT TERM
	for ((i = ${#dg_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${dg_cleanups[i]}" >/dev/null 2>&1 || true
	done
	dg_cleanups=()
}
dg_exit_trap() {
	local rc=$?
	dg_run_cleanups
	exit "$rc"
}
trap dg_exit_trap EXIT
trap 'dg_run_cleanups; exit 130' INT
trap 'dg_run_cleanups; exit 143' TERM

# Unexpected failures. Exit 1 means "corruption seen" to every user and to
# `git bisect run`, so a command that fails under `set -e` (or a missing
# tool, an unbound variable) must never end a script with its own code:
# the ERR trap makes it exit 2 (BROKEN) with one line
#   SCRIPT: internal error at FILE:LINE: COMMAND (exit N)
# after running the finishers registered with on_internal_error (a script
# with a results directory closes it there). Only a verdict computed from
# results may exit 1, with an explicit `exit`.
#
# errtrace (-E) hands the trap to functions and subshells. It acts only
# where errexit is on, so a failure inside $(...) (where bash turns -e off)
# or in an `if`/`||` context behaves as before. A subshell that fails
# notes its line in DG_ERR_NOTE and exits with the command's code; the
# top level, failing in turn, prints the innermost note.
set -E
DG_ERR_NOTE=${TMPDIR:-/tmp}/diogap-err.$$
DG_INTERNAL_ERROR=
dg_finishers=()
on_internal_error() {
	local cmd
	printf -v cmd '%q ' "$@"
	dg_finishers+=("$cmd")
}
dg_internal_error() {
	local rc=$? msg i
	[[ $- == *e* ]] || return 0
	trap - ERR
	msg="$dg_prog: internal error at ${BASH_SOURCE[1]:-$0}:${BASH_LINENO[0]}: ${BASH_COMMAND} (exit $rc)"
	if ((BASH_SUBSHELL > 0)); then
		[[ -s $DG_ERR_NOTE ]] || printf '%s\n' "$msg" >"$DG_ERR_NOTE" 2>/dev/null || true
		exit "$rc"
	fi
	[[ -s $DG_ERR_NOTE ]] && msg=$(<"$DG_ERR_NOTE")
	rm -f "$DG_ERR_NOTE"
	DG_INTERNAL_ERROR=${msg#"$dg_prog: "}
	printf '%s\n' "$msg" >&2
	set +e
	for ((i = 0; i < ${#dg_finishers[@]}; i++)); do
		eval "${dg_finishers[i]}" >&2 || true
	done
	exit "$DG_BROKEN"
}
trap dg_internal_error ERR
on_exit rm -f "$DG_ERR_NOTE"

# sha of the project checkout, for meta.json.
project_commit() {
	git -C "$DIOGAP_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown
}
