# shellcheck shell=bash
# The case a bisect step or a fix validation runs, and what its results say.
# Shared by harness/bisect-step, harness/bisect and harness/validate-fix.
# Sourced after common.sh and sweep.sh, never run.
#
# A case is either one reproducer with its options (--repro NAME --args
# "OPTS"), turned into a one-case sweep file, or a sweep file (--sweep FILE).
# Either way the number of runs is ours to set: the sweep's `iterations` is
# replaced, so repeats happen inside one boot and cost no extra boot.

BC_REPRO='' BC_ARGS='' BC_SWEEP='' BC_MOUNT='' BC_TIMEOUT='' BC_IMAGE_SIZE=''
# Where the case runs: the guest's architecture and (arm64) page size, for
# harness/build-kernel (--arch, --page-size) and harness/run-vm (--arch).
BC_ARCH=x86_64 BC_PAGE_SIZE=''
BC_KERNEL_ARGS=()

bc_usage() {
	cat <<EOF
case (one of):
  --repro NAME        a reproducer (repro/NAME.c) ...
  --args "OPTS"       ... with these options, e.g. "--size 1M --fault first"
  --sweep FILE        a sweep file (its iterations are replaced by ours)
  --mount OPTS        mount options for --repro (default: defaults)
  --timeout S         per case timeout for --repro (default 120)
  --image-size SIZE   btrfs image size for --repro (default 256M)
guest:
  --arch A            x86_64 (default) or arm64: build-kernel and run-vm's --arch
  --page-size P       arm64 only: 4K (default), 16K or 64K, for build-kernel
EOF
}

# bc_opt OPTION VALUE: take one case option; 1 when OPTION is not one.
bc_opt() {
	case $1 in
	--repro) BC_REPRO=$2 ;;
	--args) BC_ARGS=$2 ;;
	--sweep) BC_SWEEP=$2 ;;
	--mount) BC_MOUNT=$2 ;;
	--timeout) BC_TIMEOUT=$2 ;;
	--image-size) BC_IMAGE_SIZE=$2 ;;
	--arch) BC_ARCH=$2 ;;
	--page-size) BC_PAGE_SIZE=$2 ;;
	*) return 1 ;;
	esac
}

# bc_forward: the case options as given, for another script's command line.
bc_forward() {
	BC_FWD=()
	[[ -z $BC_REPRO ]] || BC_FWD+=(--repro "$BC_REPRO")
	[[ -z $BC_ARGS ]] || BC_FWD+=(--args "$BC_ARGS")
	[[ -z $BC_SWEEP ]] || BC_FWD+=(--sweep "$BC_SWEEP")
	[[ -z $BC_MOUNT ]] || BC_FWD+=(--mount "$BC_MOUNT")
	[[ -z $BC_TIMEOUT ]] || BC_FWD+=(--timeout "$BC_TIMEOUT")
	[[ -z $BC_IMAGE_SIZE ]] || BC_FWD+=(--image-size "$BC_IMAGE_SIZE")
	[[ $BC_ARCH == x86_64 ]] || BC_FWD+=(--arch "$BC_ARCH")
	[[ -z $BC_PAGE_SIZE ]] || BC_FWD+=(--page-size "$BC_PAGE_SIZE")
	return 0
}

# bc_describe: the case in one line, for reports.
bc_describe() {
	if [[ -n $BC_SWEEP ]]; then
		echo "sweep $BC_SWEEP"
	else
		echo "$BC_REPRO $BC_ARGS${BC_MOUNT:+ (mount -o $BC_MOUNT)}"
	fi
}

# bc_check_guest: a known architecture (BC_ARCH made x86_64 or arm64) and a
# page size only where it can be chosen; BC_KERNEL_ARGS for build-kernel.
bc_check_guest() {
	case $BC_ARCH in
	x86_64 | amd64) BC_ARCH=x86_64 ;;
	arm64 | aarch64) BC_ARCH=arm64 ;;
	*) die "--arch $BC_ARCH: x86_64 or arm64" ;;
	esac
	if [[ -n $BC_PAGE_SIZE ]]; then
		[[ $BC_ARCH == arm64 ]] || die "--page-size needs --arch arm64 (x86_64 has 4K pages only)"
		[[ $BC_PAGE_SIZE =~ ^(4|16|64)K$ ]] || die "--page-size $BC_PAGE_SIZE: 4K, 16K or 64K"
	fi
	BC_KERNEL_ARGS=(--arch "$BC_ARCH")
	[[ -z $BC_PAGE_SIZE ]] || BC_KERNEL_ARGS+=(--page-size "$BC_PAGE_SIZE")
}

# bc_check: exactly one kind of case, and a reproducer that exists.
bc_check() {
	bc_check_guest
	if [[ -n $BC_SWEEP ]]; then
		[[ -z $BC_REPRO && -z $BC_ARGS ]] || die "give --sweep or --repro/--args, not both"
		[[ -f $BC_SWEEP && -r $BC_SWEEP ]] || die "no such sweep file: $BC_SWEEP"
		BC_SWEEP=$(realpath -- "$BC_SWEEP")
	else
		[[ -n $BC_REPRO ]] || die "no case: give --repro NAME [--args OPTS] or --sweep FILE"
		[[ -r $DIOGAP_ROOT/repro/$BC_REPRO.c ]] || die "no reproducer '$BC_REPRO' in repro/"
	fi
}

# bc_args_keys REPRO ARGS: the sweep lines ("REPRO.key = value") for a
# reproducer's options. Only options its Params header lists are taken.
bc_args_keys() {
	local repro=$1 params key
	local -a w
	read -r -a w <<<"$2"
	params=" $(sweep_repro_header "$repro" Params) "
	while ((${#w[@]})); do
		[[ ${w[0]} == --* ]] || die "--args: '${w[0]}' is not an option (want --name value)"
		key=${w[0]#--}
		key=${key//-/_}
		[[ $key != iterations ]] || die "--args: --iterations is set by the number of runs (see --max-runs / --runs)"
		[[ $params == *" $key "* ]] ||
			die "--args: $repro does not take --${key//_/-} (it takes:$params)"
		if [[ $key == fixed_buffers || $key == async ]]; then
			echo "$repro.$key = 1"
			w=("${w[@]:1}")
		else
			((${#w[@]} >= 2)) || die "--args: ${w[0]} needs a value"
			echo "$repro.$key = ${w[1]}"
			w=("${w[@]:2}")
		fi
	done
}

# bc_write_sweep FILE RUNS: the case as a sweep file whose cases each run
# RUNS iterations; checked with the sweep parser (exit 2 when wrong).
bc_write_sweep() {
	local file=$1 runs=$2
	if [[ -n $BC_SWEEP ]]; then
		{
			echo "# $BC_SWEEP, its iterations replaced by $runs"
			grep -Ev '^[[:space:]]*([A-Za-z0-9_-]+\.)?iterations[[:space:]]*=' "$BC_SWEEP" || true
			echo "iterations = $runs"
		} >"$file"
	else
		{
			echo "# one case: $BC_REPRO $BC_ARGS"
			echo "repro = $BC_REPRO"
			bc_args_keys "$BC_REPRO" "$BC_ARGS"
			echo "iterations = $runs"
			echo "timeout = ${BC_TIMEOUT:-120}"
			echo "image_size = ${BC_IMAGE_SIZE:-256M}"
			echo "mount = ${BC_MOUNT:-defaults}"
		} >"$file"
	fi
	(sweep_load "$file" && sweep_cases >/dev/null) || die "the case does not make a valid sweep (see above)"
}

# bc_run_vm KERNEL SWEEP OUT: one boot of KERNEL running SWEEP into OUT;
# sets BC_VM_RC (run-vm's exit) and BC_VM_S (seconds). Output in OUT.log.
# shellcheck disable=SC2034 # BC_* are read by the scripts that source this
bc_run_vm() {
	local t0=$SECONDS
	BC_VM_RC=0
	"$DIOGAP_ROOT/harness/run-vm" --arch "$BC_ARCH" --kernel "$1" --sweep "$2" --out "$3" \
		>"$3.log" 2>&1 || BC_VM_RC=$?
	BC_VM_S=$((SECONDS - t0))
}

# bc_count OUT: what one boot's results say, in BC_* variables:
#   BC_CASES cases, BC_FAILS FAIL runs (a FAIL case counts at least one),
#   BC_PASS_MIN fewest PASS runs of a PASS case, BC_RUNS all runs,
#   BC_BROKEN / BC_SKIP cases, BC_BEST_F / BC_BEST_N the FAIL and run counts
#   of the case that fails most often, BC_HANG 1 when a write hung,
#   BC_SPLATS cases with a kernel splat, BC_REASON the first non-PASS reason,
#   BC_GAPS the first FAIL's gaps, BC_FIRST_ONLY 1 when only first iterations
#   FAILed and later ones of the same case PASSed (the runs of one boot are
#   then not independent repeats).
# shellcheck disable=SC2034 # BC_* are read by the scripts that source this
bc_count() {
	local f=$1/results.jsonl
	BC_CASES=0 BC_FAILS=0 BC_PASS_MIN=0 BC_RUNS=0 BC_BROKEN=0 BC_SKIP=0
	# Every field below is non-empty ("-" for none): read with a tab IFS
	# would otherwise merge empty fields.
	BC_BEST_F=0 BC_BEST_N=0 BC_HANG=0 BC_SPLATS=0 BC_REASON='' BC_GAPS='' BC_FIRST_ONLY=0
	[[ -s $f ]] || { BC_REASON="no results (run-vm exit ${BC_VM_RC:-?}; see $1.log)"; return 0; }
	IFS=$'\t' read -r BC_CASES BC_FAILS BC_PASS_MIN BC_RUNS BC_BROKEN BC_SKIP BC_BEST_F \
		BC_BEST_N BC_HANG BC_SPLATS BC_REASON BC_GAPS BC_FIRST_ONLY < <(jq -rs '
		map((.reason // "") as $why | {v: .verdict, n: (.runs | length),
		     f: ([.runs[]? | select(.verdict? == "FAIL")] | length),
		     p: ([.runs[]? | select(.verdict? == "PASS")] | length),
		     fi: [.runs[]? | select(.verdict? == "FAIL") | .iteration],
		     hang: (([.runs[]? | select(.hang? != null)] | length > 0) or ($why | test("^hang"))),
		     splat: ((.splats // []) | length > 0), reason: $why,
		     gaps: ((.gaps // []) | unique | map("[\(.[0]),\(.[1])) \(.[2])") | join(" "))}
		    | if .v == "FAIL" and .f == 0 then .f = 1 else . end) as $c
		| ($c | map(select(.n > 0)) | max_by(.f / .n) // {f: 0, n: 0}) as $best
		| [($c | length), ($c | map(.f) | add // 0),
		   ($c | map(select(.v == "PASS") | .p) | min // 0), ($c | map(.n) | add // 0),
		   ($c | map(select(.v == "BROKEN")) | length), ($c | map(select(.v == "SKIP")) | length),
		   $best.f, $best.n, (if any($c[]; .hang) then 1 else 0 end),
		   ($c | map(select(.splat)) | length),
		   (($c | map(select(.v != "PASS") | .reason) | map(select(. != "")) | .[0]) // "-"),
		   (($c | map(select(.v == "FAIL") | .gaps) | .[0]) // "" | if . == "" then "-" else . end),
		   (if any($c[]; .fi | length > 0) and all($c[]; all(.fi[]; . == 1))
		       and any($c[]; .n > 1 and (.fi | length) < .n) then 1 else 0 end)] | @tsv' "$f")
	[[ $BC_REASON != - ]] || BC_REASON=''
	[[ $BC_GAPS != - ]] || BC_GAPS=''
}
