# shellcheck shell=bash
# bisect.md for harness/bisect: the answer, every step, the times, the raw
# git bisect log. Sourced after common.sh, never run.

# br_answer TREE RUN_LOG BTERM: from `git bisect run`'s output, set
# BR_FOUND (the first bad/fixed commit, full sha) or BR_CANDIDATES (the
# commits git could not tell apart because some were skipped).
br_answer() {
	local tree=$1 runlog=$2 term=$3 line
	BR_FOUND='' BR_CANDIDATES=()
	line=$(git -C "$tree" bisect log 2>/dev/null | sed -n "s/^# first $term commit: \[\([0-9a-f]*\)\].*/\1/p" | tail -n 1)
	if [[ -n $line ]]; then
		BR_FOUND=$line
		return 0
	fi
	# "There are only 'skip'ped commits left to test.
	#  The first bad commit could be any of:" followed by one sha a line.
	mapfile -t BR_CANDIDATES < <(awk '/could be any of:/ { on = 1; next }
		on && /^[0-9a-f]{40}$/ { print; next } on { on = 0 }' "$runlog")
}

# br_subject TREE SHA
br_subject() {
	git -C "$1" log -1 --format=%s "$2"
}

# br_steps_table STEPS FIXED: the markdown table of every step.
br_steps_table() {
	echo "| # | role | commit | subject | verdict | FAIL/runs | P(miss) | boots | build s | VM s | total s | note |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	# shellcheck disable=SC2016 # jq code, not shell
	jq -r --argjson fixed "$2" '
		def word: if .verdict == "good" then (if $fixed == 1 then "good (fixed)" else "good" end)
			elif .verdict == "bad" then (if $fixed == 1 then "bad (still broken)" else "bad" end)
			else "skip" end;
		def esc: gsub("\\|"; "\\|");
		"| \(.step) | \(.role) | \(.commit[0:12]) | \(.subject | esc) | \(word) | \(.fails)/\(.runs) | "
		+ "\(if .p_miss == null then "-" else (.p_miss | tostring) end) | \(.boots) | \(.build_s) | "
		+ "\(.vm_s) | \(.total_s) | \((if .verdict == "bad" and .gaps != "" then "gaps " + .gaps else .reason end) | esc | .[0:160]) |"
	' "$1"
}

# br_times STEPS: "N steps, T s in all, M s per step (build B s, VM V s)".
br_times() {
	jq -rs 'if length == 0 then "no step ran" else
		"\(length) steps, \(map(.total_s) | add) s in all, \((map(.total_s) | add) / length | floor) s per step "
		+ "(build \((map(.build_s) | add) / length | floor) s, VM \((map(.vm_s) | add) / length | floor) s)"
		end' "$1"
}

# br_write OUT TREE: OUT/bisect.md. Reads BR_*, and the run's settings
# from the caller: GOOD BAD FIXED BTERM CASE_DESC RATE RATE_WHY CONF T0 RC.
br_write() {
	local out=$1 tree=$2 steps=$1/steps.jsonl c
	[[ -f $steps ]] || : >"$steps"
	{
		echo "# diogap bisect: first $BTERM commit"
		echo
		if [[ -n $BR_FOUND ]]; then
			echo "**$BR_FOUND** (\"$(br_subject "$tree" "$BR_FOUND")\")"
			echo
			echo '```'
			git -C "$tree" show --stat --format='commit %H%nAuthor: %an <%ae>%nDate:   %ad%n%n    %s' "$BR_FOUND" | head -n 40
			echo '```'
		elif ((${#BR_CANDIDATES[@]})); then
			echo "**Inconclusive**: commits that could not be tested (skipped) leave these candidates:"
			echo
			for c in "${BR_CANDIDATES[@]}"; do echo "- $c (\"$(br_subject "$tree" "$c")\")"; done
		else
			echo "**No answer**: ${BR_WHY:-git bisect run ended with status $RC}"
		fi
		echo
		echo "- tree: $tree"
		echo "- range: good $GOOD (\"$(br_subject "$tree" "$GOOD")\"), bad $BAD (\"$(br_subject "$tree" "$BAD")\")"
		((FIXED)) && echo "- mode: --fixed (looking for the commit that made the bug go away; git terms old=broken new=fixed)"
		echo "- case: $CASE_DESC"
		echo "- a commit is bad at its first FAIL run; good after enough PASS runs that a bug"
		echo "  failing in at least $(bst_percent "$RATE") of runs is missed with probability <="
		echo "  $(bst_percent "$(bst_awk 'print 1 - a[1]' "$CONF")") ($RATE_WHY)"
		echo "- $(br_times "$steps"); wall time $((SECONDS - T0)) s"
		if [[ -n $BR_FOUND ]]; then
			c=$(jq -r --arg s "$BR_FOUND" 'select(.commit == $s and .verdict == "bad") | .gaps' "$steps" | head -n 1)
			[[ -z $c ]] || echo "- what the bad commit lost: $c"
		fi
		echo
		echo "## Steps"
		echo
		br_steps_table "$steps" "$FIXED"
		echo
		echo "Per step output (build log, VM results): $out/step-NN-<commit>/"
		echo
		echo "## git bisect log"
		echo
		echo '```'
		cat "$out/bisect-log.txt" 2>/dev/null || true
		echo '```'
	} >"$out/bisect.md"
}
