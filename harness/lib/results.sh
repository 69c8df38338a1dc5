# shellcheck shell=bash
# Results: turn the case runner's stream (harness/lib/run-cases.sh) into a
# results directory. Host only; needs jq. Sourced after common.sh.
#
#   OUT/results.jsonl  one line per case, appended as each case ends
#   OUT/ktap.txt       KTAP v1, one test per case
#   OUT/dmesg.txt      kernel log lines, each with its case
#   OUT/summary.md     counts per kernel and verdict, every FAIL in detail

# Kernel log lines that are a splat: the case is FAIL whatever its records
# say, unless the sweep expects it (expect_splat). ERE, also for jq's test().
readonly DG_SPLAT_RE='WARNING:|BUG:|kernel BUG at|assertion failed|Oops|KASAN|UBSAN|general protection|Kernel panic|INFO: task .* blocked for more than|possible .*deadlock|bad unlock balance|inconsistent lock state|csum failed'

# The scratch device's kernel name (loop2), when the caller knows it: kernel
# lines naming another device are not the case's (results.jq: foreign).
DG_RESULTS_DEV=${DG_RESULTS_DEV:-}

# The jq program that turns stream records into results.jsonl lines.
readonly DG_RESULTS_JQ=$DIOGAP_ROOT/harness/lib/results.jq

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
	echo 0 >"$out/.offset"
	: >"$out/.pending"
}

# results_lines OUT STREAM_PART LABEL RELEASE [ONLY FINAL]: results.jq over
# STREAM_PART: "id US verdict US reason US json" per case (US = \x1f).
results_lines() {
	jq -nrR --arg cases "$(<"$1/cases.tsv")" --arg release "$4" --arg klabel "$3" \
		--arg splat_re "$DG_SPLAT_RE" --arg only "${5:-}" --arg final "${6:-}" \
		--arg dev "${DG_RESULTS_DEV:-}" \
		-f "$DG_RESULTS_JQ" <"$2"
}

# results_kmsg STREAM_PART [ID]: the kernel log records, "[case] line".
results_kmsg() {
	awk -v only="${2:-}" '$1 == "K" && (only == "" || $2 == only) {
		id = $2; sub(/^K [^ ]+ ?/, ""); print "[" id "] " $0 }' "$1"
}

# results_append OUT N LINE [ID VERDICT WHY]: one results.jsonl line, and
# its KTAP line (ID VERDICT WHY from LINE when not given).
results_append() {
	local out=$1 n=$2 line=$3 id=${4:-} verdict=${5:-} why=${6:-}
	printf '%s\n' "$line" >>"$out/results.jsonl"
	[[ -n $verdict ]] ||
		IFS=$'\t' read -r id verdict why < <(jq -r '[.case, .verdict, .reason // ""] | @tsv' <<<"$line")
	results_ktap_line "$n" "$id" "$verdict" "$why" >>"$out/ktap.txt"
}

# results_ktap_line N ID VERDICT WHY: the case's KTAP line.
results_ktap_line() {
	local n=$1 id=$2 verdict=$3 why=$4
	case "$verdict" in
	PASS) printf 'ok %s %s\n' "$n" "$id" ;;
	SKIP) printf 'ok %s %s # SKIP %s\n' "$n" "$id" "$why" ;;
	FAIL) printf 'not ok %s %s\n' "$n" "$id" ;;
	*) printf 'not ok %s %s # %s %s\n' "$n" "$id" \
		"$([[ $why == timeout* ]] && echo TIMEOUT || echo ERROR)" "$why" ;;
	esac
}

# results_amend OUT: what was judged after the run (OUT/fsck-fail.tsv,
# "CASE_ID<TAB>REASON": lib/fsck.sh) turns those cases' PASS into FAIL
# with the reason (fsck_fail true); ktap.txt is written again from
# results.jsonl. A FAIL stays; a SKIP or BROKEN case tested nothing.
results_amend() {
	local out=$1 n=0 id verdict why
	[[ -s $out/fsck-fail.tsv ]] || return 0
	jq -c --rawfile f "$out/fsck-fail.tsv" '
		($f | split("\n") | map(select(length > 0) | split("\t") | {key: .[0], value: .[1]})
		 | from_entries) as $bad
		| if .verdict == "PASS" and $bad[.case] != null
		  then .verdict = "FAIL" | .reason = $bad[.case] | .fsck_fail = true
		  else . end' "$out/results.jsonl" >"$out/results.jsonl.new"
	mv "$out/results.jsonl.new" "$out/results.jsonl"
	head -n 2 "$out/ktap.txt" >"$out/ktap.txt.new"
	while IFS=$'\t' read -r id verdict why; do
		n=$((n + 1))
		results_ktap_line "$n" "$id" "$verdict" "$why"
	done < <(jq -r '[.case, .verdict, .reason // ""] | @tsv' "$out/results.jsonl") >>"$out/ktap.txt.new"
	mv "$out/ktap.txt.new" "$out/ktap.txt"
}

# results_carry_over OUT OLD_JSONL: cases recorded by an earlier run of the
# same results directory (--resume) are kept as they were.
results_carry_over() {
	cp "$2" "$1/.carried"
}

# results_take OUT STREAM LABEL RELEASE: the stream's part after OUT/.offset
# up to its last E record goes through results.jq at once; its cases join
# OUT/.pending (results_lines' lines) and their kernel log
# lines dmesg.txt. The stream only grows, and a case's records all come
# before its E, so each part holds whole cases.
results_take() {
	local out=$1 stream=$2 off part used
	off=$(<"$out/.offset")
	part=$(mktemp)
	used=$(tail -c "+$((off + 1))" "$stream" 2>/dev/null | LC_ALL=C awk -v part="$part" '
		{ n += length($0) + 1; line[NR] = $0 }
		/^E / { last = NR; used = n }
		END { for (i = 1; i <= last; i++) print line[i] > part; print used + 0 }')
	if ((used > 0)); then
		results_lines "$out" "$part" "$3" "$4" >>"$out/.pending" ||
			die "results: $DG_RESULTS_JQ failed on $stream (from byte $off)"
		results_kmsg "$part" >>"$out/dmesg.txt"
		echo $((off + used)) >"$out/.offset"
	fi
	rm -f "$part"
}

# results_update OUT STREAM LABEL [FINAL_REASON]: record every case that
# ended since the last call, in case-list order. With FINAL_REASON, the
# cases that never ended are recorded as BROKEN with that reason.
results_update() {
	local out=$1 stream=$2 label=$3 final=${4:-} ndone n=0 release z=''
	local id why line v j
	local -A p_verdict=() p_why=() p_json=()
	ndone=$(<"$out/.done")
	release=$(awk '$1 == "B" { sub(/^B - /, ""); print; exit }' "$stream" 2>/dev/null)
	[[ -n $final ]] && z=$(awk '$1 == "Z" && $2 == "-" { sub(/^Z - /, ""); print; exit }' "$stream" 2>/dev/null)
	results_take "$out" "$stream" "$label" "${release:-unknown}"
	while IFS=$'\x1f' read -r id v why j; do
		p_verdict[$id]=$v p_why[$id]=$why p_json[$id]=$j
	done <"$out/.pending"
	while IFS=$'\t' read -r id _; do
		n=$((n + 1))
		((n <= ndone)) && continue
		if [[ -s $out/.carried ]] && line=$(jq -c --arg id "$id" 'select(.case == $id)' \
			"$out/.carried" | head -n 1) && [[ -n $line ]]; then
			results_append "$out" "$n" "$line"
		elif [[ -n ${p_json[$id]:-} ]]; then
			results_append "$out" "$n" "${p_json[$id]}" "$id" "${p_verdict[$id]}" "${p_why[$id]}"
			unset "p_json[$id]"
		elif [[ -n $final ]]; then
			if [[ -n $z ]]; then
				why="$z"
			elif grep -q "^S $id " "$stream"; then
				why="$final during this case (hang or crash)"
			else
				why="not run: $final"
			fi
			results_case "$out" "$stream" "$n" "$id" "$label" "${release:-unknown}" "2 0 $why"
		else
			break
		fi
		echo "$n" >"$out/.done"
	done <"$out/cases.tsv"
	: >"$out/.pending"
	for id in "${!p_json[@]}"; do
		printf '%s\x1f%s\x1f%s\x1f%s\n' "$id" "${p_verdict[$id]}" "${p_why[$id]}" "${p_json[$id]}"
	done >"$out/.pending"
}

# results_case OUT STREAM N ID LABEL RELEASE FINAL: record case ID (the Nth)
# from the whole stream, with FINAL ("EXIT MS WHY") when it never ended.
results_case() {
	local out=$1 stream=$2 n=$3 id=$4 v why j
	IFS=$'\x1f' read -r _ v why j < <(results_lines "$out" "$stream" "$5" "$6" "$id" "$7")
	[[ -n $j ]] || die "results: case $id: no results line (see $DG_RESULTS_JQ)"
	results_kmsg "$stream" "$id" >>"$out/dmesg.txt"
	results_append "$out" "$n" "$j" "$id" "$v" "$why"
}

# results_finish OUT STREAM LABEL REASON: record what never ended, close the
# KTAP document, write summary.md. The runner's errors (Z records: a case
# it could not record, a flush that failed) go to OUT/runner-errors.txt,
# which makes the run BROKEN (results_exit) even when every case has a line.
results_finish() {
	local out=$1
	results_update "$out" "$2" "$3" "$4"
	awk '$1 == "Z" { sub(/^Z /, ""); print }' "$2" >"$out/runner-errors.txt" 2>/dev/null || true
	[[ -s $out/runner-errors.txt ]] || rm -f "$out/runner-errors.txt"
	results_amend "$out"
	jq -rs '"# Totals: pass:\(map(select(.verdict == "PASS")) | length)"
		+ " fail:\(map(select(.verdict == "FAIL")) | length) xfail:0 xpass:0"
		+ " skip:\(map(select(.verdict == "SKIP")) | length)"
		+ " error:\(map(select(.verdict == "BROKEN")) | length)"' \
		"$out/results.jsonl" >>"$out/ktap.txt"
	rm -f "$out/.done" "$out/.carried" "$out/.offset" "$out/.pending"
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
	  "- **\(.case)** on \(.kernel): "
	  + (if (.gaps | length) > 0 then "gaps \(.gaps | map("[\(.[0]), \(.[1])) \(.[2])") | join(", "))"
	     else (.reason // "FAIL") end)
	  + "\n  rerun: `\(.rerun // "n/a")`"),
	"",
	# every SKIP and BROKEN reason, grouped (figures in a reason made N)
	(map(select(.verdict == "SKIP" or .verdict == "BROKEN"))
	  | if length > 0 then "## SKIP and BROKEN by reason\n",
	    "| verdict | cases | reason | e.g. |", "|---|---|---|---|",
	    (group_by([.verdict, (.reason // "none" | gsub("\\b[0-9]+\\b"; "N"))])[]
	     | "| \(.[0].verdict) | \(length) | \(.[0].reason // "none" | gsub("\\b[0-9]+\\b"; "N") | gsub("\\|"; "/")) | \(.[0].case) |"),
	    "" else empty end),
	(map(select(.verdict == "BROKEN")) | if length > 0 then "## BROKEN\n" else empty end),
	(.[] | select(.verdict == "BROKEN") | "- \(.case) on \(.kernel_label): \(.reason // "unknown")"),
	"",
	(map(select(.splats | length > 0)) | if length > 0 then "## Kernel splats\n" else empty end),
	(.[] | select(.splats | length > 0) | "- \(.case): \(.splats[0])")
	' "$dir/results.jsonl" >"$dir/summary.md"
	{
		if [[ -s $dir/runner-errors.txt ]]; then
			printf '\n## Runner errors (the run is BROKEN)\n\n'
			sed 's/^/- /' "$dir/runner-errors.txt"
		fi
		results_caps_line "$dir"
		if [[ -s $dir/fix-card.md ]]; then
			echo
			cat "$dir/fix-card.md"
		fi
	} >>"$dir/summary.md"
}

# results_caps_line DIR: what the kernel lacks of what the reproducers use,
# from DIR/meta.json's capabilities (runinfo_caps), one line; nothing
# when meta.json has none.
results_caps_line() {
	[[ -f $1/meta.json ]] || return 0
	jq -r '.capabilities // empty | "\nKernel capabilities: page size \(.page_size // "?"); " + (
		if .error then .error
		elif (.missing | length) == 0 then "nothing the reproducers use is missing"
		else "missing " + (.missing | map("\(.what) (\(.option))") | join(", ")) end)' \
		"$1/meta.json" 2>/dev/null || true
}

# results_exit DIR: the run's exit code from the verdicts of
# DIR/results.jsonl (not the reproducers' exit codes: a FAIL record under
# exit 0 is a FAIL): 1 any FAIL, 2 any BROKEN (and no FAIL) or a runner
# error (DIR/runner-errors.txt, and no FAIL), 4 all SKIP, 0 otherwise.
results_exit() {
	local -a codes
	mapfile -t codes < <(jq -r '{"PASS": 0, "FAIL": 1, "SKIP": 4}[.verdict] // 2' "$1/results.jsonl")
	[[ -s $1/runner-errors.txt ]] && codes+=(2)
	worst_exit "${codes[@]}"
}

# results_table DIR: the summary's counts table, for the terminal.
results_table() {
	sed -n '/^| kernel/,/^$/p' "$1/summary.md"
}
