# shellcheck shell=bash
# Scratch space: the only place the harness writes images, mounts and loop
# devices. Each run owns one directory under the scratch root, named with
# its pid and that pid's start time, so a later run can tell a live owner
# from one that was killed and clean up after it. Sourced after common.sh.

DIOGAP_SCRATCH=${DIOGAP_SCRATCH:-/var/tmp/diogap}
readonly DG_SCRATCH_MARK=.diogap-scratch
DG_RUN_DIR=

# scratch_root_ok: the root is ours (it carries our marker) or does not
# exist yet. Anything else is refused: we never write elsewhere.
scratch_root_ok() {
	local root=$DIOGAP_SCRATCH
	[[ $root == /* ]] || die "DIOGAP_SCRATCH must be an absolute path: $root"
	case "$root" in
	/ | /bin | /boot | /dev | /etc | /home | /lib | /proc | /root | /sbin | /sys | /usr | /var | /tmp)
		die "refusing scratch root $root: not a directory of its own"
		;;
	esac
	if [[ -e $root && ! -e $root/$DG_SCRATCH_MARK ]]; then
		die "refusing scratch root $root: it exists and is not a diogap scratch (no $DG_SCRATCH_MARK)"
	fi
	mkdir -p "$root"
	touch "$root/$DG_SCRATCH_MARK"
}

# pid_start PID: the start time of PID (field 22 of /proc/PID/stat).
pid_start() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	awk '{ print $20 }' <<<"$stat"
}

# scratch_is_ours PATH: PATH is inside the scratch root.
scratch_is_ours() {
	local p
	p=$(realpath -m "$1")
	[[ $p == "$(realpath -m "$DIOGAP_SCRATCH")"/* ]]
}

# unmount DIR: unmount, lazily when busy.
unmount() {
	grep -q " $1 " /proc/mounts || return 0
	umount "$1" 2>/dev/null || umount -l "$1"
}

# scratch_release DIR: unmount everything under DIR (deepest first), detach
# the loop devices backed by files in DIR, remove DIR.
scratch_release() {
	local dir=$1 m dev file
	scratch_is_ours "$dir" || die "refusing to clean $dir: outside $DIOGAP_SCRATCH"
	while read -r m; do
		unmount "$m" 2>/dev/null || warn "could not unmount $m"
	done < <(awk -v d="$dir/" 'index($2 "/", d) == 1 { print $2 }' /proc/mounts | sort -r)
	while IFS=: read -r dev file; do
		[[ $file == "$dir"/* ]] || continue
		losetup -d "$dev" 2>/dev/null || warn "could not detach $dev"
	done < <(losetup -n -O NAME,BACK-FILE --raw 2>/dev/null | sed 's/ /:/')
	rm -rf --one-file-system "$dir"
}

# scratch_reap: clean up after runs whose owner is gone (SIGKILL, crash).
scratch_reap() {
	local dir base pid start
	for dir in "$DIOGAP_SCRATCH"/run.*; do
		[[ -d $dir ]] || continue
		base=${dir##*/run.}
		pid=${base%%.*} start=${base#*.}
		[[ $(pid_start "$pid" 2>/dev/null) == "$start" ]] && continue
		log "cleaning up after a run that was killed: $dir"
		scratch_release "$dir"
	done
}

# scratch_new: make this run's directory (DG_RUN_DIR), cleaned on exit.
scratch_new() {
	scratch_root_ok
	scratch_reap
	DG_RUN_DIR="$DIOGAP_SCRATCH/run.$$.$(pid_start $$)"
	mkdir -p "$DG_RUN_DIR"
	on_exit scratch_release "$DG_RUN_DIR"
}
