# shellcheck shell=bash
# run-vm's results layout, on top of results.sh:
#   OUT/meta.json                 the run: sweep, accelerator, kernels, commit
#   OUT/<label>/                  one kernel: results.jsonl ktap.txt dmesg.txt
#                                 summary.md console.log stream.txt meta.json
#                                 guest-dmesg.txt (the whole guest kernel log)
#                                 qemu.log (QEMU's own messages, if any)
#   OUT/results.jsonl             every kernel's lines, appended as cases end
#   OUT/ktap.txt                  KTAP v1, one subtest block per kernel
#   OUT/summary.md                counts per kernel and verdict
# Sourced after common.sh, results.sh and runinfo.sh, never run.

# vmo_label NAME: set VMO_LABEL to a directory name for a kernel (its
# release or --label), unique in this run: the same --kernel list gives the
# same labels, so --resume finds them.
declare -gA VMO_LABELS=()
vmo_label() {
	local base=${1//[^A-Za-z0-9._+-]/_} n=1
	VMO_LABEL=$base
	while [[ -n ${VMO_LABELS[$VMO_LABEL]:-} ]]; do
		n=$((n + 1))
		VMO_LABEL=$base-$n
	done
	VMO_LABELS[$VMO_LABEL]=1
}

# vmo_sha FILE: sha256 of FILE, "" when there is no file.
vmo_sha() {
	[[ -n $1 && -f $1 ]] && sha256sum "$1" | cut -d' ' -f1
	return 0
}

# vmo_json_list WORD...: a JSON array of strings (jq 1.6 would take words
# starting with - after --args as its own options).
vmo_json_list() {
	(($#)) || { echo '[]' && return 0; }
	printf '%s\n' "$@" | jq -R . | jq -cs .
}

# vmo_meta_run OUT SWEEP KERNEL_SPECS...: OUT/meta.json for the whole run.
vmo_meta_run() {
	local out=$1 sweep=$2
	shift 2
	jq -n --arg sweep "$sweep" --arg sweep_hash "$(sweep_hash)" \
		--arg mkfs "$(sweep_get mkfs)" --arg mount "$(sweep_get mount "" defaults)" \
		--arg image_size "$(sweep_get image_size "" 1G)" \
		--arg commit "$(project_commit)" --arg date "$(date -u +%FT%TZ)" \
		--arg accel "$VM_ACCEL" --arg accel_why "$VM_ACCEL_WHY" \
		--arg qemu "$("$VM_QEMU" --version | head -n 1)" \
		--arg btrfs_progs "$(mkfs.btrfs --version 2>/dev/null | head -n 1)" \
		--arg host "$(uname -r)" --argjson fs "$(runinfo_filesystems)" \
		'{mode: "vm", sweep: $sweep, sweep_hash: $sweep_hash, mkfs: $mkfs,
		  mount: $mount, filesystems: $fs, image_size: $image_size, accel: $accel,
		  accel_why: $accel_why, qemu: $qemu, btrfs_progs: $btrfs_progs,
		  host_kernel: $host, project_commit: $commit, date: $date,
		  kernels: $kernels}' --argjson kernels "$(vmo_json_list "$@")" >"$out/meta.json"
}

# vmo_meta_kernel KOUT LABEL INITRD: KOUT/meta.json for one kernel boot,
# from the K_* (vm-kernel.sh), VMM_* (vm-modules.sh) and VM_* (vm.sh)
# globals. Written before the boot and again after it, then with
# guest_splats: kernel splats anywhere in the guest's log (boot included;
# each case's own are in its results line).
vmo_meta_kernel() {
	local kout=$1 label=$2 initrd=$3 cfg_hash='' splats=''
	[[ -n $K_CONFIG ]] && cfg_hash=$(vmo_sha "$K_CONFIG" | cut -c1-16)
	[[ -f $kout/guest-dmesg.txt ]] &&
		splats=$(grep -E "$DG_SPLAT_RE" "$kout/guest-dmesg.txt" | head -n 20 || true)
	jq -n --arg lbl "$label" --arg kind "$K_KIND" --arg origin "$K_ORIGIN" \
		--arg splats "$splats" \
		--arg image "$K_IMAGE" --arg image_sha "$(vmo_sha "$K_IMAGE")" \
		--arg release "$K_RELEASE" --arg config "$K_CONFIG" --arg config_hash "$cfg_hash" \
		--arg modroot "$K_MODROOT" --arg boot "$K_BOOT_METHOD" --arg boot_image "$K_BOOT" --arg initrd_sha "$(vmo_sha "$initrd")" \
		--arg btrfs "$(vmk_config_has "$K_CONFIG" BTRFS_FS)" \
		--arg sysrq "$(vmk_config_has "$K_CONFIG" MAGIC_SYSRQ)" \
		--arg accel "$VM_ACCEL" --arg endv "${VM_END:-}" --arg reason "${VM_REASON:-}" \
		--arg boot_ms "${VM_BOOT_MS:-}" --arg first_ms "${VM_FIRST_MS:-}" \
		--arg wall_ms "${VM_WALL_MS:-}" --arg qemu_rc "${VM_QEMU_RC:-}" \
		--arg modules "${VMM_ORDER[*]}" --arg missing "${VMM_MISSING[*]}" \
		--arg sweep_hash "$(sweep_hash)" --arg commit "$(project_commit)" \
		'def num: if . == "" then null else tonumber end;
		 def opt: if . == "" then null else . end;
		 def list: [splits(" ") | select(. != "")];
		 {"label": $lbl, kernel: {release: $release, kind: $kind, origin: $origin,
		   image: $image, image_sha256: $image_sha, config: ($config | opt),
		   config_hash: ($config_hash | opt),
		   config_btrfs: ($btrfs | opt), config_magic_sysrq: ($sysrq | opt),
		   module_tree: ($modroot | opt), modules: ($modules | list),
		   modules_missing: ($missing | list)},
		  boot_method: $boot, boot_image: $boot_image, initrd_sha256: $initrd_sha, accel: $accel, qemu_cmdline: $cmd,
		  "end": ($endv | opt), reason: ($reason | opt),
		  boot_ms: ($boot_ms | num), first_verdict_ms: ($first_ms | num),
		  wall_ms: ($wall_ms | num), qemu_exit: ($qemu_rc | num),
		  guest_splats: ($splats | [splits("\n") | select(. != "")]),
		  sweep_hash: $sweep_hash, project_commit: $commit}' \
		--argjson cmd "$(vmo_json_list "${VM_CMD[@]}")" >"$kout/meta.json"
}

# vmo_combine OUT LABEL...: the run's results.jsonl, summary.md and a
# nested KTAP document from the kernels' directories.
vmo_combine() {
	local out=$1 label n=0 code
	shift
	: >"$out/results.jsonl.tmp"
	{
		printf 'KTAP version 1\n1..%d\n' "$#"
		for label in "$@"; do
			n=$((n + 1))
			cat "$out/$label/results.jsonl" >>"$out/results.jsonl.tmp"
			sed 's/^/  /' "$out/$label/ktap.txt"
			code=$(results_exit "$out/$label")
			case "$code" in
			0) printf 'ok %d %s\n' "$n" "$label" ;;
			4) printf 'ok %d %s # SKIP all cases skipped\n' "$n" "$label" ;;
			*) printf 'not ok %d %s\n' "$n" "$label" ;;
			esac
		done
	} >"$out/ktap.txt"
	mv "$out/results.jsonl.tmp" "$out/results.jsonl"
	results_summary "$out"
}
