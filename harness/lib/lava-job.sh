# shellcheck shell=bash
# LAVA job definitions for harness/export-lava. Sourced after common.sh and
# sweep.sh, never run.
#
# A job boots one kernel under `boot: method: qemu` from three images it
# deploys `to: tmpfs` (kernel, initrd, a qcow2 btrfs shipped xz-compressed)
# and reads the results from the console with two monitors:
#   diogap       one test case per sweep case, from its KTAP result line
#   diogap-gaps  one test case per gap range of a failed case (LAVA's
#                monitors put nothing but test_case_id into a result's extra
#                data, so each range is its own case, its length the
#                measurement in bytes)
# The job relies on `device_type: qemu` and `context: arch` only: the
# console, -no-reboot and the guest's command line travel in image_arg.
# arm64 jobs (lava_set_arch arm64) say `arch: arm64`, for which LAVA's qemu
# device type runs qemu-system-aarch64 -machine virt, and ask for the virt
# machine and the "max" CPU in the context too (every granule: 4K, 16K, 64K).

# The result group comes from a lookahead: "SKIP", "ERROR" or "TIMEOUT"
# after " # " when the line has that directive, else "ok" / "not ok". The
# whole line must be there, up to its newline: pexpect searches whatever
# part of the console has arrived, and a pattern that may end before the
# newline matches half a line (a cut id, "not ok" before " # ERROR" comes).
# The id must run to the end of the line or to " # ", so a line a kernel
# message cut in two matches nothing rather than a wrong id.
readonly LAVA_ID_RE='[A-Za-z0-9._-]+'
readonly LAVA_RESULT_RE="\\n(?=(?:(?:not ok|ok) [0-9]+ $LAVA_ID_RE # )?(?P<result>SKIP|ERROR|TIMEOUT|not ok|ok) )(?:not ok|ok) [0-9]+ (?P<test_case_id>$LAVA_ID_RE)(?=(?: # [^\\r\\n]*)?\\r*\\n)"
readonly LAVA_GAP_RE="\\n# gap (?P<test_case_id>$LAVA_ID_RE) (?P<result>fail) (?P<measurement>[0-9]+) (?P<units>bytes)(?=\\r*\\n)"
LAVA_ARCH=x86_64
LAVA_APPEND='console=ttyS0,115200 panic=-1 quiet loglevel=1 printk.devkmsg=on rdinit=/diogap/lava-init'

# lava_set_arch ARCH: the jobs' architecture (x86_64 or arm64) and the
# guest's console (virt's PL011 is ttyAMA0).
lava_set_arch() {
	LAVA_ARCH=$1
	[[ $1 != arm64 ]] || LAVA_APPEND=${LAVA_APPEND/console=ttyS0,115200/console=ttyAMA0,115200}
}

# lava_yq STRING: STRING as a YAML single-quoted scalar.
lava_yq() {
	printf "'%s'" "${1//\'/\'\'}"
}

# lava_timeouts CASES: LAVA_T_TEST (every case at its timeout, plus 10 s
# each and a minute to boot), LAVA_T_CONN (the monitors wait this long for
# the next line: the longest case timeout plus a minute), LAVA_T_DEPLOY,
# LAVA_T_BOOT, LAVA_T_JOB (seconds).
lava_timeouts() {
	local sum max
	read -r sum max < <(awk -F'\t' '{ s += $4 + 10; if ($4 > m) m = $4 } END { print s + 0, m + 0 }' "$1")
	LAVA_T_TEST=$((sum + 60))
	LAVA_T_CONN=$((max + 60 > 120 ? max + 60 : 120))
	LAVA_T_DEPLOY=300
	LAVA_T_BOOT=120
	LAVA_T_JOB=$((LAVA_T_DEPLOY + LAVA_T_BOOT + LAVA_T_TEST + 120))
}

# lava_job_name SWEEP_NAME SWEEP_HASH RELEASE CASES: reproducer set, kernel
# and sweep, at most 200 characters (the server's limit).
lava_job_name() {
	local repros
	repros=$(cut -f2 "$4" | awk '!seen[$0]++' | paste -sd' ')
	printf 'diogap %s sweep (%s) on %s: %s' "$1" "$2" "$3" "$repros" | cut -c1-200
}

# lava_image NAME URL SHA256 IMAGE_ARG [COMPRESSION]: one deploy image.
lava_image() {
	printf '      %s:\n' "$1"
	printf '        image_arg: %s\n' "$(lava_yq "$4")"
	printf '        url: %s\n' "$(lava_yq "$2")"
	printf '        sha256sum: %s\n' "$3"
	[[ -z ${5:-} ]] || printf '        compression: %s\n' "$5"
}

# lava_job OUT NAME KERNEL_URL KERNEL_SHA INITRD_URL INITRD_SHA DISK_URL
# DISK_SHA METADATA_JSON: write the job definition to OUT. LAVA_T_* must be set.
lava_job() {
	local out=$1 name=$2 meta=$9
	{
		printf '# diogap LAVA job, written by harness/export-lava: %s\n' "$name"
		printf '# Submit: lavacli jobs submit %s\n' "$(basename "$out")"
		printf 'device_type: qemu\n'
		printf 'job_name: %s\n' "$(lava_yq "$name")"
		printf 'priority: medium\nvisibility: public\n'
		printf 'timeouts:\n  job: {seconds: %d}\n  action: {seconds: %d}\n' \
			"$LAVA_T_JOB" "$LAVA_T_TEST"
		printf '  connection: {seconds: %d}\n' "$LAVA_T_CONN"
		printf 'context:\n  arch: %s\n' "$LAVA_ARCH"
		[[ $LAVA_ARCH != arm64 ]] || printf '  machine: virt\n  cpu: max\n'
		printf 'metadata:\n'
		jq -r 'to_entries[] | "  \(.key): \(.value | tostring | @json)"' <<<"$meta"
		printf 'actions:\n- deploy:\n    to: tmpfs\n    timeout: {seconds: %d}\n    images:\n' \
			"$LAVA_T_DEPLOY"
		lava_image kernel "$3" "$4" "-kernel {kernel} -append \"$LAVA_APPEND\" -no-reboot"
		lava_image initrd "$5" "$6" '-initrd {initrd}'
		lava_image disk "$7" "$8" '-drive file={disk},if=virtio,format=qcow2,cache=unsafe' xz
		printf -- '- boot:\n    method: qemu\n    media: tmpfs\n    timeout: {seconds: %d}\n' \
			"$LAVA_T_BOOT"
		printf -- '- test:\n    timeout: {seconds: %d}\n    monitors:\n' "$LAVA_T_TEST"
		printf '    - name: diogap\n'
		printf '      start: %s\n' "$(lava_yq 'KTAP version 1')"
		printf '      end: %s\n' "$(lava_yq '\n# Totals: pass:[0-9]+ ')"
		printf '      pattern: %s\n' "$(lava_yq "$LAVA_RESULT_RE")"
		printf "      fixupdict: {'ok': pass, 'not ok': fail, 'SKIP': skip, 'ERROR': unknown, 'TIMEOUT': unknown}\n"
		printf '    - name: diogap-gaps\n'
		printf '      start: %s\n' "$(lava_yq '# diogap-gaps begin')"
		printf '      end: %s\n' "$(lava_yq '# diogap-gaps end')"
		printf '      pattern: %s\n' "$(lava_yq "$LAVA_GAP_RE")"
	} >"$out.tmp" && mv "$out.tmp" "$out"
}
