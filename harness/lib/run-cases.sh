# shellcheck shell=sh
# The case runner. POSIX sh: it runs under busybox sh in the guest and under
# bash on the host (run-local), so both run cases the same way.
#
#   run_cases CASES BIN_DIR DEV MNT STREAM
#
# CASES is the TAB separated case list of harness/lib/sweep.sh. For each
# case: (re)mount DEV on MNT with the case's options, mark the kernel log,
# run BIN_DIR/REPRO with its timeout, and append to STREAM:
#   S id ms | J id json | O id text | K id kernel-line | E id exit ms [why]
# then call dg_flush (if the caller defined it) so results leave at once.
# B and D records open and close the stream; Z is a runner-level error.

dg_ms() {
	# Milliseconds since boot, from /proc/uptime (busybox date has no %N).
	awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

dg_emit() {
	printf '%s\n' "$*" >>"$DG_STREAM"
}

# dg_emit_file TAG ID FILE: one record per line of FILE.
dg_emit_file() {
	[ -s "$3" ] || return 0
	awk -v t="$1" -v id="$2" '{ gsub(/\r/, ""); print t " " id " " $0 }' "$3" >>"$DG_STREAM"
}

dg_flush_now() {
	if command -v dg_flush >/dev/null 2>&1; then
		dg_flush || true
	fi
}

# dg_mount DEV MNT OPTS: make MNT the btrfs on DEV with exactly OPTS.
# Returns 2 when the old mount cannot be unmounted (busy: a process of an
# earlier case may be stuck in the kernel), 1 when the mount fails.
dg_mount() {
	if grep -q " $2 " /proc/mounts; then
		umount "$2" || return 2
	fi
	if [ "$3" = defaults ]; then
		mount -t btrfs "$1" "$2"
	else
		mount -t btrfs -o "$3" "$1" "$2"
	fi
}

# dg_kmsg_mark TEXT: a marker in the kernel log; 0 when it was written.
dg_kmsg_mark() {
	[ -w /dev/kmsg ] && printf 'diogap: %s\n' "$1" >/dev/kmsg 2>/dev/null
}

# dg_kmsg_since MARK FILE: the kernel log after the last MARK.
dg_kmsg_since() {
	dmesg 2>/dev/null | awk -v m="diogap: $1" '
		index($0, m) { n = 0; f = 1; next }
		f { l[n++] = $0 }
		END { for (i = 0; i < n; i++) print l[i] }' >"$2" || true
}

# dg_wait PID TIMEOUT_S: wait for PID at most TIMEOUT_S seconds; DG_RC is
# its exit code, or "timeout" after killing it. A process stuck in the
# kernel may not die: it is left behind rather than waited for. (Not in a
# command substitution: only this shell can wait for its children.)
dg_wait() {
	_pid=$1
	_end=$(($(dg_ms) + $2 * 1000))
	while kill -0 "$_pid" 2>/dev/null; do
		if [ "$(dg_ms)" -ge "$_end" ]; then
			kill -9 "$_pid" 2>/dev/null
			_n=0
			while kill -0 "$_pid" 2>/dev/null && [ $_n -lt 20 ]; do
				sleep 0.25
				_n=$((_n + 1))
			done
			kill -0 "$_pid" 2>/dev/null || wait "$_pid" 2>/dev/null
			DG_RC=timeout
			return 0
		fi
		sleep 0.05
	done
	DG_RC=0
	wait "$_pid" || DG_RC=$?
}

# dg_run_one N ID REPRO TIMEOUT ARGS: run one case; its records go to the stream.
dg_run_one() {
	_t0=$(dg_ms)
	dg_emit "S $2 $_t0"
	_mark="case-begin $DG_TOKEN.$1 $2"
	dg_kmsg_mark "$_mark" || _mark=
	rm -f "$DG_TMP/json" "$DG_TMP/out" "$DG_TMP/kmsg"
	mkdir -p "$DG_MNT/work"
	# shellcheck disable=SC2086 # ARGS is a list of options: split on purpose
	"$DG_BIN/$3" $5 --json "$DG_TMP/json" "$DG_MNT/work" >"$DG_TMP/out" 2>&1 &
	dg_wait $! "$4"
	_rc=$DG_RC
	_t1=$(dg_ms)
	dg_emit_file J "$2" "$DG_TMP/json"
	dg_emit_file O "$2" "$DG_TMP/out"
	if [ -n "$_mark" ]; then
		dg_kmsg_since "$_mark" "$DG_TMP/kmsg"
		dg_emit_file K "$2" "$DG_TMP/kmsg"
	fi
	if [ "$_rc" = timeout ]; then
		dg_emit "E $2 2 $((_t1 - _t0)) timeout"
		DG_STUCK=1
	else
		dg_emit "E $2 $_rc $((_t1 - _t0))"
	fi
	dg_flush_now
}

# dg_not_run ID WHY TEXT: a case that could not run (BROKEN).
dg_not_run() {
	dg_emit "S $1 $(dg_ms)"
	dg_emit "O $1 $3"
	dg_emit "E $1 2 0 $2"
	dg_flush_now
}

# run_cases CASES BIN_DIR DEV MNT STREAM [DONE_IDS]: DONE_IDS lists case ids
# to skip (--resume).
run_cases() {
	DG_BIN=$2 DG_DEV=$3 DG_MNT=$4 DG_STREAM=$5
	DG_TMP=${TMPDIR:-/tmp}/diogap-case.$$
	DG_STUCK=0
	DG_TOKEN=$$.$(dg_ms)
	mkdir -p "$DG_TMP" "$DG_MNT"
	_cur=
	_n=0
	dg_emit "B - $(uname -r)"
	dg_flush_now
	_tab=$(printf '\t')
	while IFS="$_tab" read -r _id _repro _mount _timeout _ _args; do
		_n=$((_n + 1))
		if [ -n "${6:-}" ] && grep -qxF "$_id" "$6"; then
			continue
		fi
		if [ "$_mount" != "$_cur" ]; then
			if [ "$DG_STUCK" = 1 ]; then
				# A process stuck in the kernel pins the mount: umount would hang.
				dg_not_run "$_id" stuck "not run: an earlier case is stuck in the kernel"
				continue
			fi
			_mrc=0
			dg_mount "$DG_DEV" "$DG_MNT" "$_mount" >"$DG_TMP/mount" 2>&1 || _mrc=$?
			if [ "$_mrc" = 2 ]; then
				DG_STUCK=1
				dg_not_run "$_id" stuck "not run: the previous mount is busy (a process of an earlier case is stuck?): $(tr '\n' ' ' <"$DG_TMP/mount")"
				continue
			elif [ "$_mrc" != 0 ]; then
				dg_not_run "$_id" mount-failed "mount -t btrfs -o $_mount failed: $(tr '\n' ' ' <"$DG_TMP/mount")"
				_cur=
				continue
			fi
			_cur=$_mount
		fi
		dg_run_one "$_n" "$_id" "$_repro" "$_timeout" "$_args"
	done <"$1"
	dg_emit "D - done"
	dg_flush_now
	rm -rf "$DG_TMP"
}
