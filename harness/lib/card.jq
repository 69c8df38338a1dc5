# card.jq: the fix card. Input: results.jsonl lines (slurped); --argjson
# chain: the links of configs/chain.conf (harness/fix-card). Output: one
# object per link x kernel:
#   {link, fix, subject, kernel, kernel_name, arch, page_size, state, cases, evidence}
# kernel is the kernel's label, kernel_name what people see (kernel-name.jq:
# the label with the guest's architecture and page size).
# state: fixed (no case of the link FAILed or BROKE and at least one PASSed: a
# PASS is only given when its precondition happened; SKIPped cases did not
# test the link and are named in the evidence), missing (FAILed with the link's signature),
# open upstream (the same where no fix exists), not seen (all PASS, no fix
# exists), unknown (SKIP, BROKEN, another signature, not run) - never a guess.
# harness/fix-card puts `include "signature";` and the generated
# `def link_sel($id)` (each link's `cases` condition) before this text.

def count($v): map(select(.verdict == $v)) | length;
def first_reason: map(.reason // "" | select(. != ""))[0] // "";

. as $all
# notes of the expectation rules that judged the cases (check-kernels'
# expectations.jsonl; --slurpfile exp, [] when there is none)
| ($exp | map(select(.note != null) | {key: "\(.variant)|\(.case)", value: .note}) | from_entries) as $notes
| ($all | map(.kernel_label) | unique) as $kernels
| $chain[] as $l
| $kernels[] as $k
| ($all | map(select(.kernel_label == $k)) | .[0]) as $k0
| [$all[] | select(.kernel_label == $k)
   | select($l.cases != "-" and (try link_sel($l.id) catch false))] as $cs
| ($cs | map(select(dg_signature == $l.signature))) as $hit
| ([$cs[] | $notes["\($k)|\(.case)"] // empty] | unique | join("; ")) as $note
| {link: $l.id, fix: $l.fix, subject: $l.subject, kernel: $k, kernel_name: ($k0 | kernel_name),
   arch: $k0.arch, page_size: $k0.page_size, cases: ($cs | length),
   note: (if $note == "" then null else $note end)}
| if $l.cases == "-" then .state = "unknown" | .evidence = "no reproducer in diogap yet"
  elif ($cs | length) == 0 then .state = "unknown" | .evidence = "not run (no case of the sweep exercises it)"
  elif ($hit | length) > 0 then
    .state = (if $l.fix == "none" then "open upstream" else "missing" end)
    | .evidence = "\($hit | length)/\($cs | length) cases FAIL (\($l.signature)); first: \($hit[0].case): \($hit[0].reason // "")"
  elif ($cs | count("PASS")) > 0 and ($cs | count("PASS")) + ($cs | count("SKIP")) == ($cs | length) then
    .state = (if $l.fix == "none" then "not seen" else "fixed" end)
    | .evidence = "\($cs | count("PASS"))/\($cs | length) cases PASS"
      + (($cs | map(select(.verdict == "SKIP"))) as $sk
         | if ($sk | length) > 0 then ", \($sk | length) SKIP (did not test it: \($sk | first_reason))" else "" end)
  else .state = "unknown"
    | .evidence = ([
        (($cs | map(select(.verdict == "FAIL"))) | if length > 0 then "\(length) FAIL with another signature (\(map(dg_signature) | unique | join(",")))" else empty end),
        (($cs | count("SKIP")) | if . > 0 then "\(.) SKIP" else empty end),
        (($cs | count("BROKEN")) | if . > 0 then "\(.) BROKEN" else empty end),
        (($cs | count("PASS")) | if . > 0 then "\(.) PASS" else empty end)
      ] | join(", ")) + (($cs | map(select(.verdict != "PASS")) | first_reason) as $r
        | if $r != "" then "; e.g. \($r)" else "" end)
  end
| if .note then .evidence += " (expected: \(.note))" else . end
