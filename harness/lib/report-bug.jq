# The first part of bug-report.txt (subject, kernel, command, expected vs
# seen) from one results.jsonl line; $m[0] = {top, kernels} (report-html.sh).
include "report";

def find($re): [paths(scalars) as $p | select($p | map(tostring) | join(".") | test($re))
  | getpath($p)][0];
def gapline: "    [\(.s), \(.e))  \(.e - .s | human)  \(.cls | cls_text)";

. as $c
| ($m[0].kernels[$c.kernel_label] // {}) as $km
| ($m[0].top // {}) as $tm
| ([$c.runs[]? | objects | select(.verdict? == "FAIL")][0] // ($c.runs[0]? // {})) as $r
| ($c | case_gaps) as $g
| ($c.predicted // [] | map(norm_range)) as $p
| (if ($g | length) > 0 then
     "\($g[0].e - $g[0].s | human) of \($g[0].cls | cls_text) at offset \($g[0].s)"
     + (if ($g | length) > 1 then " and \($g | length - 1) more bad range(s)" else "" end)
   elif ($r.size_seen? // null) != ($r.size_expected? // null) then
     "file size \($r.size_seen) instead of \($r.size_expected)"
   else ($c.reason // "\($c.verdict)") end) as $what
| "Subject: [BUG] btrfs: O_DIRECT write from a partly resident buffer: \($what) (\($c.repro), \($c.kernel))",
  "",
  "Kernel",
  "  release:      \($c.kernel)",
  "  config hash:  \(($km | find("config_hash|kconfig")) // ($tm | find("config_hash|kconfig")) // "unknown")",
  ((($km | find("kernel\\.version$")) // ($tm | find("kernel\\.version$"))) | if . then "  version:      \(.)" else empty end),
  "  image:        \(($km | find("origin|image|bzimage")) // ($tm | find("origin|image|bzimage")) // "running kernel")",
  ($km.kernel.built // empty | "  built from:   \(.source) + \(.patches | if length > 0 then join(" + ") else "no patch" end)"
     + " (\(.fragments | join(", ")))"),
  "  harness kernel label: \($c.kernel_label)",
  "",
  "What ran (verdict \($c.verdict), exit \($c.exit), \($c.elapsed_ms) ms)",
  "  command:  \($c.rerun // ([$c.runs[]? | objects | .rerun? // empty][0]) // "(not recorded; reproducer \($c.repro) with: \($c.args))")",
  "  harness case: \($c.case)",
  "  filesystem: btrfs, mkfs.btrfs \(($km.mkfs // $tm.mkfs // "") | if . == "" then "(defaults)" else . end), mount -o \($c.mount)",
  "  btrfs-progs: \($km.btrfs_progs // $tm.btrfs_progs // "unknown")   diogap: \($km.project_commit // $tm.project_commit // "unknown")",
  "",
  "Expected vs seen",
  "  file size: expected \($r.size_expected? // "?"), seen \($r.size_seen? // "?")",
  (if ($g | length) > 0 then "  bad ranges (file offsets, [start, end)):", ($g[] | gapline)
   else "  bad ranges: none" end),
  (if ($p | length) > 0 then
     "  predicted from the buffer's residency (a buggy kernel loses these): "
     + ($p | map("[\(.s), \(.e))") | join(", "))
     + (if ($p | map([.s, .e])) == ($g | map(select(.cls | startswith("zero"))) | map([.s, .e]))
        then "  (the zero ranges match the prediction)" else "" end)
   else empty end),
  (if ($r.residency? | type) == "object" then
     "  buffer residency right before the write: \($r.residency.resident // "?")/\($r.residency.pages // "?") pages"
     + " (\($r.residency_source // "?")), resident buffer bytes: "
     + (($r.residency.ranges // []) | map("[\(.[0]), \(.[1]))") | .[0:12] | join(", "))
   else empty end),
  (if $c.reason then "  reproducer says: \($c.reason)" else empty end)
