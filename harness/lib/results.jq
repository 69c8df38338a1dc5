# results.jq: results.jsonl lines from the case runner's stream
# (harness/lib/run-cases.sh: S J O K E records), for harness/lib/results.sh.
# One jq process for every case a call finds ended: starting one per case
# cost the host more CPU than the guest's cases under TCG.
#
# Input: stream lines, raw (jq -nR). Arguments (--arg):
#   cases     the case list text (cases.tsv): id repro mount timeout _ args fs
#   release   the kernel release (the stream's B record); klabel its label
#   splat_re  kernel log lines that are a splat, whatever the verdict says
#   only      "" for every case whose E record is in the input; or one case
#             id, recorded even without an E, with the fields of...
#   final     ..."EXIT MS WHY" for it when it has none
# Output, one line per case in stream order, fields split by US (\x1f: a
# tab would let the shell's read merge an empty reason away):
#   id US verdict US reason (newlines as spaces) US json

def params: [splits(" +") | select(. != "")]
  | reduce .[] as $w ({o: {}, k: null};
      if ($w | startswith("--")) then
        (if .k then .o[.k] = true else . end) | .k = ($w[2:])
      elif .k then .o[.k] = $w | .k = null
      else . end)
  | (if .k then .o[.k] = true else . end) | .o;

def caseinfo: $cases | split("\n") | map(select(length > 0) | split("\t")
  | {key: .[0], value: {repro: .[1], mount: .[2], args: (.[5] // ""),
      profile: ((.[6] // "-@1") | split("@")[0] | if . == "-" then null else . end)}}) | from_entries;

# {order: [ids as first seen], by: {id: {J: [], O: [], K: [], E: "EXIT MS WHY"}}}
def records: reduce (inputs | capture("^(?<t>[SJOKE]) (?<id>[^ ]+) ?(?<p>.*)$")?) as $r
  ({order: [], by: {}};
    (if .by[$r.id] == null then .order += [$r.id] | .by[$r.id] = {J: [], O: [], K: [], E: null}
     else . end)
    | if $r.t == "E" then .by[$r.id].E = $r.p
      elif $r.t == "S" then .
      else .by[$r.id][$r.t] += [$r.p] end);

def verdict($code): {"0": "PASS", "1": "FAIL", "4": "SKIP"}[$code | tostring] // "BROKEN";

def case_line($id; $info; $rec; $fin):
  ($fin | capture("^(?<code>-?[0-9]+) (?<ms>[0-9]+) ?(?<why>.*)$")
   // {code: "2", ms: "0", why: "malformed end record: \($fin)"}) as $e
  | ($e.code | tonumber) as $code
  | verdict($code) as $v
  | [$rec.J[] | fromjson? // {malformed: .}] as $runs
  | [$rec.K[] | select(length > 0)] as $klines
  | {
      case: $id, kernel: $release, kernel_label: $klabel, repro: $info.repro,
      mount: $info.mount, profile: $info.profile, args: $info.args, params: ($info.args | params),
      verdict: $v, exit: $code, elapsed_ms: ($e.ms | tonumber),
      reason: (if $e.why != "" then $e.why
               elif $v != "PASS" then ([$runs[] | .diag? // empty | select(. != null)][0] // null)
               else null end),
      gaps: [$runs[] | .gaps? // empty | .[]],
      gap_extents: [$runs[] | .gap_extents? // empty | .[]],
      predicted: [$runs[] | .predicted? // empty | .[]],
      rerun: ([$runs[] | select(.verdict? != "PASS") | .rerun? // empty][0] // null),
      splats: [$klines[] | select(test($splat_re))],
      runs: $runs,
      output_tail: ([$rec.O[] | select(length > 0)] | .[-20:])
    }
  | "\($id)\u001f\($v)\u001f\(.reason // "" | tostring | gsub("[\u001f\n\r]"; " "))\u001f\(tojson)";

caseinfo as $ci
| records as $rs
| (if $only != "" then [$only] else $rs.order end)[] as $id
| ($rs.by[$id] // {J: [], O: [], K: [], E: null}) as $rec
| (if $only != "" then ($rec.E // $final) else $rec.E end) as $fin
| select($fin != null and $ci[$id] != null)
| case_line($id; $ci[$id]; $rec; $fin)
