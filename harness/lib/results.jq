# results.jq: results.jsonl lines from the case runner's stream
# (harness/lib/run-cases.sh: S J O K E records), for harness/lib/results.sh.
# One jq process for every case a call finds ended: starting one per case
# cost the host more CPU than the guest's cases under TCG.
#
# Input: stream lines, raw (jq -nR). Arguments (--arg):
#   cases     the case list text (cases.tsv): id repro mount timeout _ args fs
#             expect_splat
#   release   the kernel release (the stream's B record); klabel its label
#   dev       the scratch device's kernel name (loop2), or "" when unknown
#   splat_re  kernel log lines that are a splat: FAIL, whatever the records
#             say, unless the case's expect_splat matches them
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
      profile: ((.[6] // "-@1") | split("@")[0] | if . == "-" then null else . end),
      expect_splat: (.[7] // "")}}) | from_entries;

# {order: [ids as first seen], by: {id: {J: [], O: [], K: [], Z: [], E: "EXIT MS WHY"}}}
# (Z ID: the runner could not record the case, e.g. its flush failed)
def records: reduce (inputs | capture("^(?<t>[SJOKEZ]) (?<id>[^ ]+) ?(?<p>.*)$")?) as $r
  ({order: [], by: {}};
    (if .by[$r.id] == null then .order += [$r.id] | .by[$r.id] = {J: [], O: [], K: [], Z: [], E: null}
     else . end)
    | if $r.t == "E" then .by[$r.id].E = $r.p
      elif $r.t == "S" then .
      else .by[$r.id][$r.t] += [$r.p] end);

def verdict($code): {"0": "PASS", "1": "FAIL", "4": "SKIP"}[$code | tostring] // "BROKEN";

# FAIL > BROKEN > PASS > SKIP; anything else counts as BROKEN.
def rank: {"FAIL": 3, "BROKEN": 2, "PASS": 1, "SKIP": 0}[.] // 2;
def vname: if rank == 2 then "BROKEN" else . end;

# judge: one verdict from two witnesses, the exit code ($e) and the JSON
# records ($runs, one per iteration, $want of them). A FAIL record is
# sticky: FAIL whatever the exit code (exit 0, a timeout, a kill), and the
# reason keeps both. Otherwise they must agree: exit 1 without a FAIL
# record, a missing or extra record, a record the exit code contradicts
# are BROKEN, with the disagreement as the reason. Every BROKEN and SKIP
# gets a reason.
def judge($e; $code; $runs; $want; $last):
  (if $e.why != "" then "exit \($code) (\($e.why))" else "exit \($code)" end) as $exit
  | ($runs | length) as $have
  | [$runs[] | .verdict? // "BROKEN" | vname] as $rv
  | def diag($v): [$runs[] | select((.verdict? // "BROKEN" | vname) == $v)
      | .diag? // empty | select(. != null and . != "") | tostring][0];
  if any($rv[]; . == "FAIL") then
    (diag("FAIL") // "a FAIL record without a diag") as $d
    | {verdict: "FAIL",
       reason: (if $code == 1 then $d
                elif $code == 0 then "exit 0 but a FAIL record: \($d)"
                else "\($d); then \($exit)" end)}
  elif $code == 1 then
    {verdict: "BROKEN", reason: "exit 1 but no FAIL record (\($have) of \($want) records)"}
  elif verdict($code) == "BROKEN" then
    {verdict: "BROKEN",
     reason: (if $e.why != "" then $e.why
              else (diag("BROKEN") // (if $last != "" then "\($exit): \($last)" else $exit end)) end)}
  elif any($rv[]; . == "BROKEN") then
    {verdict: "BROKEN", reason: "\($exit) but a BROKEN record: \(diag("BROKEN") // "malformed")"}
  elif $have != $want then
    {verdict: "BROKEN", reason: "\($exit) but \($have) of \($want) records"}
  elif ($rv | max_by(rank)) != verdict($code) then
    {verdict: "BROKEN", reason: "\($exit) but the records say \($rv | max_by(rank))"}
  elif $code == 4 then
    {verdict: "SKIP", reason: (diag("SKIP") // "exit 4 (SKIP) without a reason")}
  else {verdict: "PASS", reason: null} end;

# splat_judge: a kernel splat makes the case FAIL, its first line the
# reason, unless the case expects it (the sweep's expect_splat regex).
def splat_judge($j; $splats; $expect):
  [$splats[] | select($expect == "" or (test($expect) | not))] as $bad
  | if ($bad | length) == 0 or $j.verdict == "FAIL" then $j + {splat_fail: false}
    else {verdict: "FAIL", reason: ($bad[0] | sub("^\\[ *[0-9.]+\\] "; "")), splat_fail: true, verdict_before_splat: $j.verdict} end;

# foreign: a kernel line naming a device ("BTRFS warning (device loop3): csum
# failed ...") that is not ours ($dev, when known): on a shared host another
# filesystem's messages come while a case runs, and are not the case's.
# $dev may list several devices (a run with several scratch disks).
def foreign: $dev != "" and (((capture("\\(device (?<d>[^)]+)\\)")? | .d) // null) as $d
  | $d != null and ($dev | split(" ") | index([$d])) == null);

def case_line($id; $info; $rec; $fin):
  ($fin | capture("^(?<code>-?[0-9]+) (?<ms>[0-9]+) ?(?<why>.*)$")
   // {code: "2", ms: "0", why: "malformed end record: \($fin)"}) as $e
  | ($e.code | tonumber) as $code
  | ($info.args | params) as $params
  | [$rec.K[] | select(length > 0) | select(foreign | not)] as $klines
  | [$klines[] | select(test("csum failed"))] as $csum
  | [$rec.J[] | fromjson? // {malformed: .}
     | if .symptom? == "eio-read" then .csum_lines = $csum else . end] as $runs
  | (($params.iterations // "" | tonumber?) // ([$runs[] | .iterations? // empty][0]) // 1) as $want
  | [$klines[] | select(test($splat_re))] as $heads
  | ([$rec.O[] | select(length > 0)][-1] // "") as $last
  | splat_judge(judge($e; $code; $runs; $want; $last); $heads; $info.expect_splat)
  | (if ($rec.Z | length) > 0 and .verdict != "FAIL"
     then .verdict = "BROKEN" | .reason = "the runner could not record it: \($rec.Z[0])"
     else . end) as $j
  | {
      case: $id, kernel: $release, kernel_label: $klabel, repro: $info.repro,
      mount: $info.mount, profile: $info.profile, args: $info.args, params: $params,
      verdict: $j.verdict, exit: $code, elapsed_ms: ($e.ms | tonumber),
      reason: $j.reason,
      iterations: $want, records: ($runs | length),
      splat_fail: $j.splat_fail, verdict_before_splat: ($j.verdict_before_splat // null),
      expect_splat: (if $info.expect_splat != "" then $info.expect_splat else null end),
      gaps: [$runs[] | .gaps? // empty | .[]],
      gap_extents: [$runs[] | .gap_extents? // empty | .[]],
      predicted: [$runs[] | .predicted? // empty | .[]],
      rerun: ([$runs[] | select(.verdict? != "PASS") | .rerun? // empty][0] // null),
      splats: [$klines[] | select(test($splat_re) or test("Call Trace"))],
      csum_lines: $csum,
      runs: $runs,
      output_tail: ([$rec.O[] | select(length > 0)] | .[-20:])
    }
  | "\($id)\u001f\(.verdict)\u001f\(.reason // "" | tostring | gsub("[\u001f\n\r]"; " "))\u001f\(tojson)";

caseinfo as $ci
| records as $rs
| (if $only != "" then [$only] else $rs.order end)[] as $id
| ($rs.by[$id] // {J: [], O: [], K: [], Z: [], E: null}) as $rec
| (if $only != "" then ($rec.E // $final) else $rec.E end) as $fin
| select($fin != null and $ci[$id] != null)
| case_line($id; $ci[$id]; $rec; $fin)
