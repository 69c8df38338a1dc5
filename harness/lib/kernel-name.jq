# kernel-name.jq: how a kernel is named to people (the report's matrix and
# tables, the fix card): its label, then the guest's architecture and page
# size when the records carry them (run-vm, run-lava):
#   "stock-6.1 (x86_64, 4K pages)", "stock-6.1-64k (arm64, 64K pages)".
# Loaded with `include "kernel-name";` (jq -L harness/lib).

def page_name: if . == null then null elif . % 1024 == 0 then "\(. / 1024)K" else "\(.)" end;

# One record's kernel name.
def kernel_name:
  (.kernel_label // "?")
  + (if .arch then " (\(.arch)" + (if .page_size then ", \(.page_size | page_name) pages" else "" end) + ")"
     else "" end);

# Records (an array) -> {label: name}, from each label's first record.
def kernel_names:
  reduce .[] as $r ({}; if has($r.kernel_label // "?") then . else .[$r.kernel_label // "?"] = ($r | kernel_name) end);
