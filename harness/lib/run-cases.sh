# shellcheck shell=sh
# The case runner. POSIX sh: it runs under busybox sh in the guest and under
# bash on the host (run-local), so both run cases the same way.
#
#   run_cases CASES BIN_DIR DEV MNT STREAM
#
# CASES is the TAB separated case list of harness/lib/sweep.sh. For each
# case: (re)mount DEV on MNT with the case's options, then BIN_DIR/dg-case
# (repro/tools/dg-case.c) marks the kernel log, runs BIN_DIR/REPRO with its
# timeout and appends to STREAM:
#   S id ms | J id json | O id text | K id kernel-line | E id exit ms [why]
#   C - json: the kernel's capabilities (dg-case preflight), once
#   Z id text (the runner could not record case id)
# then dg_flush is called (if the caller defined it) so results leave at
# once. B and D records open and close the stream; Z is a runner-level error.

# dg_ms: milliseconds since boot, from /proc/uptime ("12.34"), without
# starting a process ("1" NN "0" - 1000: a leading zero is not octal).
dg_ms() {
	read -r _up _ </proc/uptime
	echo $((${_up%.*} * 1000 + 1${_up#*.}0 - 1000))
}

dg_emit() {
	printf '%s\n' "$*" >>"$DG_STREAM"
}

# dg_flush_now [pushed]: hand the new records on, when the caller defined a
# dg_flush (the guests do); "pushed" says dg-case already copied them to
# the results disk. A flush that fails must not end the runner (in the guest
# nothing would run after it) but is not silent either: a Z record for the
# case (results.sh: the case is BROKEN unless FAIL, the run too) and a line
# on stderr (the console). The next flush carries the Z record.
dg_flush_now() {
	if command -v dg_flush >/dev/null 2>&1; then
		_frc=0
		dg_flush "$@" || _frc=$?
		if [ "$_frc" != 0 ]; then
			dg_emit "Z ${DG_CASE:--} recording failed: dg_flush exit $_frc"
			echo "run-cases: recording failed: dg_flush exit $_frc (case ${DG_CASE:--})" >&2
		fi
	fi
}

# dg_fs_devs FS: the devices of filesystem FS ("NAME@I,J,..."; I counts
# from 1 in DG_DEVS, the run's scratch disks), space separated. An empty FS
# (a case list without the column) is the first disk. A "+flakey" suffix
# (the case needs a power cut) is not part of the disks.
dg_fs_devs() {
	_idx=${1#*@}
	_idx=${_idx%+flakey}
	[ -n "$1" ] || _idx=1
	_out=
	for _i in $(echo "$_idx" | tr ',' ' '); do
		_n=0 _got=
		for _d in $DG_DEVS; do
			_n=$((_n + 1))
			[ "$_n" = "$_i" ] && _got=$_d
		done
		[ -n "$_got" ] || return 1
		_out="$_out${_out:+ }$_got"
	done
	echo "$_out"
}

# dg_mount DEVS MNT OPTS: make MNT the btrfs on DEVS (one, or all the
# devices of a multi-device filesystem: device= names them, no scan
# needed) with exactly OPTS. Returns 2 when the old mount cannot be
# unmounted (busy: a process of an earlier case may be stuck in the
# kernel), 1 when the mount fails.
dg_mount() {
	if grep -q " $2 " /proc/mounts; then
		umount "$2" || return 2
	fi
	_o=
	for _d in $1; do
		case "$1" in *" "*) _o="$_o${_o:+,}device=$_d" ;; esac
	done
	[ "$3" = defaults ] || _o="$_o${_o:+,}$3"
	if [ -z "$_o" ]; then
		mount -t btrfs "${1%% *}" "$2"
	else
		mount -t btrfs -o "$_o" "${1%% *}" "$2"
	fi
}

# dg_unmount MNT: unmount MNT if mounted; 1 when busy (a process of an
# earlier case stuck in the kernel?).
dg_unmount() {
	if grep -q " $1 " /proc/mounts; then
		umount "$1" || return 1
	fi
	return 0
}

# A case that needs a power cut (FS "...+flakey") runs on its disk under
# dm-flakey (build/dg-dm, repro/lib/dm.c): one such device at a time, named
# diogap-PID-DISK (PID: this runner's shell, so `dg-dm cleanup` can tell a
# dead run's leftovers). Both the device and a direct mount of its disk open
# the disk exclusively: the mount goes first, then the device.
DG_FLAKEY_NAME='' DG_FLAKEY_NODE='' DG_FLAKEY_DEV=''

# dg_flakey_down: remove the flakey device, if any (MNT unmounted first).
dg_flakey_down() {
	[ -n "$DG_FLAKEY_NAME" ] || return 0
	"$DG_BIN/dg-dm" remove "$DG_FLAKEY_NAME" >/dev/null 2>&1 ||
		"$DG_BIN/dg-dm" remove --deferred "$DG_FLAKEY_NAME" >/dev/null 2>&1 || true
	DG_FLAKEY_NAME='' DG_FLAKEY_NODE='' DG_FLAKEY_DEV=''
}

# dg_flakey_up DEV: DG_FLAKEY_MOUNT = the node of a flakey device over DEV
# (made now unless it exists). When none can be made, DEV itself: the
# reproducer then SKIPs "no dm-flakey under the scratch: ..." with
# DIOGAP_FLAKEY_WHY, why the runner could not. (No $(...): a subshell would
# lose the DG_FLAKEY_* state.)
dg_flakey_up() {
	DG_FLAKEY_MOUNT=$DG_FLAKEY_NODE
	[ "$DG_FLAKEY_DEV" = "$1" ] && return 0
	dg_flakey_down
	_fname=diogap-$$-${1##*/}
	if "$DG_BIN/dg-dm" create "$_fname" "$1" >"$DG_TMP/dm.out" 2>"$DG_TMP/dm"; then
		read -r DG_FLAKEY_NODE <"$DG_TMP/dm.out"
		DG_FLAKEY_NAME=$_fname DG_FLAKEY_DEV=$1 DG_FLAKEY_MOUNT=$DG_FLAKEY_NODE
		unset DIOGAP_FLAKEY_WHY
	else
		DIOGAP_FLAKEY_WHY="$(tr '\n' ' ' <"$DG_TMP/dm")"
		export DIOGAP_FLAKEY_WHY
		DG_FLAKEY_MOUNT=$1
	fi
}

# dg_run_one N ID REPRO TIMEOUT ARGS: run one case with dg-case (one
# process does the clock, the timeout, the records and the kernel log: in
# an emulated guest every process costs milliseconds). With DG_PUSH set,
# dg-case also copies the records to that results disk.
dg_run_one() {
	_rc=0
	DG_CASE=$2
	# shellcheck disable=SC2086 # ARGS is a list of options: split on purpose
	"$DG_BIN/dg-case" run --stream "$DG_STREAM" --id "$2" --seq "$1" --timeout "$4" \
		--json "$DG_TMP/json" --out "$DG_TMP/out" --token "$DG_TOKEN" \
		${DG_PUSH:+--push "$DG_PUSH"} -- \
		"$DG_BIN/$3" $5 --json "$DG_TMP/json" "$DG_MNT/work" || _rc=$?
	case "$_rc" in
	0) dg_flush_now ${DG_PUSH:+pushed} ;;
	3)
		# timed out: killed, or stuck in the kernel and left behind
		DG_STUCK=1
		dg_flush_now ${DG_PUSH:+pushed}
		;;
	*)
		grep -q "^E $2 " "$DG_STREAM" || dg_emit "E $2 2 0 runner-error"
		dg_flush_now
		;;
	esac
}

# dg_not_run ID WHY TEXT: a case that could not run (BROKEN).
dg_not_run() {
	DG_CASE=$1
	dg_emit "S $1 $(dg_ms)"
	dg_emit "O $1 $3"
	dg_emit "E $1 2 0 $2"
	dg_flush_now
}

# run_cases CASES BIN_DIR DEVS MNT STREAM [DONE_IDS]: DEVS are the scratch
# disks, space separated (a case's FS column picks its filesystem's); DONE_IDS
# lists case ids to skip (--resume).
run_cases() {
	DG_BIN=$2 DG_DEVS=$3 DG_MNT=$4 DG_STREAM=$5
	DG_TMP=${TMPDIR:-/tmp}/diogap-case.$$
	DG_STUCK=0
	DG_CASE=
	DG_TOKEN=$$.$(dg_ms)
	_cur=
	_n=0
	dg_emit "B - $(uname -r)"
	if [ ! -x "$DG_BIN/dg-case" ]; then
		dg_emit "Z - no $DG_BIN/dg-case (the runner's helper; run make)"
		dg_emit "D - done"
		dg_flush_now
		return 0
	fi
	mkdir -p "$DG_TMP" "$DG_MNT"
	# flakey devices of runs that died (SIGKILL) before removing theirs
	[ ! -x "$DG_BIN/dg-dm" ] || "$DG_BIN/dg-dm" cleanup >/dev/null 2>&1 || true
	# what the kernel offers the reproducers, probed (dg-case preflight)
	dg_emit "C - $("$DG_BIN/dg-case" preflight 2>/dev/null || echo '{"error": "preflight failed"}')"
	dg_flush_now
	_tab=$(printf '\t')
	# Column 8 (expect_splat) is for results.jq on the host only.
	while IFS="$_tab" read -r _id _repro _mount _timeout _ _args _fs _; do
		_n=$((_n + 1))
		if [ -s "${6:-}" ] && grep -qxF "$_id" "$6"; then
			continue
		fi
		if [ "$_fs $_mount" != "$_cur" ]; then
			if [ "$DG_STUCK" = 1 ]; then
				# A process stuck in the kernel pins the mount: umount would hang.
				dg_not_run "$_id" stuck "not run: an earlier case is stuck in the kernel"
				continue
			fi
			_mrc=0
			if ! _devs=$(dg_fs_devs "$_fs"); then
				dg_not_run "$_id" no-disk "not run: filesystem $_fs needs more scratch disks than the run has ($DG_DEVS)"
				continue
			fi
			case "$_fs" in
			*+flakey) _want_flakey=1 ;;
			*) _want_flakey= ;;
			esac
			if [ -n "$_want_flakey$DG_FLAKEY_NAME" ] && ! dg_unmount "$DG_MNT" >"$DG_TMP/mount" 2>&1; then
				DG_STUCK=1
				dg_not_run "$_id" stuck "not run: the previous mount is busy (a process of an earlier case is stuck?): $(tr '\n' ' ' <"$DG_TMP/mount")"
				continue
			fi
			if [ -n "$_want_flakey" ]; then
				dg_flakey_up "$_devs"
				_devs=$DG_FLAKEY_MOUNT
			else
				dg_flakey_down
			fi
			dg_mount "$_devs" "$DG_MNT" "$_mount" >"$DG_TMP/mount" 2>&1 || _mrc=$?
			if [ "$_mrc" = 2 ]; then
				DG_STUCK=1
				dg_not_run "$_id" stuck "not run: the previous mount is busy (a process of an earlier case is stuck?): $(tr '\n' ' ' <"$DG_TMP/mount")"
				continue
			elif [ "$_mrc" != 0 ]; then
				dg_not_run "$_id" mount-failed "mount -t btrfs -o $_mount $_devs failed: $(tr '\n' ' ' <"$DG_TMP/mount")"
				_cur=
				continue
			fi
			_cur="$_fs $_mount"
			mkdir -p "$DG_MNT/work"
		fi
		dg_run_one "$_n" "$_id" "$_repro" "$_timeout" "$_args"
	done <"$1"
	DG_CASE=
	if [ -n "$DG_FLAKEY_NAME" ] && [ "$DG_STUCK" != 1 ]; then
		dg_unmount "$DG_MNT" >/dev/null 2>&1 || true
	fi
	dg_flakey_down
	dg_emit "D - done"
	dg_flush_now
	rm -rf "$DG_TMP"
}
