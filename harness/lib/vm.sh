# shellcheck shell=bash
# shellcheck disable=SC2034 # the VM_* globals are this file's output, read by run-vm
# QEMU for run-vm: pick the accelerator, make the two disks, start the VM,
# follow its results channel, end it. Sourced after common.sh, never run.
#
# The results channel is the second virtio disk, a 64 MiB raw file whose
# first 512-byte sector is a header "DIOGAP-RESULTS-1\nlen N\ndmesg M\n";
# the stream's first N bytes follow it, the guest's kernel log (M bytes)
# starts at 32 MiB (harness/guest/init writes them). QEMU's exit
# status is never the verdict: the host ends QEMU itself once the stream
# has its D record (after a moment for the guest to save its kernel log and
# power off by itself), or when a timeout passes.

readonly VM_MAGIC=DIOGAP-RESULTS-1
VM_QEMU=${VM_QEMU:-qemu-system-x86_64}
VM_PROBE_TIMEOUT=${VM_PROBE_TIMEOUT:-10}
# A guest whose stream does not move for the longest case timeout plus this
# many seconds is stuck (the runner itself ends each case at its timeout).
VM_STALL_GRACE=${DIOGAP_VM_STALL_GRACE:-30}
# After the D record the guest saves its kernel log and powers off by
# itself; it is ended after this many seconds if it does not.
VM_POWEROFF_GRACE=${VM_POWEROFF_GRACE:-3}
VM_PID=''

vm_now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# vm_accel FORCE KERNEL WORKDIR: set VM_ACCEL (kvm|tcg) and VM_ACCEL_WHY.
# KVM only when a tiny boot of KERNEL reaches init under it. The answer is
# kept for this boot of the host, unless the probe kernel itself died (QEMU
# ended cleanly without the probe's line): that says nothing about KVM.
vm_accel() {
	local force=$1 kernel=$2 dir=$3 cache
	if [[ -n $force ]]; then
		VM_ACCEL=$force VM_ACCEL_WHY="forced with --accel $force"
		return 0
	fi
	if [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
		VM_ACCEL=tcg VM_ACCEL_WHY="no usable /dev/kvm"
		return 0
	fi
	cache=$DIOGAP_CACHE/vm/accel-$(cat /proc/sys/kernel/random/boot_id)
	if [[ -s $cache ]]; then
		read -r VM_ACCEL VM_ACCEL_WHY <"$cache"
		return 0
	fi
	if vm_probe_kvm "$kernel" "$dir"; then
		VM_ACCEL=kvm VM_ACCEL_WHY="a KVM probe boot reached init"
	else
		VM_ACCEL=tcg VM_ACCEL_WHY="a KVM probe boot failed ($VM_PROBE_WHY)"
	fi
	log "accelerator: $VM_ACCEL ($VM_ACCEL_WHY)"
	[[ $VM_PROBE_WHY == "the kernel stopped before init" ]] && return 0
	mkdir -p "${cache%/*}"
	echo "$VM_ACCEL $VM_ACCEL_WHY" >"$cache"
}

# vm_probe_kvm KERNEL DIR: boot KERNEL under KVM with an init that only
# prints a line and powers off.
vm_probe_kvm() {
	local kernel=$1 dir=$2/kvm-probe rc=0
	VM_PROBE_WHY=''
	mkdir -p "$dir/root/bin" "$dir/root/proc"
	cp "$VMI_BUSYBOX" "$dir/root/bin/busybox"
	cat >"$dir/root/init" <<-'EOF'
		#!/bin/busybox sh
		/bin/busybox echo DIOGAP-KVM-OK
		/bin/busybox mount -t proc proc /proc
		echo o >/proc/sysrq-trigger
		/bin/busybox poweroff -n -f
	EOF
	chmod +x "$dir/root/init"
	vmi_cpio "$dir/root" "$dir/initrd"
	log "probing KVM (a ${VM_PROBE_TIMEOUT}s boot; the answer is kept until the host reboots)"
	# In a group with stderr closed: bash reports an aborted QEMU ("Aborted").
	{ timeout -k 2 "$VM_PROBE_TIMEOUT" setpriv --pdeathsig KILL -- "$VM_QEMU" \
		-accel kvm -cpu host -m 256 -smp 1 -nodefaults -no-user-config \
		-display none -serial "file:$dir/console" -nic none -no-reboot \
		-kernel "$kernel" -initrd "$dir/initrd" -append "console=ttyS0 panic=-1 quiet" \
		</dev/null >"$dir/qemu.out" 2>&1; } 2>/dev/null || rc=$?
	grep -q DIOGAP-KVM-OK "$dir/console" 2>/dev/null && return 0
	case "$rc" in
	0) VM_PROBE_WHY="the kernel stopped before init" ;;
	124) VM_PROBE_WHY="no init within ${VM_PROBE_TIMEOUT}s" ;;
	*) VM_PROBE_WHY="QEMU exit status $rc: $(grep -a . "$dir/qemu.out" | tail -n 1 | cut -c1-120)" ;;
	esac
	return 1
}

# vm_disks DIR SIZE: the sweep's scratch disks DIR/disk-N.img (mkfs.btrfs on
# the host, sweep_make_images), VM_DISKS, and DIR/results.img (the results
# channel, header only).
vm_disks() {
	local dir=$1 size=$2 imgs
	rm -f "$dir"/disk-*.img "$dir/results.img"
	# sweep_make_images says what failed (die) in its subshell
	imgs=$(sweep_make_images "$dir" "$size") || exit "$DG_BROKEN"
	mapfile -t VM_DISKS <<<"$imgs"
	printf '%s\nlen 0\n' "$VM_MAGIC" >"$dir/results.img"
	truncate -s 64M "$dir/results.img" || die "cannot create $dir/results.img"
}

# vm_cmd KERNEL INITRD DIR CONSOLE APPEND MEM SMP: fill VM_CMD. Kernel
# command line: the serial console goes to CONSOLE; a panic ends the VM at
# once (panic=-1 with -no-reboot); printk.devkmsg=on so the runner's per-case
# /dev/kmsg markers are never rate-limited away; cryptomgr.notests skips the
# crypto self-tests at boot (a second or more under TCG; same algorithms).
# Under TCG the CPU is "max" without ERMS and FSRM: with them glibc's memset
# and memcpy and the kernel's clear_page use rep stos/movs byte strings,
# which TCG emulates one element at a time (an 8 MiB memset: 35 ms with,
# 18 ms without; a whole 8 MiB reproducer run: 220 ms with, 165 ms without).
# The bug's paths (iomap, btrfs ordered extents, GUP) never copy with them.
# Both disks are cache=unsafe: QEMU still writes each guest write into the
# host's page cache at once (the host reads results.img while the guest
# runs), but a guest flush no longer costs a host fsync: the guest syncs
# the results disk after every case, and nothing here must survive a host
# crash.
vm_cmd() {
	local kernel=$1 initrd=$2 dir=$3 console=$4 append=$5 mem=$6 smp=$7
	VM_CMD=("$VM_QEMU" -nodefaults -no-user-config -display none -nic none -no-reboot)
	if [[ $VM_ACCEL == kvm ]]; then
		VM_CMD+=(-accel kvm -cpu host)
	else
		VM_CMD+=(-accel tcg -cpu "max,-erms,-fsrm")
	fi
	VM_CMD+=(-m "$mem" -smp "$smp" -serial "file:$console"
		-kernel "$kernel" -initrd "$initrd"
		-append "console=ttyS0 panic=-1 quiet printk.devkmsg=on cryptomgr.notests${append:+ $append}"
)
	# the scratch disks in disk order (the guest numbers the disks that are
	# not the results disk as it finds them: vda, vdb, ...), then results
	local img
	for img in "${VM_DISKS[@]}"; do
		VM_CMD+=(-drive "file=$img,if=virtio,format=raw,cache=unsafe")
	done
	VM_CMD+=(-drive "file=$dir/results.img,if=virtio,format=raw,cache=unsafe")
}

# vm_start DIR: start VM_CMD in the background; VM_PID. QEMU dies with us
# even on SIGKILL (parent-death signal).
vm_start() {
	setpriv --pdeathsig KILL -- "${VM_CMD[@]}" </dev/null >"$1/qemu.out" 2>&1 &
	VM_PID=$!
	VM_T0=$(vm_now_ms)
}

# vm_stop: end QEMU (TERM, then KILL); VM_QEMU_RC is its exit status.
vm_stop() {
	local i
	[[ -n $VM_PID ]] || return 0
	if kill -0 "$VM_PID" 2>/dev/null; then
		kill -TERM "$VM_PID" 2>/dev/null || true
		for ((i = 0; i < 30; i++)); do
			kill -0 "$VM_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$VM_PID" 2>/dev/null || true
	fi
	VM_QEMU_RC=0
	wait "$VM_PID" 2>/dev/null || VM_QEMU_RC=$?
	VM_PID=
}

# vm_channel_len RESULTS_IMG: the stream length the guest committed.
vm_channel_len() {
	local magic word len=0
	{ read -r magic && read -r word len; } <"$1" 2>/dev/null || true
	[[ $magic == "$VM_MAGIC" && $word == len && $len =~ ^[0-9]+$ ]] || len=0
	echo "$len"
}

# vm_channel_read RESULTS_IMG LEN STREAM: copy the committed stream out.
vm_channel_read() {
	dd if="$1" of="$3.tmp" iflag=skip_bytes,count_bytes skip=512 count="$2" \
		bs=64K status=none && mv "$3.tmp" "$3"
}

# vm_channel_dmesg RESULTS_IMG OUT: the guest's kernel log, when it wrote it.
vm_channel_dmesg() {
	local len=0
	len=$(sed -n '3s/^dmesg \([0-9][0-9]*\)$/\1/p' <(head -c 512 "$1")) || true
	[[ -n $len ]] && ((len > 0)) || return 0
	dd if="$1" of="$2" iflag=skip_bytes,count_bytes skip=$((32 * 1024 * 1024)) \
		count="$len" bs=64K status=none
}

# vm_watch DIR STREAM BOOT_TIMEOUT RUN_TIMEOUT STALL_S: follow the results
# channel until the stream is done, QEMU exits or a timeout passes: the
# runner must start (B) within BOOT_TIMEOUT s of QEMU's start, and finish
# (D) within RUN_TIMEOUT s of that, without a pause of STALL_S s. Calls
# vm_on_change (if defined) each time the stream grows. Sets VM_END (done,
# exited, boot-timeout, run-timeout, stall), VM_BOOT_MS (B seen),
# VM_FIRST_MS (first E seen), VM_WALL_MS.
vm_watch() {
	local dir=$1 stream=$2 boot_s=$3 run_s=$4 stall_s=$5 len last=0 now changed
	VM_END='' VM_BOOT_MS='' VM_FIRST_MS=''
	changed=$(vm_now_ms)
	: >"$stream"
	while [[ -z $VM_END ]]; do
		kill -0 "$VM_PID" 2>/dev/null || VM_END=exited
		now=$(vm_now_ms)
		len=$(vm_channel_len "$dir/results.img")
		if ((len != last)); then
			vm_channel_read "$dir/results.img" "$len" "$stream"
			last=$len changed=$now
			[[ -z $VM_BOOT_MS ]] && grep -q '^B ' "$stream" && VM_BOOT_MS=$((now - VM_T0))
			[[ -z $VM_FIRST_MS ]] && grep -q '^E ' "$stream" && VM_FIRST_MS=$((now - VM_T0))
			declare -F vm_on_change >/dev/null && vm_on_change
			grep -q '^D ' "$stream" && VM_END="done"
		fi
		[[ -n $VM_END ]] && break
		if [[ -z $VM_BOOT_MS ]] && ((now - VM_T0 > boot_s * 1000)); then
			VM_END=boot-timeout
		elif [[ -n $VM_BOOT_MS ]] && ((now - VM_T0 - VM_BOOT_MS > run_s * 1000)); then
			VM_END=run-timeout
		elif [[ -n $VM_BOOT_MS ]] && ((now - changed > stall_s * 1000)); then
			VM_END=stall
		else
			sleep 0.1
		fi
	done
	VM_WALL_MS=$(($(vm_now_ms) - VM_T0))
	[[ $VM_END == "done" ]] && vm_wait_exit "$VM_POWEROFF_GRACE"
	return 0
}

# vm_wait_exit S: wait up to S seconds for QEMU to exit by itself.
vm_wait_exit() {
	local i
	for ((i = 0; i < $1 * 20; i++)); do
		kill -0 "$VM_PID" 2>/dev/null || return 0
		sleep 0.05
	done
}

# vm_console_hint CONSOLE: the console line that best explains a failed
# boot: the guest init's FATAL line, a kernel panic, or the last line.
vm_console_hint() {
	local c=$1 l
	l=$(grep -a -m1 -o 'diogap-init: FATAL: .*' "$c" 2>/dev/null | tr -d '\r') &&
		{ echo "${l#diogap-init: }" && return 0; }
	l=$(grep -a -m1 -o 'Kernel panic - not syncing: .*' "$c" 2>/dev/null | tr -d '\r') &&
		{ echo "${l#Kernel }" && return 0; }
	l=$(tr -d '\r' <"$c" 2>/dev/null | grep -a . | tail -n 1 | cut -c1-200)
	[[ -n $l ]] && echo "last console line: $l"
	return 0
}

# vm_end_reason DIR CONSOLE BOOT_TIMEOUT RUN_TIMEOUT STALL_S: why the VM
# ended without a D record, for the cases it did not finish.
vm_end_reason() {
	local dir=$1 hint err
	shift
	hint=$(vm_console_hint "$1")
	err=$(grep -a . "$dir/qemu.out" 2>/dev/null | tail -n 1 | cut -c1-200) || true
	if [[ $VM_END == exited && $VM_QEMU_RC != 0 && -n $err && -z $VM_BOOT_MS ]]; then
		echo "QEMU failed (status $VM_QEMU_RC): $err"
		return 0
	fi
	case "$VM_END:${VM_BOOT_MS:+booted}" in
	exited:) echo "the kernel did not reach the guest's runner (QEMU exited, status $VM_QEMU_RC)${hint:+: $hint}" ;;
	exited:booted) echo "the VM stopped before the run ended (QEMU exited, status $VM_QEMU_RC)${hint:+: $hint}" ;;
	boot-timeout:*) echo "boot timeout: the guest's runner did not start within $2 s${hint:+; $hint}" ;;
	run-timeout:*) echo "run timeout: the cases did not finish within $3 s of boot (guest hung)" ;;
	stall:*) echo "guest stuck: no result for $4 s (hang in the kernel or the runner)" ;;
	*) echo "the VM ended early ($VM_END)" ;;
	esac
}
