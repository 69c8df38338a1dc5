# shellcheck shell=bash
# Expected verdicts (configs/expectations/verdicts.exp) against results.
# Sourced after common.sh; needs jq.

# jq: judge one results.jsonl line against the rules of one variant.
# shellcheck disable=SC2016 # jq code, not shell
readonly DG_EXPECT_JQ='
include "signature";
def pair: .[0:2];
# The signature of a FAIL (harness/lib/signature.jq): hole, size, eio,
# copies, hang, splat or other.
def signature: dg_signature;
# mount=OPT: OPT is one of the case mount options ("defaults" for none);
# profile=P: the case ran on that filesystem profile (sweep key profile).
def matches($c): split("=") as [$k, $v]
  | if $k == "mount" then any($c.mount | split(",")[]; . == $v)
    elif $k == "profile" then ($c.profile // "-") == $v
    else (($c.params[$k] // "") | tostring) == $v end;
. as $c
| [$rules[] | select(.variant == $variant)
    | select(.repro == "*" or .repro == $c.repro)
    | select(.match == "*" or (.match | split(",") | all(matches($c))))][0] as $rule
# EXPECT+splat: a splat is expected; the case is judged on the verdict its
# exit code and records gave (a FAIL made by the splat alone is not one).
| ($rule.expect // "NONE" | endswith("+splat")) as $splat_ok
| (if $splat_ok and $c.splat_fail == true then $c + {verdict: $c.verdict_before_splat} else $c end) as $c
| ($rule.expect // "NONE" | sub("\\+splat$"; "") | split(":")) as [$e, $sig]
| (($c.predicted // []) | length > 0) as $pred
| (if $e == "PREDICTED" then (if $pred then "FAIL" else "PASS" end)
   elif $e == "HANG" then "FAIL" else $e end) as $want
| ([($c.predicted // [])[] | pair]) as $p
| ($c | signature) as $seen_sig
| {variant: $variant, case: $c.case, repro: $c.repro, rule: ($rule.line // 0), note: ($rule.note // null),
   expect: ($rule.expect // "NONE"), want: ($want + (if $want == "FAIL" and $sig then ":" + $sig else "" end)),
   seen: ($c.verdict + (if $c.verdict == "FAIL" and $sig then ":" + $seen_sig else "" end)),
   reason: ($c.reason // ""),
   ok: (if $e == "ANY" then true
        elif $e == "NONE" then false
        elif $e == "HANG" then ($c.verdict == "FAIL" and ($c.reason // "" | test("hang")))
        elif $want == "FAIL" and $sig then ($c.verdict == "FAIL" and $seen_sig == $sig)
        else $c.verdict == $want end),
   gaps: ($c.gaps | length),
   gaps_matched: ([$c.gaps[] | pair | select(. as $g | any($p[]; . == $g))] | length),
   gaps_start_matched: ([$c.gaps[] | select(.[0] as $s | any($p[]; .[0] == $s))] | length)}'

# MATCH keys a case can have: the reproducer options the sweep's parameter
# keys become (harness/lib/sweep.sh: fixed_buffers -> fixed-buffers), the
# iterations, and the mount option set.
readonly DG_MATCH_KEYS="size offset chunk fault buffer engine layout qd fixed-buffers async hang-timeout seconds nocow iterations mount profile"

# expect_rules FILE: the rules as a JSON array; a malformed line, an unknown
# EXPECT or a MATCH key no case can have (a misspelling would make the rule
# match nothing, in silence) is an error naming the file and line.
expect_rules() {
	local file=$1
	awk -v f="$file" -v keys="$DG_MATCH_KEYS" '
		BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) known[k[i]] = 1 }
		/^[[:space:]]*(#|$)/ { next }
		# a rule may end with "# note": shown on the fix card beside the cell
		{ note = ""; if ((c = index($0, " #")) > 0) { note = substr($0, c + 2); sub(/^ +/, "", note)
			$0 = substr($0, 1, c - 1) } }
		NF != 4 { printf "%s:%d: want VARIANT REPRO MATCH EXPECT\n", f, NR > "/dev/stderr"; bad = 1; next }
		$4 !~ /^(PASS|SKIP|HANG|ANY|(FAIL|PREDICTED)(:hole|:size|:eio|:copies|:lost|:hang|:splat)?)(\+splat)?$/ {
			printf "%s:%d: unknown EXPECT %s\n", f, NR, $4 > "/dev/stderr"; bad = 1; next }
		$3 != "*" {
			m = split($3, kv, ",")
			for (i = 1; i <= m; i++) {
				if (kv[i] !~ /^[a-z-]+=[^=]+$/) {
					printf "%s:%d: MATCH %s: want key=value\n", f, NR, kv[i] > "/dev/stderr"; bad = 1; next }
				key = kv[i]; sub(/=.*/, "", key)
				if (!(key in known)) {
					printf "%s:%d: MATCH key %s: no case has it (keys: %s)\n", f, NR, key, keys > "/dev/stderr"
					bad = 1; next }
			}
		}
		{ printf "%s\t%s\t%s\t%s\t%d\t%s\n", $1, $2, $3, $4, NR, note }
		END { exit bad }' "$file" |
		jq -R 'split("\t") | {variant: .[0], repro: .[1], match: .[2], expect: .[3], line: (.[4] | tonumber),
			note: (.[5] // "" | if . == "" then null else . end)}' |
		jq -s . || die "bad expectations file $file"
}

# expect_judge RULES VARIANT RESULTS_JSONL: one judgement line per case.
expect_judge() {
	jq -c -L "$DIOGAP_ROOT/harness/lib" --argjson rules "$1" --arg variant "$2" "$DG_EXPECT_JQ" "$3"
}

# expect_unmatched RULES VARIANT JUDGED: PASS rules of VARIANT that no case
# matched (reported, not a mismatch: a stale or misspelt rule).
expect_unmatched() {
	jq -rs --argjson rules "$1" --arg variant "$2" '
		. as $j
		| $rules[] | select(.variant == $variant and (.expect | startswith("PASS")))
		| select(.line as $l | [$j[] | select(.rule == $l)] | length == 0)
		| "line \(.line): \(.repro) \(.match) \(.expect): no case matched it"' "$3"
}

# expect_unexercised RULES VARIANT JUDGED: rules that expect a FAIL that no
# case of the sweep gave them a chance to show. A check that can only pass
# proves nothing, so each is a mismatch.
expect_unexercised() {
	jq -rs --argjson rules "$1" --arg variant "$2" '
		. as $j
		| $rules[] | select(.variant == $variant)
		| select(.expect | test("^(FAIL|PREDICTED|HANG)"))
		| select(.line as $l | [$j[] | select(.rule == $l and (.want | startswith("FAIL")))] | length == 0)
		| "line \(.line): \(.repro) \(.match) \(.expect): no case of the sweep could show it"' "$3"
}

# expect_compare EXPFILE OUT VARIANT...: judge OUT/VARIANT/results.jsonl
# for each variant; print the table; return 1 on any mismatch.
expect_compare() {
	local exp=$1 out=$2 rules v bad=0 extra=0 judged=$2/expectations.jsonl miss
	shift 2
	rules=$(expect_rules "$exp")
	: >"$judged"
	printf '%-20s %-22s %-15s %-6s %s\n' kernel reproducer expected match seen
	for v in "$@"; do
		if [[ ! -s $out/$v/results.jsonl ]]; then
			printf '%-20s %-22s %-15s %-6s %s\n' "$v" '*' '-' NO 'no results: build or boot failed'
			bad=1 extra=$((extra + 1))
			continue
		fi
		expect_judge "$rules" "$v" "$out/$v/results.jsonl" >"$out/$v/expect.jsonl"
		cat "$out/$v/expect.jsonl" >>"$judged"
		jq -rs 'group_by([.repro, .expect])[]
			| "\(.[0].variant)\t\(.[0].repro)\t\(.[0].expect)\t\(map(select(.ok)) | length)/\(length)\t\(
			  group_by(.seen) | map("\(.[0].seen):\(length)") | join(" "))"' \
			"$out/$v/expect.jsonl" | awk -F'\t' '{ printf "%-20s %-22s %-15s %-6s %s\n", $1, $2, $3, $4, $5 }'
		expect_unmatched "$rules" "$v" "$out/$v/expect.jsonl" | sed "s/^/# unexercised rule: $v: /"
		miss=$(expect_unexercised "$rules" "$v" "$out/$v/expect.jsonl")
		if [[ -n $miss ]]; then
			printf '%s: %s\n' "$v" "$miss" | sed 's/^/# unexercised rule: /'
			bad=1 extra=$((extra + $(grep -c . <<<"$miss")))
		fi
	done
	if [[ -n $(jq -c 'select(.ok | not)' "$judged") ]]; then
		echo "# mismatches:"
		jq -r 'select(.ok | not) | "#   \(.variant) \(.case): expected \(.want) (rule \(.rule): \(.expect)), seen \(.seen) \(.reason)"' "$judged"
		bad=1
	fi
	jq -rs '[.[] | select(.gaps > 0 and (.expect | endswith(":hole")))]
		| "# hole gap ranges equal to a predicted range: \(map(.gaps_matched) | add // 0)/\(map(.gaps) | add // 0);"
		+ " starting where one was predicted: \(map(.gaps_start_matched) | add // 0)/\(map(.gaps) | add // 0)"' "$judged"
	# Counted per case; a variant without results or an unexercised rule
	# counts as one failure more.
	jq -rs --argjson extra "$extra" \
		'"kernels: \(map(select(.ok)) | length) passed, \((map(select(.ok | not)) | length) + $extra) failed"' "$judged"
	return "$bad"
}
