# shellcheck shell=bash
# shellcheck disable=SC2034 # LAVA_DROPPED, LAVA_JOB_ERROR: output for run-lava
# LAVA's job log back into diogap's results layout, for harness/run-lava.
# Sourced after common.sh and results.sh, never run.
#   lava_begin, then lava_follow while the log grows, then lava_end.
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
# A FAIL stays FAIL (the KTAP line of the guest comes from the exit code,
# the verdict of the stream also from the records): the disagreement is noted.
| if $r.verdict == "FAIL" and ($l == null or $l.result != "fail") then
    .reason = "\($r.reason // "FAIL"); LAVA recorded \($l.result // "no result")"
  elif $l == null then
    .verdict = "BROKEN" | .exit = 2
    | .reason = "LAVA recorded no result for this case (the stream says \($r.verdict)\(if $r.reason then ": " + $r.reason else "" end))"
  elif $l.result != ($r.verdict | want) then
    .verdict = "BROKEN" | .exit = 2
    | .reason = "LAVA recorded \($l.result) but the console stream says \($r.verdict)"
  else . end'

# lava_begin KOUT CASES: empty results for KOUT, before its log is read.
lava_begin() {
	local k=$1
	LAVA_CASES=$2
	results_init "$k" "$2"
	: >"$k/lava/log.jsonl"
	: >"$k/console.log"
	: >"$k/stream.txt"
	: >"$k/lava-results.jsonl"
	LAVA_LINES=0 LAVA_DROPPED=0
}

# lava_follow KOUT LABEL: convert the whole lines the log gained since the
# last call, and record the cases that ended in them (as run-vm does while
# its guest runs).
lava_follow() {
	local k=$1 n new=$1/lava/.new
	[[ -f $k/lava/output.yaml ]] || return 0
	n=$(wc -l <"$k/lava/output.yaml")
	((n > LAVA_LINES)) || return 0
	sed -n "$((LAVA_LINES + 1)),${n}p" "$k/lava/output.yaml" |
		/usr/bin/python3 -c "$LAVA_LOG_PY" >"$new" || die "cannot read the LAVA log of $k"
	LAVA_LINES=$n
	cat "$new" >>"$k/lava/log.jsonl"
	jq -c 'select(.lvl == "results" and (.msg | type) == "object") | .msg' "$new" \
		>>"$k/lava-results.jsonl"
	# ShellLogger escaped every " as \" before LAVA logged the line.
	jq -r 'select(.lvl == "target") | .msg | tostring | gsub("\\\\\""; "\"")' "$new" >"$new.console"
	cat "$new.console" >>"$k/console.log"
	jq -rR 'capture("^#dg (?<n>[0-9]+) (?<r>.*)$")
		| if (.r | utf8bytelength) == (.n | tonumber) then .r else "#dropped" end' \
		"$new.console" >"$new.stream"
	grep -v '^#dropped$' "$new.stream" >>"$k/stream.txt" || true
	LAVA_DROPPED=$((LAVA_DROPPED + $(grep -c '^#dropped$' "$new.stream" || true)))
	rm -f "$new" "$new.console" "$new.stream"
	results_update "$k" "$k/stream.txt" "$2"
}

# lava_job_error KOUT: why the LAVA job failed, or nothing when it passed.
lava_job_error() {
	jq -r 'select(.definition == "lava" and .case == "job" and .result != "pass")
		| "\(.error_type // "Unknown") error: \(.error_msg // "no message")"' \
		"$1/lava-results.jsonl" | head -n 1
}

# lava_end KOUT LABEL: the rest of the log, the cases that never ended, and
# each case checked against LAVA's own result.
lava_end() {
	local k=$1 label=$2 reason err n=0 line
	lava_follow "$k" "$label"
	err=$(lava_job_error "$k")
	LAVA_JOB_ERROR=$err
	reason="the LAVA job ended before this case${err:+ ($err)}"
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
	results_init "$k" "$LAVA_CASES"
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
