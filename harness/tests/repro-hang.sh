#!/usr/bin/env bash
# Tests of dio-self-mmap-write and its watchdog, on the running kernel:
#  - every variant (engine, overlap, fault pattern, size, nocow) PASSes on a
#    loop-mounted btrfs: this kernel has the nofault retry, nothing hangs;
#  - bad input, --hang-timeout included, exits 2 with one line;
#  - the hang path for real, without any test knob in the reproducer: on a
#    FUSE filesystem whose READs never complete (a small fusepy daemon
#    below), the O_DIRECT write faults on its own mapping and never returns,
#    the same shape as btrfs without 51bd9563b678. The reproducer must say
#    FAIL (hang) once --hang-timeout has passed, with the stuck task's state,
#    wchan and stack in its JSON, exit without waiting for the child,
#    without holding the caller's stdout pipe and without touching the file;
#    the child must be gone once the daemon is. The same daemon with READs
#    allowed is the control: there the write PASSes.
#
#   harness/tests/repro-hang.sh [BUILD_DIR]
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/lib/scratch.sh
. "$DIOGAP_ROOT/harness/lib/scratch.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"

BIN='' MNT='' T='' FUSE_PID='' FUSE_MNT='' FUSE_BACK=''
readonly PY=/usr/bin/python3 # Debian's python3, where python3-fusepy lives

setup() {
	need_root
	BIN=${1:-$DIOGAP_BUILD}/dio-self-mmap-write
	[[ -x $BIN ]] || die "$BIN is missing: run make first"
	ensure_pkgs btrfs-progs jq python3 python3-fusepy
	scratch_new
	T=$DG_RUN_DIR
	MNT=$T/btrfs
	mkdir -p "$MNT"
	truncate -s 1G "$T/btrfs.img"
	mkfs.btrfs -q -f "$T/btrfs.img" >/dev/null
	# nodatasum and a direct-I/O loop device: on v6.15+ a checksummed
	# file's O_DIRECT write is buffered (SKIP), and a buffered loop device
	# makes a direct write look buffered (repro/lib/direct.c)
	LOOP=$(losetup --find --show --direct-io=on "$T/btrfs.img")
	mount -o nodatasum "$LOOP" "$MNT"
	mkdir "$MNT/w"
	# runs before scratch_release: a stuck writer must be freed first
	on_exit fuse_stop
}

# repro OUT ARGS...: run the reproducer; JSON to OUT.json, stdout to
# OUT.out, stderr to OUT.err; echo its exit code.
repro() {
	local out=$1 rc=0
	shift
	rm -f "$out.json"
	"$BIN" "$@" --json "$out.json" >"$out.out" 2>"$out.err" || rc=$?
	echo "$rc"
}

# jfield OUT FILTER: one value out of the first JSON record (the one that
# ran: after a hang, later iterations are "not run" SKIP records).
jfield() { head -n 1 "$1.json" 2>/dev/null | jq -r "$2" 2>/dev/null || true; }

test_variants_pass() {
	local eng off fault size nc rc v why name n=0
	for eng in psync uring "uring --async"; do
		for off in 0 64K 1M; do
			for fault in none first all stride:2; do
				for size in 4K 1M 16M; do
					for nc in "" --nocow; do
						name="--engine $eng --offset $off --fault $fault --size $size${nc:+ $nc}"
						# shellcheck disable=SC2086 # eng and nc are option lists
						rc=$(repro "$T/v" --engine $eng --offset "$off" --fault "$fault" \
							--size "$size" $nc --hang-timeout 20 "$MNT/w")
						v=$(jfield "$T/v" .verdict)
						why=$(jfield "$T/v" .diag)
						if [[ $v == SKIP && $why == "write went buffered ("* ]]; then
							# the nodatasum write is direct; nr_dirtied/
							# nr_written noise (other writers' writeback
							# on the host) can only make it look buffered:
							# once more, as in repro-local's retry_if_buffered
							echo "# $name: retried once: $why"
							# shellcheck disable=SC2086 # eng and nc are option lists
							rc=$(repro "$T/v" --engine $eng --offset "$off" --fault "$fault" \
								--size "$size" $nc --hang-timeout 20 "$MNT/w")
							v=$(jfield "$T/v" .verdict)
							why=$(jfield "$T/v" .diag)
						fi
						if [[ $rc == 0 && $v == PASS ]]; then
							ok "PASS on btrfs: $name"
						elif [[ $rc == 4 && $v == SKIP && $fault != all &&
							$why =~ ^precondition\ not\ met:\ ([0-9]+)/([0-9]+)\ pages\ resident &&
							${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]]; then
							# a read fault on the file's own mapping maps
							# its neighbours too (fault-around): the partly
							# resident shape never happened, and it says so
							ok "PASS on btrfs: $name (SKIP: every page resident after the touches: $why)"
						else
							not_ok "PASS on btrfs: $name" "exit $rc, verdict '$v': $(tail -n 3 "$T/v.out" "$T/v.err" | tr '\n' ' ')"
						fi
						n=$((n + 1))
					done
				done
			done
		done
	done
	log "$n variants run on btrfs"
}

# The record says what ran: same / overlapping / other range, page cache
# really dropped before the write, no hang member on a PASS.
test_record() {
	local rc
	rc=$(repro "$T/r" --offset 64K --size 1M --fault none "$MNT/w")
	check_eq "overlap run exits 0" 0 "$rc"
	check_eq "record names the overlap" overlap "$(jfield "$T/r" .ranges)"
	check_eq "record: target range" "[65536,1114112]" "$(jfield "$T/r" '.target|tojson')"
	check_eq "record: page cache empty after fadvise" 0 "$(jfield "$T/r" .page_cache_after_drop)"
	check_eq "record: nothing resident with --fault none" 0 "$(jfield "$T/r" .residency.resident)"
	check_eq "record: no hang member on PASS" null "$(jfield "$T/r" .hang)"
	check_eq "record: file size offset+size" 1114112 "$(jfield "$T/r" .size_seen)"
	check_eq "record: no buffer member (the buffer is the file)" false "$(jfield "$T/r" 'has("buffer")')"
	check_eq "record: the rerun line has no --buffer" false "$(jfield "$T/r" '.rerun | contains("--buffer")')"
	rc=$(repro "$T/r" --size 1M "$MNT/w")
	check_eq "record names the same range" same "$(jfield "$T/r" .ranges)"
	rc=$(repro "$T/r" --size 64K --offset 1M "$MNT/w")
	check_eq "record names another range" disjoint "$(jfield "$T/r" .ranges)"
	check "no leftover target file after PASS runs" \
		bash -c "! compgen -G '$MNT/w/diogap-dio-self-mmap-write-*' >/dev/null"
}

# The verification's FAIL path, through the library's test hook (the
# running kernel writes correctly): a punched hole in the target range and
# a file one unit too long must both be FAIL, exit 1, named precisely.
test_fail_path() {
	local rc
	rc=$(DIOGAP_TEST_CORRUPT=punch repro "$T/c" --offset 64K --size 1M --iterations 2 "$MNT/w")
	check_eq "punched hole: exit 1" 1 "$rc"
	check_eq "punched hole: both iterations FAIL" "FAIL FAIL" "$(jq -r .verdict "$T/c.json" | xargs)"
	check_eq "punched hole: one zero gap at the target start, a hole" \
		'[[65536,69632,"zero"]] [[65536,69632,"hole"]]' \
		"$(jfield "$T/c" '(.gaps|tojson) + " " + (.gap_extents|tojson)')"
	check_eq "punched hole: first_bad is the hole's first sector, zeros where the pattern belongs" \
		'65536 zero true true' \
		"$(jfield "$T/c" '[.first_bad.offset, .first_bad.class, .first_bad.got == ("0" * 1024),
			(.first_bad.want | startswith("64676f6964676170") and length == 1024)] | map(tostring) | join(" ")')"
	check "punched hole: the rerun line carries the hook" \
		grep -q '^# rerun: DIOGAP_TEST_CORRUPT=punch ' "$T/c.out"
	rc=$(DIOGAP_TEST_CORRUPT=grow repro "$T/c" --size 64K "$MNT/w")
	check_eq "file too long: exit 1, no gaps, size named" "1 [] 69632" \
		"$rc $(jfield "$T/c" '(.gaps|tojson) + " " + (.size_seen|tostring)')"
	rc=$(repro "$T/c" --size 1M --offset 64K --iterations 3 --engine uring "$MNT/w")
	check_eq "three iterations over the same file: exit 0, all PASS" "0 PASS PASS PASS" \
		"$rc $(jq -r .verdict "$T/c.json" | xargs)"
}

# bad NAME ARGS...: exit 2 and a one-line message on stderr.
bad() {
	local name=$1 rc
	shift
	rc=$(repro "$T/b" "$@")
	if [[ $rc == 2 && $(wc -l <"$T/b.err") == 1 && ! -s $T/b.json ]]; then
		ok "bad input exits 2: $name"
	else
		not_ok "bad input exits 2: $name" "exit $rc, stderr: $(head -c 300 "$T/b.err")"
	fi
}

test_bad_input() {
	local v
	for v in 0 -1 abc '' 1e9 nan inf 5s; do
		bad "--hang-timeout '$v'" --hang-timeout "$v" "$MNT/w"
	done
	bad "--hang-timeout without a value" "$MNT/w" --hang-timeout
	bad "--async with --engine psync" --async "$MNT/w"
	bad "--engine aio" --engine aio "$MNT/w"
	bad "--buffer anon (the buffer is the file)" --buffer anon "$MNT/w"
	bad "--buffer memfd (not this reproducer's option)" --buffer memfd "$MNT/w"
	DIOGAP_TEST_CORRUPT=bogus bad "test hook value unknown" "$MNT/w"
	bad "--qd (not this reproducer's)" --qd 4 "$MNT/w"
	bad "--fixed-buffers (not this reproducer's)" --fixed-buffers "$MNT/w"
	bad "--offset not aligned" --offset 100 "$MNT/w"
	check "the message names the alignment" grep -q 4096 "$T/b.err"
	bad "--size not aligned" --size 1000 "$MNT/w"
	bad "--fault nonsense" --fault sideways "$MNT/w"
	DIOGAP_TEST_CORRUPT=stale bad "test hook it cannot apply (stale)" "$MNT/w"
	bad "missing target" "$T/nowhere"
	bad "target not btrfs without --any-fs" /dev/shm
}

# ---- a FUSE filesystem whose reads can be made to never complete ---------

fuse_daemon_py() {
	cat <<'EOF'
# Passthrough to ROOT. Mode "block": every READ waits forever (logged);
# mode "short": a WRITE stores and acknowledges at most 4 KiB (the kernel
# returns short writes); mode "pass": plain. Exits when its parent goes.
import errno, os, sys, threading, time
from fusepy import FUSE, FuseOSError, Operations

class Gate(Operations):
    def __init__(self, root, mode, log):
        self.root, self.block, self.short, self.log = root, mode == 'block', mode == 'short', log
        self.never = threading.Event()

    def _p(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def getattr(self, path, fh=None):
        st = os.lstat(self._p(path))
        return {k: getattr(st, k) for k in ('st_mode', 'st_nlink', 'st_size', 'st_uid',
                'st_gid', 'st_atime', 'st_mtime', 'st_ctime', 'st_blocks')}

    def access(self, path, amode):
        if not os.access(self._p(path), amode):
            raise FuseOSError(errno.EACCES)

    def readdir(self, path, fh):
        return ['.', '..'] + os.listdir(self._p(path))

    def statfs(self, path):
        s = os.statvfs(self._p(path))
        return {k: getattr(s, k) for k in ('f_bsize', 'f_frsize', 'f_blocks', 'f_bfree',
                'f_bavail', 'f_files', 'f_ffree', 'f_favail', 'f_flag', 'f_namemax')}

    def create(self, path, mode, fi=None):
        return os.open(self._p(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)

    def open(self, path, flags):
        return os.open(self._p(path), os.O_RDWR)

    def unlink(self, path):
        os.unlink(self._p(path))

    def truncate(self, path, length, fh=None):
        os.truncate(self._p(path), length)

    def chmod(self, path, mode):
        os.chmod(self._p(path), mode)

    def utimens(self, path, times=None):
        os.utime(self._p(path), times)

    def read(self, path, size, offset, fh):
        if self.block:
            with open(self.log, 'a') as f:
                f.write('read blocked: %s offset %d size %d\n' % (path, offset, size))
            self.never.wait()
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        if self.short:
            data = data[:4096]
        return os.pwrite(fh, data, offset)

    def fsync(self, path, datasync, fh):
        os.fsync(fh)
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)
        return 0

def orphan_watch(ppid):
    while os.getppid() == ppid:
        time.sleep(0.5)
    os._exit(0)

mode, root, mnt, log = sys.argv[1:5]
threading.Thread(target=orphan_watch, args=(os.getppid(),), daemon=True).start()
FUSE(Gate(root, mode, log), mnt, foreground=True, nothreads=False)
EOF
}

# fuse_start MODE: mount the daemon on $FUSE_MNT (backing store $FUSE_BACK).
fuse_start() {
	local i
	FUSE_BACK=$T/fuse-back FUSE_MNT=$T/fuse-mnt
	mkdir -p "$FUSE_BACK" "$FUSE_MNT"
	rm -f "$T/fuse.log"
	fuse_daemon_py >"$T/gate.py"
	"$PY" "$T/gate.py" "$1" "$FUSE_BACK" "$FUSE_MNT" "$T/fuse.log" 2>"$T/fuse.err" &
	FUSE_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q " $FUSE_MNT fuse" /proc/mounts && return 0
		kill -0 "$FUSE_PID" 2>/dev/null || break
		sleep 0.1
	done
	warn "FUSE daemon did not mount: $(head -c 500 "$T/fuse.err")"
	return 1
}

# fuse_stop: kill the daemon (the kernel then fails its pending requests,
# which frees a writer stuck on them) and unmount.
fuse_stop() {
	if [[ -n $FUSE_PID ]]; then
		kill -KILL "$FUSE_PID" 2>/dev/null || true
		wait "$FUSE_PID" 2>/dev/null || true
		FUSE_PID=
	fi
	if [[ -n $FUSE_MNT ]] && grep -q " $FUSE_MNT " /proc/mounts; then
		umount "$FUSE_MNT" 2>/dev/null || umount -l "$FUSE_MNT"
	fi
}

# gone PID SECONDS: PID exits (or becomes a zombie) within SECONDS.
gone() {
	local i st
	for ((i = 0; i < $2 * 10; i++)); do
		st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
		[[ $st == Z ]] && return 0
		sleep 0.1
	done
	return 1
}

test_fuse_control_passes() {
	local rc
	fuse_start pass || { not_ok "FUSE control: daemon mounts"; return; }
	rc=$(repro "$T/fp" --any-fs --fault none --size 1M --hang-timeout 20 "$FUSE_MNT")
	check_eq "FUSE control (reads served): PASS, exit 0" "0 PASS" "$rc $(jfield "$T/fp" .verdict)"
	fuse_stop
}

# The daemon acknowledges 4 KiB per WRITE: the kernel finishes such a short
# O_DIRECT write with buffered I/O (direct_write_fallback) or hands the
# short count back; either way the data must come out right. The short
# counts that reached the reproducer are logged, not asserted.
test_fuse_short_writes() {
	local rc
	fuse_start short || { not_ok "FUSE short WRITEs: daemon mounts"; return; }
	rc=$(repro "$T/s" --any-fs --fault none --size 1M --hang-timeout 30 "$FUSE_MNT")
	check_eq "FUSE short WRITEs (psync): PASS, exit 0" "0 PASS" "$rc $(jfield "$T/s" .verdict)"
	log "short writes returned to dio-self-mmap-write (psync): $(jfield "$T/s" .short_writes)"
	rc=$(repro "$T/s" --any-fs --fault first --size 256K --engine uring --hang-timeout 30 "$FUSE_MNT")
	check_eq "FUSE short WRITEs (uring): PASS, exit 0" "0 PASS" "$rc $(jfield "$T/s" .verdict)"
	log "short completions returned to dio-self-mmap-write (uring): $(jfield "$T/s" .short_writes)"
	fuse_stop
}

# hang_case NAME TIMEOUT ARGS...: the reproducer on the FUSE mount whose
# reads never complete.
hang_case() {
	local name=$1 to=$2 rc t0 t1 el pid left file stack_ok
	shift 2
	fuse_start block || { not_ok "$name: daemon mounts"; return; }
	rm -f "$T/h.json"
	t0=$(date +%s%N)
	# Through a pipe: if the stuck child kept stdout open, cat (and so this
	# pipeline) would not end before `timeout` fires.
	rc=0
	timeout 120 "$BIN" --any-fs --fault none --hang-timeout "$to" "$@" \
		--json "$T/h.json" "$FUSE_MNT" 2>"$T/h.err" | cat >"$T/h.out" ||
		rc=${PIPESTATUS[0]}
	t1=$(date +%s%N)
	el=$(((t1 - t0) / 1000000))
	check_eq "$name: exit 1 (FAIL)" 1 "$rc"
	check_eq "$name: verdict FAIL" FAIL "$(jfield "$T/h" .verdict)"
	check "$name: diag says hang" grep -q '^hang: ' <(jfield "$T/h" .diag)
	check_eq "$name: hang phase is the write" write "$(jfield "$T/h" .hang.phase)"
	check "$name: waited at least --hang-timeout ($to s; took ${el} ms)" test "$el" -ge "$((to * 1000))"
	check "$name: exits promptly after it (took ${el} ms)" test "$el" -lt "$(((to + 15) * 1000))"
	check_eq "$name: JSON records the timeout" "$to" "$(jfield "$T/h" .hang_timeout)"
	check "$name: the FUSE read really was blocked" grep -q 'read blocked' "$T/fuse.log"
	check "$name: KTAP says not ok with hang diagnostics" \
		grep -qE '^not ok 1 ' "$T/h.out"
	check "$name: KTAP lists the stuck task" grep -q '^# hang: task ' "$T/h.out"
	check "$name: KTAP totals line" grep -q '^# Totals: pass:0 fail:1 ' "$T/h.out"
	check "$name: rerun line printed" grep -q '^# rerun: ' "$T/h.out"
	check "$name: at least one task recorded" test "$(jfield "$T/h" '.hang.tasks|length')" -ge 1
	# /proc/PID/stack needs root and CONFIG_STACKTRACE: judge by our own
	stack_ok=yes
	[[ -s /proc/self/stack ]] || stack_ok=no
	if [[ $stack_ok == yes ]]; then
		check "$name: a stack excerpt in the JSON" \
			test "$(jfield "$T/h" '[.hang.tasks[].stack|length]|add')" -ge 1
	else
		skip "$name: a stack excerpt in the JSON" "/proc/self/stack unreadable here"
	fi
	if [[ -w /proc/sysrq-trigger ]]; then
		check_eq "$name: sysrq w triggered" written "$(jfield "$T/h" .hang.sysrq_w)"
	fi
	check "$name: the recorded stack is in a page fault" \
		grep -q 'fault' <(jfield "$T/h" '.hang.tasks[].stack[]')
	pid=$(jfield "$T/h" .hang.pid) left=$(jfield "$T/h" .hang.tasks_left)
	if [[ $(jfield "$T/h" .hang.after_sigkill) == exited ]]; then
		# the wait was killable: the watchdog reaped it without blocking
		check "$name: SIGKILLed writer said gone, and is" gone "${pid:-0}" 1
	else
		check "$name: the writer is still stuck ($left tasks) while the filesystem is" \
			test -n "$pid" -a -d "/proc/$pid"
	fi
	file=$(compgen -G "$FUSE_BACK/diogap-dio-self-mmap-write-*" || true)
	check "$name: the target file was left alone (not unlinked)" test -n "$file"
	fuse_stop
	check "$name: the writer is gone once the filesystem is" gone "${pid:-0}" 10
	rm -f "$FUSE_BACK"/diogap-*
}

# hang_not_run N: after a hang in iteration 1 of N (hang_case's files),
# the file is kept (dg_abandon_file) and iterations 2..N are SKIP "not run",
# in KTAP and JSON, with totals that add up.
hang_not_run() {
	local n=$1 i
	check "hang, $n iterations: '# file kept: <file> (why)'" \
		grep -q "^# file kept: $FUSE_MNT/diogap-dio-self-mmap-write-[0-9]*\.dat (.*stuck" "$T/h.out"
	for ((i = 2; i <= n; i++)); do
		check "hang, $n iterations: iteration $i is SKIP not run" \
			grep -q "^ok $i dio-self-mmap-write\..*\.i$i # SKIP not run: " "$T/h.out"
	done
	check "hang, $n iterations: totals pass:0 fail:1 skip:$((n - 1))" \
		grep -q "^# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:$((n - 1)) error:0$" "$T/h.out"
	check_eq "hang, $n iterations: JSON records 1 FAIL then $((n - 1)) SKIP" \
		"FAIL 1 SKIP $((n - 1))" \
		"$(jq -rs '"FAIL \(map(select(.verdict == "FAIL")) | length) SKIP \(.[1:] | map(select(.verdict == "SKIP")) | length)"' "$T/h.json")"
	check "hang: no '# gaps ... prediction' line under a hang" \
		bash -c "! grep -q 'prediction' '$T/h.out'"
}

# fuse_dev: /dev/fuse, loading the fuse module (kmod's modprobe) and making
# the node when the module is there but the node is not (a bare container).
fuse_dev() {
	[[ -c /dev/fuse ]] && return 0
	ensure_pkgs kmod
	modprobe fuse 2>/dev/null || true
	[[ -c /dev/fuse ]] && return 0
	if grep -qw fuse /proc/filesystems; then
		mknod -m 0666 /dev/fuse c 10 229 2>/dev/null || true
	fi
	[[ -c /dev/fuse ]]
}

# The FUSE hang is the suite's core proof (the watchdog on a real hang): it
# not running is a failure, never a SKIP.
test_fuse_hang() {
	fuse_dev || {
		not_ok "FUSE hang path: no /dev/fuse (modprobe fuse failed): the hang proof could not run"
		return
	}
	test_fuse_control_passes
	test_fuse_short_writes
	hang_case "hang psync" 2 --size 1M
	hang_case "hang psync, longer timeout" 5 --size 64K --offset 64K --iterations 3
	hang_not_run 3
	hang_case "hang uring async" 3 --size 1M --engine uring --async
	check "uring async: the stuck task is an io-wq worker" \
		grep -q '"comm":"iou-wrk' "$T/h.json"
}

main() {
	setup "$@"
	test_bad_input
	test_record
	test_fail_path
	test_variants_pass
	test_fuse_hang
	t_done
}

main "$@"
