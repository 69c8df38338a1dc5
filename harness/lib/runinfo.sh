# shellcheck shell=bash
# Where a run's results go and what is known about the run (meta.json).
# Sourced after common.sh and sweep.sh.

# runinfo_out_dir [DIR]: DIR, or a new results/<run-id>/; made, printed.
runinfo_out_dir() {
	local dir=${1:-}
	if [[ -z $dir ]]; then
		dir=$DIOGAP_ROOT/results/$(date -u +%Y%m%d-%H%M%S)-$$
	fi
	mkdir -p "$dir" 2>/dev/null || die "cannot create results directory $dir"
	[[ -w $dir ]] || die "results directory $dir is not writable"
	realpath "$dir"
}

# runinfo_latest OUT: results/latest points at OUT when OUT is in results/.
runinfo_latest() {
	local out=$1
	[[ $(dirname "$out") == "$(realpath "$DIOGAP_ROOT/results")" ]] || return 0
	ln -sfn "$(basename "$out")" "$DIOGAP_ROOT/results/latest"
}

# runinfo_kconfig_hash: hash of the running kernel's config, when readable.
runinfo_kconfig_hash() {
	if [[ -r /proc/config.gz ]]; then
		zcat /proc/config.gz | sha256sum | cut -c1-16
	elif [[ -r /boot/config-$(uname -r) ]]; then
		sha256sum "/boot/config-$(uname -r)" | cut -c1-16
	else
		echo unknown
	fi
}

# runinfo_filesystems: the sweep's filesystems as JSON: [{profile, disks,
# mkfs}] (sweep_filesystems).
runinfo_filesystems() {
	sweep_filesystems | jq -R 'split("\t") | (.[0] | split("@")) as [$p, $d]
		| {profile: (if $p == "-" then null else $p end),
		   disks: ($d | split(",") | map(tonumber)), mkfs: (.[1] // "")}' | jq -sc .
}

# runinfo_meta_local OUT SWEEP: meta.json for a run on the running kernel.
runinfo_meta_local() {
	jq -n --arg release "$(uname -r)" --arg version "$(uname -v)" \
		--arg machine "$(uname -m)" --arg kconfig "$(runinfo_kconfig_hash)" \
		--arg sweep "$2" --arg sweep_hash "$(sweep_hash)" \
		--arg mkfs "$(sweep_get mkfs)" --arg mount "$(sweep_get mount "" defaults)" \
		--arg commit "$(project_commit)" --arg date "$(date -u +%FT%TZ)" \
		--arg btrfs_progs "$(mkfs.btrfs --version 2>/dev/null | head -n 1)" \
		--argjson fs "$(runinfo_filesystems)" \
		'{mode: "local", kernel: {release: $release, version: $version,
		  machine: $machine, config_hash: $kconfig}, sweep: $sweep,
		  sweep_hash: $sweep_hash, mkfs: $mkfs, mount: $mount, filesystems: $fs,
		  btrfs_progs: $btrfs_progs, project_commit: $commit, date: $date}' \
		>"$1/meta.json"
}

# runinfo_note_reason OUT REASON: meta.json says why the run ended early
# (made when the run had not written one yet).
runinfo_note_reason() {
	local meta=$1/meta.json tmp
	[[ -d $1 ]] || return 0
	tmp=$(mktemp "$meta.XXXXXX") || return 0
	if [[ -s $meta ]]; then
		jq --arg r "$2" '.reason = $r' "$meta" >"$tmp"
	else
		jq -n --arg r "$2" '{reason: $r}' >"$tmp"
	fi && mv "$tmp" "$meta"
	rm -f "$tmp"
}

# runinfo_abort OUT STREAM LABEL: an internal error (common.sh) ends the
# run: the kernel's results directory OUT, if it was started
# (results_init), is finished with every case that never ended BROKEN
# for that reason, and meta.json names it. Needs results.sh.
runinfo_abort() {
	[[ -n $1 && -d $1 ]] || return 0
	[[ -f $1/.done ]] && results_finish "$1" "$2" "$3" "$DG_INTERNAL_ERROR"
	runinfo_note_reason "$1" "$DG_INTERNAL_ERROR"
}

# runinfo_abort_combined OUT: the same for a run of several kernels, one
# subdirectory each: OUT/results.jsonl and summary.md from what they hold.
runinfo_abort_combined() {
	[[ -n $1 && -d $1 ]] || return 0
	cat "$1"/*/results.jsonl >"$1/results.jsonl" 2>/dev/null || true
	results_summary "$1"
	runinfo_note_reason "$1" "$DG_INTERNAL_ERROR"
}

# runinfo_caps OUT STREAM: the kernel's capabilities (the runner's C record,
# dg-case preflight) into OUT/meta.json as "capabilities" (results_summary
# names what is missing in summary.md), then summary.md again.
runinfo_caps() {
	local caps tmp
	caps=$(sed -n 's/^C - //p' "$2" 2>/dev/null | head -n 1)
	[[ -n $caps ]] && jq -e . >/dev/null 2>&1 <<<"$caps" || caps='{"error": "no preflight record"}'
	tmp=$(mktemp "$1/meta.json.XXXXXX")
	jq --argjson c "$caps" '.capabilities = $c' "$1/meta.json" >"$tmp" && mv "$tmp" "$1/meta.json"
	rm -f "$tmp"
	[[ ! -f $1/results.jsonl ]] || results_summary "$1"
}
