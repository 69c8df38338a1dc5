# shellcheck shell=bash
# shellcheck disable=SC2034 # LAVA_DROPPED, LAVA_JOB_ERROR: output for run-lava
# LAVA's job log back into diogap's results layout, for harness/run-lava.
# Sourced after common.sh and results.sh, never run.
#
# Input: KOUT/lava/output.yaml, the job log as lava-run prints it or as
# `lavacli jobs logs --raw ID` fetches it from a server (one YAML mapping per
# line: dt, lvl, msg). Output, in KOUT:
#   console.log         the guest's console (lvl target)
#   stream.txt          the runner's stream, rebuilt from the "#dg N record"
#                       console lines (a line whose length is not N was cut
#                       by kernel output and is dropped)
#   lava-results.jsonl  every result LAVA recorded (msg of lvl results)
#   results.jsonl ...   results.sh's layout; each line also carries
#                       "lava": {suite, case, result, gaps}, and a case whose
#                       LAVA result disagrees with the stream is BROKEN

# The log's lines as JSON, one per line. Debian's python3 (with python3-yaml,
# which lava-dispatcher needs too), whatever python3 comes first in PATH.
readonly LAVA_LOG_PY='
import json, sys, yaml
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
for line in sys.stdin:
    line = line.strip()
    if line.startswith("- "):
        line = line[2:]
    if not line.startswith("{"):
        continue
    try:
        rec = yaml.load(line, Loader=loader)
    except yaml.YAMLError:
        continue
    if isinstance(rec, dict):
        print(json.dumps(rec, default=str))
'

# LAVA's result for each of our verdicts.
# shellcheck disable=SC2016 # jq code, not shell
readonly LAVA_ANNOTATE_JQ='
def want: {"PASS": "pass", "FAIL": "fail", "SKIP": "skip"}[.] // "unknown";
($lava | map(select(.definition == "diogap")) | map({key: .extra.test_case_id, value: .}) | from_entries) as $cases
| ($lava | map(select(.definition == "diogap-gaps"))) as $gaps
| . as $r
| ($cases[$r.case]) as $l
| .lava = {suite: "diogap", case: ($l.case // null), result: ($l.result // null),
           gaps: [$gaps[] | select(.extra.test_case_id | startswith($r.case + ".gap."))
                  | {case: .extra.test_case_id, bytes: (.measurement | tonumber? // .)}]}
| if $l == null then
    .verdict = "BROKEN" | .exit = 2
    | .reason = "LAVA recorded no result for this case (the stream says \($r.verdict)\(if $r.reason then ": " + $r.reason else "" end))"
  elif $l.result != ($r.verdict | want) then
    .verdict = "BROKEN" | .exit = 2
    | .reason = "LAVA recorded \($l.result) but the console stream says \($r.verdict)"
  else . end'

# lava_log_json LOG OUT: the log's records as JSON Lines.
lava_log_json() {
	/usr/bin/python3 -c "$LAVA_LOG_PY" <"$1" >"$2" || die "cannot read the LAVA log $1"
}

# lava_split KOUT: console.log, stream.txt and lava-results.jsonl from
# KOUT/lava/log.jsonl; prints how many #dg lines were dropped.
lava_split() {
	local k=$1
	# ShellLogger escaped every " as \" before LAVA logged the line.
	jq -r 'select(.lvl == "target") | .msg | tostring | gsub("\\\\\""; "\"")' \
		"$k/lava/log.jsonl" >"$k/console.log"
	jq -c 'select(.lvl == "results" and (.msg | type) == "object") | .msg' "$k/lava/log.jsonl" >"$k/lava-results.jsonl"
	jq -rR 'capture("^#dg (?<n>[0-9]+) (?<r>.*)$")
		| if (.r | utf8bytelength) == (.n | tonumber) then .r else "#dropped" end' \
		"$k/console.log" >"$k/.stream"
	grep -v '^#dropped$' "$k/.stream" >"$k/stream.txt" || true
	grep -c '^#dropped$' "$k/.stream" || true
	rm -f "$k/.stream"
}

# lava_job_error KOUT: why the LAVA job failed, or nothing when it passed.
lava_job_error() {
	jq -r 'select(.definition == "lava" and .case == "job" and .result != "pass")
		| "\(.error_type // "Unknown") error: \(.error_msg // "no message")"' \
		"$1/lava-results.jsonl" | head -n 1
}

# lava_results KOUT CASES LABEL: KOUT's results from its LAVA log.
lava_results() {
	local k=$1 cases=$2 label=$3 reason err n=0 line
	lava_log_json "$k/lava/output.yaml" "$k/lava/log.jsonl"
	LAVA_DROPPED=$(lava_split "$k")
	err=$(lava_job_error "$k")
	LAVA_JOB_ERROR=$err
	reason="the LAVA job ended before this case${err:+ ($err)}"
	results_init "$k" "$cases"
	results_finish "$k" "$k/stream.txt" "$label" "$reason"
	jq -c --slurpfile lava "$k/lava-results.jsonl" "$LAVA_ANNOTATE_JQ" "$k/results.jsonl" \
		>"$k/.annotated"
	if cmp -s <(jq -r '"\(.case) \(.verdict)"' "$k/results.jsonl") \
		<(jq -r '"\(.case) \(.verdict)"' "$k/.annotated"); then
		mv "$k/.annotated" "$k/results.jsonl"
		return 0
	fi
	# LAVA disagrees on some case: record the BROKEN verdicts anew.
	cp "$k/dmesg.txt" "$k/.dmesg"
	results_init "$k" "$cases"
	mv "$k/.dmesg" "$k/dmesg.txt"
	while IFS= read -r line; do
		n=$((n + 1))
		results_append "$k" "$n" "$line"
	done <"$k/.annotated"
	echo "$n" >"$k/.done"
	results_finish "$k" /dev/null "$label" "$reason"
	rm -f "$k/.annotated"
}

# lava_counts KOUT: "pass P fail F skip S unknown U" of LAVA's diogap suite.
lava_counts() {
	jq -rs 'map(select(.definition == "diogap")) as $c
		| ["pass", "fail", "skip", "unknown"] | map(. as $r | "\($r) \([$c[] | select(.result == $r)] | length)")
		| join(" ")' "$1/lava-results.jsonl"
}
