# signature.jq: the FAIL signature of one results.jsonl case, shared by the
# expectations (expect.sh) and the fix card (card.jq). One word:
#   hang    a write that never returned
#   eio     EIO on read back or write ("csum failed"; symptom eio-read/-write)
#   copies  mirror or DUP copies differ
#   lost    bytes a completed O_DSYNC write or fsync promised are gone after
#           a power cut (symptom lost-after-cut)
#   size    the file size is wrong (the O_APPEND bug), or a read came back
#           short (size_seen < size_expected) or with EAGAIN (eagain-read:
#           nothing read)
#   hole    every bad range reads as zeros and the size is right
#   splat   the case FAILed on a kernel splat alone, or a run's thread
#           was killed inside a system call (symptom oops: a BUG/assertion)
#   other   any other FAIL; "" when the case did not FAIL
def dg_fail_runs: [.runs[]? | select(.verdict? == "FAIL")];
def dg_signature:
  dg_fail_runs as $f
  | if .verdict != "FAIL" then ""
    elif any($f[]; .symptom? == "hang") or ((.reason // "") | test("hang|hung")) then "hang"
    elif any($f[]; .symptom? == "oops") then "splat"
    elif any($f[]; (.symptom? // "") | startswith("eio")) then "eio"
    elif any($f[]; .symptom? == "copies") then "copies"
    elif any($f[]; .symptom? == "lost-after-cut") then "lost"
    elif any($f[]; .symptom? == "size" or .symptom? == "eagain-read" or (.size_seen? != .size_expected?)) then "size"
    elif (.gaps | length > 0) and all(.gaps[]; .[2] == "zero") then "hole"
    elif ($f | length) == 0 and (.splats | length > 0) then "splat"
    else "other" end;
