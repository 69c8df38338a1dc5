#!/usr/bin/env bash
# Tests of harness/export-lava and harness/run-lava: malformed input, jobs
# that pass `lava-run --validate`, the monitor's regex on whole and cut
# lines, then LAVA runs on a stock and a partial-DIO-bad minimal 6.1 kernel:
# LAVA says pass for every stock case and fail for the bad kernel's hole
# cases, the gap ranges reach LAVA, and the converted results.jsonl has
# run-vm's verdicts for the same kernels and sweep, case by case. Part
# arm64: export-lava --arch arm64 on the 64 KiB-page stock and
# partial-DIO-bad kernels (arm64 Images, arm64 initramfs, jobs with arch:
# arm64 for LAVA's qemu device type), the same schema checks, and a LAVA run
# of them on configs/lava/qemu-tcg-arm64.yaml.
#
#   harness/tests/lava.sh [x86_64] [arm64]   (default both; LAVA_TEST_SWEEP=FILE
#                                             to use another sweep)
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"
# shellcheck source=harness/lib/vm-kernel.sh
. "$DIOGAP_ROOT/harness/lib/vm-kernel.sh"

H=$DIOGAP_ROOT/harness
SWEEP=${LAVA_TEST_SWEEP:-$DIOGAP_ROOT/configs/sweeps/quick.conf}
DEVICE=$DIOGAP_ROOT/configs/lava/qemu-tcg.yaml
T=

setup() {
	need_root
	ensure_pkgs lava-dispatcher python3-yaml jq
	T=$(mktemp -d /var/tmp/diogap-lava-test.XXXXXX)
	on_exit rm -rf "$T"
}

# kernel [PATCH]: the minimal 6.1 bzImage (cached by build-kernel).
kernel() {
	"$H/build-kernel" --source linux-source-6.1 \
		--config "$DIOGAP_ROOT/configs/kernel/minimal-btrfs.config" \
		${1:+--patch "$DIOGAP_ROOT/configs/patches/6.1/$1"} 2>>"$T/build.log" | tail -n 1
}

# exits_2 NAME GREP CMD...: CMD exits 2 and says GREP on stderr.
exits_2() {
	local name=$1 msg=$2 rc=0
	shift 2
	"$@" >"$T/out.log" 2>"$T/err.log" || rc=$?
	check_eq "$name: exit 2" 2 "$rc"
	check "$name: message '$msg'" grep -q -- "$msg" "$T/err.log"
}

test_malformed() {
	: >"$T/plain-file"
	exits_2 "kernel path that does not exist" "no such file" \
		"$H/export-lava" --kernel "$T/no/such/bzImage" --sweep "$SWEEP" --out "$T/x1"
	check "nothing written for a bad kernel" test ! -e "$T/x1"
	exits_2 "a file that is not a kernel" "not a Linux x86 kernel image" \
		"$H/export-lava" --kernel "$T/plain-file" --sweep "$SWEEP" --out "$T/x2"
	exits_2 "--out under a regular file" "cannot create the directory" \
		"$H/export-lava" --kernel "$STOCK" --sweep "$SWEEP" --out "$T/plain-file/out"
	exits_2 "--out not writable" "not writable" \
		"$H/export-lava" --kernel "$STOCK" --sweep "$SWEEP" --out /proc/sys
	exits_2 "--url-base that is not a URL" "must be a URL" \
		"$H/export-lava" --kernel "$STOCK" --sweep "$SWEEP" --out "$T/x3" --url-base 'not a url'
	exits_2 "run-lava on a directory without jobs" "not an export-lava directory" \
		"$H/run-lava" "$T"
}

# validate JOB: lava-run --validate on our device.
validate() {
	lava-run --validate --job-id 1 --output-dir "$T/validate" --device "$DEVICE" "$1" \
		>"$T/validate.log" 2>&1
}

# validate_on DEVICE JOB: lava-run --validate on DEVICE.
validate_on() {
	lava-run --validate --job-id 1 --output-dir "$T/validate" --device "$1" "$2" \
		>"$T/validate.log" 2>&1
}

# strict JOB: the schema a LAVA server applies to a submitted job.
strict() {
	/usr/bin/python3 -c 'import sys, yaml
from lava_common.schemas import validate
validate(yaml.safe_load(open(sys.argv[1])), strict=True, extra_context_variables=[])' "$1" \
		>"$T/strict.log" 2>&1
}

test_export() {
	local rc=0 job
	"$H/export-lava" --kernel "$STOCK" --kernel "$BAD" --sweep "$SWEEP" --out "$L" \
		>"$T/export.out" 2>"$T/export.log" || rc=$?
	check_eq "export-lava exits 0" 0 "$rc"
	check_eq "one job per kernel" 2 "$(grep -c 'job.yaml$' "$T/export.out")"
	LABELS=()
	mapfile -t LABELS < <(jq -r '.labels[]' "$L/export.json")
	check "two kernels of one release get two labels" test "${LABELS[0]}" != "${LABELS[1]:-}"
	for job in "$L"/*/job.yaml; do
		check "lava-run --validate: ${job#"$L"/}" validate "$job"
		check "LAVA's strict job schema (a server's check on submit): ${job#"$L"/}" strict "$job"
	done
	check "the btrfs image ships small (qcow2.xz < 1 MiB)" \
		test "$(stat -c %s "$L/btrfs.qcow2.xz")" -lt 1048576
	"$H/export-lava" --kernel "$STOCK" --sweep "$SWEEP" --out "$T/url" \
		--url-base https://lab.example/diogap >/dev/null 2>&1 || rc=$?
	check "with --url-base every image URL is under it" \
		test "$(grep -c "url: 'https://lab.example/diogap/" "$T/url"/*/job.yaml)" = 3
	# lava-run --validate would fetch the URLs: the schema check only.
	check "--url-base job: LAVA's strict job schema" strict "$(echo "$T/url"/*/job.yaml)"
}

# The job's own regex, as pexpect uses it on a console that arrives a piece
# at a time, on whole lines and on a line a kernel message cut in two.
test_monitor_regex() {
	local job=$L/${LABELS[0]}/job.yaml got
	got=$(/usr/bin/python3 - "$job" <<-'EOF'
		import re, sys, yaml
		job = yaml.safe_load(open(sys.argv[1]))
		mon = [a for a in job["actions"] if "test" in a][0]["test"]["monitors"][0]
		rx = re.compile(mon["pattern"], re.DOTALL)
		buf = ("\r\n1..6\r\nok 1 a.b-c\r\r\n#dg 9 O x ok 9 y\r\nnot ok 2 d.1M\r\n"
		       "ok 3 e # SKIP no uring\r\nnot ok 4 f # ERROR mount failed\r\n"
		       "ok 5 di[    3.1] BUG: x\r\nnot ok 6 g # TIMEOUT timeout\r\n")
		# pexpect searches what has arrived so far: feed one character at a time.
		start, out = 0, []
		for end in range(len(buf) + 1):
		    m = rx.search(buf[start:end])
		    if m:
		        r = m.group("result")
		        out.append("%s=%s" % (m.group("test_case_id"), mon["fixupdict"].get(r, r)))
		        start += m.end()
		print(" ".join(out))
	EOF
	)
	check_eq "monitor regex: whole lines match as they arrive, a cut line does not" \
		"a.b-c=pass d.1M=fail e=skip f=unknown g=unknown" "$got"
}

# lava_result LABEL CASE: LAVA's result for one case.
lava_result() {
	jq -r --arg c "$2" 'select(.definition == "diogap" and .extra.test_case_id == $c) | .result' \
		"$L/$1/lava-results.jsonl"
}

test_run_lava() {
	local rc=0 id n hole=0 bad_ok=0 stock_ok=0
	"$H/run-lava" "$L" >"$T/run-lava.out" 2>"$T/run-lava.log" || rc=$?
	check_eq "run-lava exits 1 (the bad kernel FAILs)" 1 "$rc"
	n=$(grep -c . "$L/cases.tsv")
	while IFS=$'\t' read -r id _; do
		[[ $(lava_result "${LABELS[0]}" "$id") == pass ]] && stock_ok=$((stock_ok + 1))
		[[ $id == dio-partial-write.*.first.* || $id == dio-uring-write.*.first.* ]] || continue
		hole=$((hole + 1))
		[[ $(lava_result "${LABELS[1]}" "$id") == fail ]] && bad_ok=$((bad_ok + 1))
	done <"$L/cases.tsv"
	check_eq "LAVA: pass for every stock case" "$n" "$stock_ok"
	check "the sweep has hole cases ($hole)" test "$hole" -gt 0
	check_eq "LAVA: fail for every hole case on the bad kernel" "$hole" "$bad_ok"
	# shellcheck disable=SC2016 # jq code, not shell
	check "LAVA: each failed case's gap ranges are test cases with a length" jq -se '
		. as $all | (map(select(.definition == "diogap" and .result == "fail") | .extra.test_case_id)) as $f
		| ($f | length) > 0 and all($f[]; . as $c | any($all[]; .definition == "diogap-gaps"
			and (.extra.test_case_id | startswith($c + ".gap.")) and (.measurement | tonumber) > 0))' \
		"$L/${LABELS[1]}/lava-results.jsonl"
	check "converted gaps = LAVA's gap cases" jq -se 'map(select(.verdict == "FAIL"))
		| length > 0 and all(([.gaps[] | "\(.[0])-\(.[1])"] | unique)
			== ([.lava.gaps[].case | capture("\\.gap\\.(?<r>[0-9]+-[0-9]+)\\.").r] | unique))' \
		"$L/${LABELS[1]}/results.jsonl"
	check_eq "converted results: one line per case and kernel" "$((2 * n))" "$(grep -c . "$L/results.jsonl")"
	check "summary.md and ktap.txt written" test -s "$L/summary.md" -a -s "$L/ktap.txt"
	check "harness/report reads the LAVA run" quiet "$H/report" "$L"
	check "report.html written" test -s "$L/report.html"
}

quiet() {
	"$@" >"$T/quiet.log" 2>&1
}

# A kernel whose btrfs is a module the job does not carry (Debian's cloud
# kernel image alone): every case BROKEN, LAVA "unknown", never pass.
test_no_btrfs() {
	local rc=0 d=$T/nobtrfs
	vmk_resolve linux-image-6.1.0-56-cloud-amd64
	"$H/export-lava" --kernel "$K_IMAGE" --sweep "$SWEEP" --out "$d" >/dev/null 2>"$T/nob.log" || rc=$?
	check_eq "kernel without btrfs: export-lava exits 0" 0 "$rc"
	rc=0
	"$H/run-lava" "$d" >/dev/null 2>>"$T/nob.log" || rc=$?
	check_eq "kernel without btrfs: run-lava exits 2" 2 "$rc"
	check "kernel without btrfs: every case BROKEN, naming btrfs" \
		jq -se 'length > 0 and all(.verdict == "BROKEN" and (.reason | test("btrfs is not available")))' \
		"$d/results.jsonl"
	check "kernel without btrfs: LAVA says unknown for every case" \
		jq -se 'map(select(.definition == "diogap")) | length > 0 and all(.result == "unknown")' \
		"$d"/*/lava-results.jsonl
}

# A LAVA log whose verdict for a case disagrees with the guest's stream (one
# stock "pass" turned into "fail"): that case is BROKEN, not PASS nor FAIL.
test_disagreement() {
	local d=$T/tamper rc=0 first
	mkdir -p "$d"
	cp -r "$L/${LABELS[0]}" "$L/cases.tsv" "$d/"
	jq --arg l "${LABELS[0]}" '.labels = [$l]' "$L/export.json" >"$d/export.json"
	first=$(head -n 1 "$d/cases.tsv" | cut -f1)
	sed -i "s/\"extra\": {\"test_case_id\": \"$first\"}, \"level\": \"\([0-9.]*\)\", \"result\": \"pass\"/\"extra\": {\"test_case_id\": \"$first\"}, \"level\": \"\1\", \"result\": \"fail\"/" \
		"$d/${LABELS[0]}/lava/output.yaml"
	"$H/run-lava" --convert-only "$d" >/dev/null 2>"$T/tamper.log" || rc=$?
	check_eq "LAVA result tampered: run-lava --convert-only exits 2" 2 "$rc"
	# shellcheck disable=SC2016 # jq code, not shell
	check "LAVA result tampered: that case is BROKEN and says why" jq -se --arg c "$first" '
		map(select(.case == $c))[0] | .verdict == "BROKEN" and (.reason | test("LAVA recorded fail"))' \
		"$d/results.jsonl"
}

# verdicts FILE: "case verdict" lines, sorted.
verdicts() {
	jq -r '"\(.case) \(.verdict)"' "$1" | sort
}

test_same_as_run_vm() {
	local i spec rc
	for i in 0 1; do
		spec=$STOCK
		((i == 1)) && spec=$BAD
		rc=0
		"$H/run-vm" --kernel "$spec" --sweep "$SWEEP" --out "$T/vm$i" >"$T/vm$i.log" 2>&1 || rc=$?
		check "run-vm on ${LABELS[i]} ran (exit $rc)" test "$rc" = 0 -o "$rc" = 1
		if diff <(verdicts "$T/vm$i/results.jsonl") <(verdicts "$L/${LABELS[i]}/results.jsonl") \
			>"$T/diff$i" 2>&1; then
			ok "${LABELS[i]}: LAVA and run-vm give the same verdict for every case"
		else
			not_ok "${LABELS[i]}: LAVA and run-vm verdicts differ" "$(tr '\n' ' ' <"$T/diff$i")"
		fi
	done
}

# is_arm64_image FILE: an arm64 Image ("ARM\x64" at offset 56 of its header).
is_arm64_image() {
	[[ $(od -An -c -j 56 -N 4 "$1" 2>/dev/null | tr -d ' ') == 'ARMd' ]]
}

# initrd_machine INITRD FILE: the ELF machine of FILE in the initramfs's
# first archive (busybox and the reproducers).
initrd_machine() {
	local x=$T/initrd-x
	rm -rf "$x" && mkdir -p "$x"
	(cd "$x" && zcat "$1" | cpio -id --quiet "$2" 2>/dev/null) || true
	readelf -h "$x/$2" 2>/dev/null | sed -n 's/^ *Machine: *//p'
}

# LAVA jobs for arm64 guests with 64 KiB pages: were --arch ignored,
# export-lava would refuse the arm64 Images (exit 2) or write x86_64 jobs.
test_arm64() {
	local stock bad rc=0 d=$T/lava-arm64 job dir n id hole=0 bad_ok=0 stock_ok=0
	local -a labels
	if ! stock=$("$H/build-kernel" --arch arm64 --page-size 64K 2>>"$T/build.log") ||
		! bad=$("$H/build-kernel" --arch arm64 --page-size 64K \
			--patch "$DIOGAP_ROOT/configs/patches/6.1/partial-dio-hole.patch" 2>>"$T/build.log"); then
		not_ok "arm64: build the 64K stock and partial-DIO-bad kernels" "$(tail -n 5 "$T/build.log")"
		return 0
	fi
	"$H/export-lava" --arch arm64 --kernel "$stock" --kernel "$bad" --sweep "$SWEEP" --out "$d" \
		>"$T/export-arm64.out" 2>"$T/export-arm64.log" || rc=$?
	check_eq "arm64: export-lava --arch arm64 exits 0" 0 "$rc"
	((rc == 0)) || { tail -n 3 "$T/export-arm64.log" | sed 's/^/# /'; return 0; }
	check "arm64: export.json says arm64" jq -e '.arch == "arm64"' "$d/export.json"
	mapfile -t labels < <(jq -r '.labels[]' "$d/export.json")
	for dir in "${labels[@]}"; do
		job=$d/$dir/job.yaml
		check "arm64 $dir: job context arch: arm64, machine virt, cpu max" \
			/usr/bin/python3 -c 'import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["context"]
sys.exit(0 if c == {"arch": "arm64", "machine": "virt", "cpu": "max"} else 1)' "$job"
		check "arm64 $dir: the job deploys the Image" \
			grep -q "url: 'file://$d/$dir/Image'" "$job"
		check "arm64 $dir: ... console ttyAMA0" grep -q 'console=ttyAMA0' "$job"
		check "arm64 $dir: the kernel shipped is an arm64 Image" is_arm64_image "$d/$dir/Image"
		check_eq "arm64 $dir: the initramfs's busybox is AArch64" AArch64 \
			"$(initrd_machine "$d/$dir/initrd.cpio.gz" bin/busybox)"
		check_eq "arm64 $dir: ... and its reproducers" AArch64 \
			"$(initrd_machine "$d/$dir/initrd.cpio.gz" diogap/bin/dio-partial-write)"
		check "arm64 $dir: lava-run --validate on the arm64 qemu device" \
			validate_on "$DIOGAP_ROOT/configs/lava/qemu-tcg-arm64.yaml" "$job"
		check "arm64 $dir: LAVA's strict job schema" strict "$job"
		check "arm64 $dir: the x86_64 device refuses it (arch not available)" \
			not validate_on "$DEVICE" "$job"
	done
	rc=0
	"$H/run-lava" "$d" >"$T/run-lava-arm64.out" 2>"$T/run-lava-arm64.log" || rc=$?
	check_eq "arm64: run-lava exits 1 (the bad kernel FAILs)" 1 "$rc"
	check "arm64: run-lava used the arm64 device" \
		jq -e '.lava_device | endswith("qemu-tcg-arm64.yaml")' "$d/meta.json"
	n=$(grep -c . "$d/cases.tsv")
	L=$d
	while IFS=$'\t' read -r id _; do
		[[ $(lava_result "${labels[0]}" "$id") == pass ]] && stock_ok=$((stock_ok + 1))
		[[ $id == dio-partial-write.*.first.* || $id == dio-uring-write.*.first.* ]] || continue
		hole=$((hole + 1))
		[[ $(lava_result "${labels[1]}" "$id") == fail ]] && bad_ok=$((bad_ok + 1))
	done <"$d/cases.tsv"
	check_eq "arm64: LAVA says pass for every stock case" "$n" "$stock_ok"
	check "arm64: the sweep has hole cases ($hole)" test "$hole" -gt 0
	check_eq "arm64: LAVA says fail for every hole case on the bad kernel" "$hole" "$bad_ok"
	check "arm64: every converted record says arm64 and page_size 65536" \
		jq -se 'length > 0 and all(.arch == "arm64" and .page_size == 65536)' "$d/results.jsonl"
}

not() { ! "$@"; }

test_x86_64() {
	STOCK=$(kernel) BAD=$(kernel partial-dio-hole.patch)
	L=$T/lava
	if [[ ! -f $STOCK || ! -f $BAD ]]; then
		not_ok "build the stock and partial-DIO-bad kernels" "$(tail -n 5 "$T/build.log")"
		return 0
	fi
	test_malformed
	test_export
	test_monitor_regex
	test_run_lava
	test_same_as_run_vm
	test_disagreement
	test_no_btrfs
}

main() {
	local part
	local -a parts=("$@")
	((${#parts[@]})) || parts=(x86_64 arm64)
	setup
	for part in "${parts[@]}"; do
		case $part in
		x86_64) test_x86_64 ;;
		arm64) test_arm64 ;;
		*) die "unknown part: $part (x86_64 arm64)" ;;
		esac
	done
	t_done
}

main "$@"
