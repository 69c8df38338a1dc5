# shellcheck shell=bash
# Results: turn the case runner's stream (harness/lib/run-cases.sh) into a
# results directory. Host only; needs jq. Sourced after common.sh.
#
#   OUT/results.jsonl  one line per case, appended as each case ends
#   OUT/ktap.txt       KTAP v1, one test per case
#   OUT/dmesg.txt      kernel log lines, each with its case
#   OUT/summary.md     counts per kernel and verdict, every FAIL in detail

# Kernel log lines that are a splat, whatever the data verdict says.
readonly DG_SPLAT_RE='WARNING:|BUG:|Oops|KASAN|UBSAN|general protection|Kernel panic|INFO: task .* blocked for more than|Call Trace'

# jq program that makes one results.jsonl line from one case's records.
# shellcheck disable=SC2016 # jq code, not shell
readonly DG_CASE_JQ='
def params: [splits(" +") | select(. != "")]
  | reduce .[] as $w ({o: {}, k: null};
      if ($w | startswith("--")) then
        (if .k then .o[.k] = true else . end) | .k = ($w[2:])
      elif .k then .o[.k] = $w | .k = null
      else . end)
  | (if .k then .o[.k] = true else . end) | .o;
def verdict: {"0": "PASS", "1": "FAIL", "4": "SKIP"}[$exit | tostring] // "BROKEN";
($kmsg | split("\n") | map(select(length > 0))) as $klines
| {
    case: $case, kernel: $release, kernel_label: $klabel, repro: $repro,
    mount: $mount, args: $args, params: ($args | params),
    verdict: verdict, exit: $exit, elapsed_ms: $ms,
    reason: (if $why != "" then $why
             elif verdict != "PASS" then ([$runs[] | .diag? // empty | select(. != null)][0] // null)
             else null end),
    gaps: [$runs[] | .gaps? // empty | .[]],
    gap_extents: [$runs[] | .gap_extents? // empty | .[]],
    predicted: [$runs[] | .predicted? // empty | .[]],
    rerun: ([$runs[] | select(.verdict? != "PASS") | .rerun? // empty][0] // null),
    splats: [$klines[] | select(test($splat_re))],
    runs: $runs,
    output_tail: ($out | split("\n") | map(select(length > 0)) | .[-20:])
  }'

# results_init OUT CASES: start a results directory for one kernel.
results_init() {
	local out=$1 cases=$2 n
	mkdir -p "$out"
	n=$(grep -c . "$cases" || true)
	cp "$cases" "$out/cases.tsv"
	printf 'KTAP version 1\n1..%s\n' "$n" >"$out/ktap.txt"
	: >"$out/results.jsonl"
	: >"$out/dmesg.txt"
	echo 0 >"$out/.done"
}

# results_records STREAM TAG ID: the payloads of one case's records.
results_records() {
	awk -v t="$2" -v id="$3" '$1 == t && $2 == id {
		sub(/^[^ ]+ [^ ]+ ?/, ""); print }' "$1"
}

# results_case OUT STREAM N ID REPRO MOUNT ARGS EXIT MS WHY LABEL RELEASE:
# append one case to the results.
results_case() {
	local out=$1 stream=$2 n=$3 id=$4 repro=$5 mount=$6 args=$7
	local code=$8 ms=$9 why=${10} label=${11} release=${12} line tmp
	# Records go through files: a case's runs can exceed the argument limit.
	tmp=$(mktemp -d)
	results_records "$stream" J "$id" | jq -cR 'fromjson? // {malformed: .}' >"$tmp/runs"
	results_records "$stream" O "$id" >"$tmp/out"
	results_records "$stream" K "$id" >"$tmp/kmsg"
	line=$(jq -cn --arg case "$id" --arg repro "$repro" --arg mount "$mount" \
		--arg args "$args" --argjson exit "$code" --argjson ms "$ms" \
		--arg why "$why" --arg klabel "$label" --arg release "$release" \
		--arg splat_re "$DG_SPLAT_RE" --slurpfile runs "$tmp/runs" \
		--rawfile out "$tmp/out" --rawfile kmsg "$tmp/kmsg" "$DG_CASE_JQ")
	sed "s|^|[$id] |" "$tmp/kmsg" >>"$out/dmesg.txt"
	rm -rf "$tmp"
	results_append "$out" "$n" "$line"
}

# results_append OUT N LINE: one results.jsonl line, and its KTAP line.
results_append() {
	local out=$1 n=$2 line=$3 id verdict why
	printf '%s\n' "$line" >>"$out/results.jsonl"
	IFS=$'\t' read -r id verdict why < <(jq -r '[.case, .verdict, .reason // ""] | @tsv' <<<"$line")
	case "$verdict" in
	PASS) printf 'ok %s %s\n' "$n" "$id" ;;
	SKIP) printf 'ok %s %s # SKIP %s\n' "$n" "$id" "$why" ;;
	FAIL) printf 'not ok %s %s\n' "$n" "$id" ;;
	*) printf 'not ok %s %s # %s %s\n' "$n" "$id" \
		"$([[ $why == timeout* ]] && echo TIMEOUT || echo ERROR)" "$why" ;;
	esac >>"$out/ktap.txt"
}

# results_carry_over OUT OLD_JSONL: cases recorded by an earlier run of the
# same results directory (--resume) are kept as they were.
results_carry_over() {
	cp "$2" "$1/.carried"
}

# results_update OUT STREAM LABEL [FINAL_REASON]: record every case that
# ended since the last call, in case-list order. With FINAL_REASON, the
# cases that never ended are recorded as BROKEN with that reason.
results_update() {
	local out=$1 stream=$2 label=$3 final=${4:-} ndone n=0 release
	local id repro mount args end code ms why z line
	ndone=$(<"$out/.done")
	release=$(awk '$1 == "B" { sub(/^B - /, ""); print; exit }' "$stream" 2>/dev/null)
	z=$(awk '$1 == "Z" { sub(/^Z - /, ""); print; exit }' "$stream" 2>/dev/null)
	while IFS=$'\t' read -r id repro mount _ _ args; do
		n=$((n + 1))
		((n <= ndone)) && continue
		if [[ -s $out/.carried ]] && line=$(jq -c --arg id "$id" 'select(.case == $id)' \
			"$out/.carried" | head -n 1) && [[ -n $line ]]; then
			results_append "$out" "$n" "$line"
			echo "$n" >"$out/.done"
			continue
		fi
		end=$(awk -v id="$id" '$1 == "E" && $2 == id { print $3, $4, $5; exit }' "$stream")
		if [[ -n $end ]]; then
			read -r code ms why <<<"$end"
		elif [[ -n $final ]]; then
			code=2 ms=0
			if [[ -n $z ]]; then
				why="$z"
			elif grep -q "^S $id " "$stream"; then
				why="$final during this case (hang or crash)"
			else
				why="not run: $final"
			fi
		else
			break
		fi
		results_case "$out" "$stream" "$n" "$id" "$repro" "$mount" "$args" \
			"$code" "$ms" "${why:-}" "$label" "${release:-unknown}"
		echo "$n" >"$out/.done"
	done <"$out/cases.tsv"
}

# results_finish OUT STREAM LABEL REASON: record what never ended, close the
# KTAP document, write summary.md.
results_finish() {
	local out=$1
	results_update "$out" "$2" "$3" "$4"
	jq -rs '"# Totals: pass:\(map(select(.verdict == "PASS")) | length)"
		+ " fail:\(map(select(.verdict == "FAIL")) | length) xfail:0 xpass:0"
		+ " skip:\(map(select(.verdict == "SKIP")) | length)"
		+ " error:\(map(select(.verdict == "BROKEN")) | length)"' \
		"$out/results.jsonl" >>"$out/ktap.txt"
	rm -f "$out/.done" "$out/.carried"
	results_summary "$out"
}

# results_summary DIR: DIR/summary.md from DIR/results.jsonl.
results_summary() {
	local dir=$1
	jq -rs '
	def cnt($v): map(select(.verdict == $v)) | length;
	"# diogap results\n",
	"| kernel | cases | PASS | FAIL | BROKEN | SKIP | splats |",
	"|---|---|---|---|---|---|---|",
	(group_by(.kernel_label)[] |
	  "| \(.[0].kernel_label) (\(.[0].kernel)) | \(length) | \(cnt("PASS")) | \(cnt("FAIL")) | \(cnt("BROKEN")) | \(cnt("SKIP")) | \(map(select(.splats | length > 0)) | length) |"),
	"",
	(map(select(.verdict == "FAIL")) | if length > 0 then "## FAIL\n" else empty end),
	(.[] | select(.verdict == "FAIL") |
	  "- **\(.case)** on \(.kernel): gaps \(.gaps | map("[\(.[0]), \(.[1])) \(.[2])") | join(", "))"
	  + "\n  rerun: `\(.rerun // "n/a")`"),
	"",
	(map(select(.verdict == "BROKEN")) | if length > 0 then "## BROKEN\n" else empty end),
	(.[] | select(.verdict == "BROKEN") | "- \(.case) on \(.kernel_label): \(.reason // "unknown")"),
	"",
	(map(select(.splats | length > 0)) | if length > 0 then "## Kernel splats\n" else empty end),
	(.[] | select(.splats | length > 0) | "- \(.case): \(.splats[0])")
	' "$dir/results.jsonl" >"$dir/summary.md"
}

# results_exit DIR: the run's exit code from DIR/results.jsonl: 1 any FAIL,
# 2 any BROKEN (and no FAIL), 4 all SKIP, 0 otherwise.
results_exit() {
	local -a codes
	mapfile -t codes < <(jq -r '.exit | if . == 0 or . == 1 or . == 4 then . else 2 end' "$1/results.jsonl")
	worst_exit "${codes[@]}"
}

# results_table DIR: the summary's counts table, for the terminal.
results_table() {
	sed -n '/^| kernel/,/^$/p' "$1/summary.md"
}
