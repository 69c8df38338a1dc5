# jq library for harness/report: reads results.jsonl lines (harness/lib/results.sh)
# and writes HTML fragments. Loaded with `jq -L harness/lib 'include "report"; ...'`.
# Everything that comes from results goes through esc (HTML-escaped).
# Kernels are keyed by their label; people see kernel_name (kernel-name.jq):
# the label with the guest's architecture and page size.
include "kernel-name";

def esc: if . == null then "" else tostring | @html end;

# Verdicts, worst first.
def vorder: {"FAIL": 0, "BROKEN": 1, "PASS": 2, "SKIP": 3}[.] // 1;
def verdicts: ["FAIL", "BROKEN", "PASS", "SKIP"];

# "64K" / "1M" / "4096" -> bytes (for sorting); unknown -> null.
def size_bytes:
  tostring | capture("^(?<n>[0-9]+)(?<u>[KMG]?)$")
  | (.n | tonumber) * {"": 1, "K": 1024, "M": 1048576, "G": 1073741824}[.u];

# bytes -> "64 KiB" (exact: falls back to a smaller unit or bytes).
def human:
  if type != "number" then tostring
  elif . >= 1073741824 and . % 1073741824 == 0 then "\(. / 1073741824) GiB"
  elif . >= 1048576 and . % 1048576 == 0 then "\(. / 1048576) MiB"
  elif . >= 1024 and . % 1024 == 0 then "\(. / 1024) KiB"
  elif . >= 1048576 then "\((. / 1048576 * 10 | floor) / 10) MiB"
  elif . >= 1024 then "\((. / 1024 * 10 | floor) / 10) KiB"
  else "\(.) B" end;

def ms: if type == "number" then (if . >= 10000 then "\(. / 1000 | floor) s"
  elif . >= 1000 then "\((. / 100 | floor) / 10) s" else "\(.) ms" end) else "-" end;

# One gap, whatever its JSON shape, as {s, e, cls} ([s, e) bytes). cls is one of
# zero-hole, zero-extent, zero (not known which), stale, misplaced, garbage,
# or the class string as written.
def zero_kind($x):
  if $x == null then "zero"
  elif ($x | tostring | test("^(0|false|hole)$")) then "zero-hole"
  elif ($x | tostring | test("^(1|true|extent|in-extent|zeros-in-extent)$")) then "zero-extent"
  else "zero" end;
def norm_gap:
  (if type == "array" then {s: .[0], e: .[1], c: (.[2] // "unknown"), x: .[3]}
   elif type == "object" then {s: (.start // .offset // 0), c: (.class // .cls // "unknown"),
     x: (.extent // .in_extent // .kind)} + {e: (.["end"] // ((.start // .offset // 0) + (.len // .length // 0)))}
   else {s: 0, e: 0, c: "unknown", x: null} end)
  | {s, e,
     cls: ((.c | tostring | ascii_downcase) as $c
       | if $c == "zero" or $c == "zeros" then zero_kind(.x)
         elif $c == "hole" or $c == "zero-hole" or $c == "zero:hole" then "zero-hole"
         elif $c == "zero-extent" or $c == "zero:extent" or $c == "zeros-in-extent" then "zero-extent"
         else $c end)};
# A reproducer run's gaps, with hole vs zeros-in-extent from its
# "gap_extents" member ([s, e, "hole"|"extent"|"unknown"|"n/a"], same order).
def run_gaps: (.gap_extents // []) as $x
  | [(.gaps // []) | to_entries[] | ($x[.key] // null) as $xe | .value | norm_gap
     | if .cls == "zero" and ($xe | type) == "array" and $xe[0] == .s and $xe[1] == .e
       then .cls = zero_kind($xe[2]) else . end];
# A case's gaps: from its runs (they carry the extent labels), else the case line.
def case_gaps: if ([.runs[]? | objects | .gaps // empty | .[]] | length) > 0
  then [.runs[] | objects | run_gaps[]] else (.gaps // [] | map(norm_gap)) end;
def norm_range: if type == "array" then {s: .[0], e: .[1]}
  else {s: (.start // 0), e: (.["end"] // 0)} end;
def cls_text: {"zero-hole": "zeros (hole)", "zero-extent": "zeros in an extent",
  "zero": "zeros"}[.] // .;

# Index every case: .i is its line number (0-based) in results.jsonl.
def indexed: to_entries | map(.value + {i: .key});
def kernels: reduce .[].kernel_label as $k ([]; if index([$k]) then . else . + [$k] end);
def fault_of: .params.fault // "-";
def rows: map({repro, fault: fault_of}) | unique_by([.repro, .fault]);
def counts: reduce .[] as $c ({}; .[$c.verdict] += 1);
def worst: map(.verdict) | sort_by(vorder) | .[0] // "none";
def cell_id($ki; $ri): "cell-\($ki)-\($ri)";

def chip($v; $n): "<span class=\"chip v-\($v)\">\($n) \($v)</span>";
def chips: counts as $n | [verdicts[] | select($n[.]) | chip(.; $n[.])] | join(" ");

# Per kernel: counts table; $meta as in html_timings.
def html_summary($meta):
  indexed as $all | ($all | kernels) as $ks
  | "<table class=\"counts\"><tr><th>kernel</th><th>release</th><th>from</th><th>cases</th>"
    + ([verdicts[] | "<th>\(.)</th>"] | join("")) + "<th>splats</th></tr>",
    ($ks[] as $k | ($all | map(select(.kernel_label == $k))) as $c | ($c | counts) as $n
     | ($meta.kernels[$k].kernel // {}) as $kk
     | "<tr data-kernel=\"\($k | esc)\"><td>\($c[0] | kernel_name | esc)</td><td>\($c[0].kernel | esc)</td>"
       + "<td class=\"from\">\(if $kk.built then "\($kk.built.source) + \($kk.built.patches | if length > 0 then join(" + ") else "no patch" end)"
           else $kk.origin // $meta.top.mode // "-" end | esc)</td><td>\($c | length)</td>"
       + ([verdicts[] as $v | "<td class=\"\(if ($n[$v] // 0) > 0 then "v-" + $v else "" end)\">\($n[$v] // 0)</td>"] | join(""))
       + "<td>\($c | map(select((.splats // []) | length > 0)) | length)</td></tr>"),
    "</table>";

# The verdict matrix: one row per reproducer x fault pattern, one column per kernel.
def html_matrix:
  indexed as $all | ($all | kernels) as $ks | ($all | rows) as $rs | ($all | kernel_names) as $kn
  | "<table class=\"matrix\" id=\"matrix\"><tr><th>reproducer</th><th>fault</th>"
    + ([$ks[] | "<th data-kernel=\"\(esc)\">\($kn[.] | esc)</th>"] | join("")) + "</tr>",
    ($rs | to_entries[] | .key as $ri | .value as $r
     | "<tr><td>\($r.repro | esc)</td><td>\($r.fault | esc)</td>"
       + ([$ks | to_entries[] | .key as $ki | .value as $k
           | ($all | map(select(.kernel_label == $k and .repro == $r.repro and fault_of == $r.fault))) as $c
           | if ($c | length) == 0 then "<td class=\"cell empty\">-</td>"
             else ($c | counts) as $n
             | "<td class=\"cell v-\($c | worst)\" data-kernel=\"\($k | esc)\" data-repro=\"\($r.repro | esc)\""
               + " data-fault=\"\($r.fault | esc)\" data-verdict=\"\($c | worst)\""
               + ([verdicts[] as $v | " data-\($v | ascii_downcase)=\"\($n[$v] // 0)\""] | join(""))
               + "><a href=\"#\(cell_id($ki; $ri))\">\($c | chips)</a></td>" end] | join(""))
       + "</tr>"),
    "</table>";

# Why a case is not PASS: its reason, else the last line of its output that
# is not KTAP (a reproducer that refused its options writes no JSON).
def why: .reason // ([(.output_tail // [])[] | strings
  | select(test("^(#|ok |not ok |KTAP|1\\.\\.)") | not)] | last);
def case_link: "<a href=\"#case-\(.i)\">\(.case | esc)</a>";

# The case list behind every matrix cell.
def html_cells:
  indexed as $all | ($all | kernels) as $ks | ($all | rows) as $rs | ($all | kernel_names) as $kn
  | $rs | to_entries[] | .key as $ri | .value as $r
  | $ks | to_entries[] | .key as $ki | .value as $k
  | ($all | map(select(.kernel_label == $k and .repro == $r.repro and fault_of == $r.fault))) as $c
  | select($c | length > 0)
  | "<section class=\"cases\" id=\"\(cell_id($ki; $ri))\"><h3>\($kn[$k] | esc) · \($r.repro | esc) · fault \($r.fault | esc)</h3>"
    + "<table><tr><th>case</th><th>verdict</th><th>mount</th><th>time</th><th>reason / gaps</th></tr>"
    + ([$c[] | "<tr id=\"case-\(.i)\" class=\"case\" data-verdict=\"\(.verdict | esc)\"><td>\(.case | esc)</td>"
        + "<td class=\"v-\(.verdict | esc)\">\(.verdict | esc)</td><td>\(.mount | esc)</td><td>\(.elapsed_ms | ms)</td><td>"
        + (if .verdict == "FAIL" then "<a href=\"#gap-\(.i)\">gap map</a> "
             + (case_gaps | map("[\(.s), \(.e)) \(.cls)") | join(", ") | esc)
           else (why | esc) end)
        + "</td></tr>"] | join(""))
    + "</table></section>";

# Gap map of one reproducer run: the file's byte range as a bar.
def gap_svg($r):
  ($r | run_gaps) as $g | ($r.predicted // [] | map(norm_range)) as $p
  | ($r.offset // 0 | tonumber? // 0) as $off
  | ($r.size_expected // (($r.size // 0) + $off)) as $exp
  | ($r.size_seen // $exp) as $seen
  | (if ($r.size | type) == "number" then $r.size else ($exp - $off) end) as $len
  | ([$exp, $seen, $off + $len] + ($g | map(.e)) + ($p | map(.e)) | max) as $L
  | (if $L > 0 then $L else 1 end) as $L
  | 860 as $W | 20 as $x0 | (($W - 2 * $x0) / $L) as $k
  | def x($b): ($x0 + $b * $k | . * 10 | floor / 10);
    def w($a; $b): ([($b - $a) * $k, 2.5] | max | . * 10 | floor / 10);
    def rect($a; $b; $y; $h; $cls; $t):
      "<rect class=\"\($cls)\" x=\"\(x($a))\" y=\"\($y)\" width=\"\(w($a; $b))\" height=\"\($h)\">"
      + "<title>\($t | esc)</title></rect>";
  "<svg class=\"gapsvg\" viewBox=\"0 0 \($W) 68\" width=\"\($W)\" height=\"68\" role=\"img\">"
  + rect(0; $L; 14; 26; "g-file"; "file range [0, \($L)) \($L | human)")
  + rect($off; $off + $len; 14; 26; "g-data"; "written data [\($off), \($off + $len))")
  + (if $seen > $exp then rect($exp; $seen; 14; 26; "g-excess"; "beyond the expected size: [\($exp), \($seen))")
     elif $seen < $exp then rect($seen; $exp; 14; 26; "g-short"; "missing, file too short: [\($seen), \($exp))")
     else "" end)
  + ([$g[] | rect(.s; .e; 14; 26; "gap g-\(.cls)";
       "[\(.s), \(.e)) \(.e - .s | human) \(.cls | cls_text)")] | join(""))
  + ([($r.residency.ranges? // [])[] | select(type == "array") | rect($off + .[0]; $off + .[1]; 42; 5; "g-res";
       "buffer pages resident right before the write, at file offsets [\($off + .[0]), \($off + .[1]))")] | join(""))
  + ([$p[] | rect(.s; .e; 3; 8; "g-pred"; "predicted [\(.s), \(.e))")
       + rect(.s; .e; 14; 26; "g-predo"; "predicted [\(.s), \(.e))")] | join(""))
  + ((4096 | until(. * 8 >= $L; . * 2)) as $step | [range(0; $L + 1; $step)] | map(
      "<line class=\"tick\" x1=\"\(x(.))\" x2=\"\(x(.))\" y1=\"48\" y2=\"52\"/>"
      + "<text x=\"\(x(.))\" y=\"63\" text-anchor=\"middle\">\(human | esc)</text>") | join(""))
  + "</svg>";

# A failing case: its gap map(s), gap list, rerun command.
def html_failure:
  "<div class=\"gapmap\" id=\"gap-\(.i)\" data-case=\"\(.case | esc)\" data-kernel=\"\(.kernel_label | esc)\">"
  + "<h3><a href=\"#case-\(.i)\">\(.case | esc)</a> on \(kernel_name | esc) (\(.kernel | esc))</h3>"
  + (((.runs // []) | map(select(type == "object" and .verdict? == "FAIL"))) as $fr
     | if ($fr | length) > 0 then
         [$fr[] | "<div class=\"run\">iteration \(.iteration // "?" | esc): size expected "
           + "\(.size_expected | esc), seen \(.size_seen | esc)"
           + (if (.residency | type) == "object" then "; \(.residency.resident // "?")/\(.residency.pages // "?")"
               + " buffer pages resident (\(.residency_source // "?" | esc))" else "" end)
           + (if .predicted_match == true then "; the gaps match the prediction"
              elif .predicted_match == false then "; the gaps differ from the prediction" else "" end)
           + "</div>" + gap_svg(.)] | join("")
       else gap_svg({gaps: .gaps, predicted: .predicted}) end)
  + "<ul class=\"gaplist\">" + ([case_gaps[]
      | "<li class=\"g-\(.cls | esc)\">[\(.s), \(.e)) \(.e - .s | human) \(.cls | cls_text | esc)</li>"] | join(""))
  + ([(.predicted // [])[] | norm_range | "<li class=\"pred\">predicted [\(.s), \(.e))</li>"] | join(""))
  + "</ul><pre class=\"rerun\">\(.rerun // "rerun command not recorded" | esc)</pre></div>";

def html_failures:
  indexed | map(select(.verdict == "FAIL")) as $f
  | if ($f | length) == 0 then "<p>No FAIL case.</p>" else ($f[] | html_failure) end;

def html_broken:
  indexed | map(select(.verdict == "BROKEN" or ((.splats // []) | length > 0))) as $b
  | if ($b | length) == 0 then "<p>None.</p>"
    else "<table id=\"broken-list\"><tr><th>case</th><th>kernel</th><th>verdict</th><th>reason</th><th>kernel splat</th></tr>",
      ($b[] | "<tr><td>\(case_link)</td><td>\(.kernel_label | esc)</td><td class=\"v-\(.verdict | esc)\">\(.verdict | esc)</td>"
        + "<td>\(why | esc)</td><td><pre>\((.splats // [])[0:5] | join("\n") | esc)</pre></td></tr>"),
      "</table>" end;

# Flatten a JSON document into "a.b.c" -> value rows; arrays of scalars
# (a qemu command line) are one row, joined with spaces.
def kv($p): if type == "object" then to_entries[] | .key as $k | .value | kv($p + [$k])
  elif type == "array" and any(.[]; type == "object" or type == "array")
  then to_entries[] | (.key | tostring) as $k | .value | kv($p + [$k])
  else {k: ($p | join(".")), v: (if type == "array" then map(tostring) | join(" ") else tostring end)} end;
def kv_rows: [kv([]) | "<tr><td>\(.k | esc)</td><td><pre>\(.v | esc)</pre></td></tr>"] | join("");

# Timings per kernel; $meta = {top: meta.json, kernels: {label: meta.json}}
# (run-vm's per-kernel meta has boot_ms, first_verdict_ms, wall_ms).
def html_timings($meta):
  indexed as $all | ($all | kernels) as $ks | ($all | kernel_names) as $kn
  | "<table class=\"timings\"><tr><th>kernel</th><th>boot</th><th>first verdict</th><th>whole VM</th>"
    + "<th>cases</th><th>sum of cases</th><th>mean</th><th>slowest case</th></tr>",
    ($ks[] as $k | ($all | map(select(.kernel_label == $k))) as $c
     | ($c | map(.elapsed_ms // 0)) as $t | ($meta.kernels[$k] // {}) as $km
     | "<tr data-kernel=\"\($k | esc)\"><td>\($kn[$k] | esc)</td><td>\($km.boot_ms | ms)</td><td>\($km.first_verdict_ms | ms)</td>"
       + "<td>\($km.wall_ms | ms)</td><td>\($c | length)</td><td>\($t | add | ms)</td><td>\($t | add / length | floor | ms)</td>"
       + "<td>\($c | max_by(.elapsed_ms // 0) | "\(case_link) \(.elapsed_ms | ms)")</td></tr>"),
    "</table><h3>Per case</h3><table class=\"percase\"><tr><th>case</th>" + ([$ks[] | "<th>\($kn[.] | esc)</th>"] | join("")) + "</tr>",
    ($all | group_by(.case) | sort_by(.[0].i)[] as $g
     | "<tr><td>\($g[0].case | esc)</td>" + ([$ks[] as $k | ($g | map(select(.kernel_label == $k)) | .[0]) as $c
         | if $c then "<td class=\"v-\($c.verdict | esc)\"><a href=\"#case-\($c.i)\">\($c.elapsed_ms | ms)</a></td>" else "<td>-</td>" end] | join(""))
       + "</tr>"),
    "</table>";

def html_env($meta):
  "<h3>Run</h3><table class=\"env\">\($meta.top | kv_rows)</table>",
  ($meta.kernels | to_entries[] | "<h3>\(.key | esc)</h3><table class=\"env\">\(.value | kv_rows)</table>");

# Heatmap data for gnuplot, one kernel: "xi yi pct fails total" lines, plus
# the axis labels as "#x i label" / "#y i label" lines. Only PASS and FAIL count.
def heat_data($k):
  map(select(.kernel_label == $k and (.verdict == "FAIL" or .verdict == "PASS")))
  | map(. + {sz: (.params.size // "?" | tostring), qd: (.params.qd // "sync" | tostring)}) as $c
  | ($c | map(.sz) | unique | sort_by(size_bytes // 0)) as $xs
  | ($c | map(.qd) | unique | sort_by(if . == "sync" then -1 else (tonumber? // 0) end)) as $ys
  | ($xs | to_entries[] | "#x \(.key) \(.value | gsub("[^A-Za-z0-9._-]"; "_"))"),
    ($ys | to_entries[] | "#y \(.key) \(.value | gsub("[^A-Za-z0-9._-]"; "_"))"),
    ($c | group_by([.sz, .qd])[] | . as $grp | (map(select(.verdict == "FAIL")) | length) as $f
     | "\($xs | index([$grp[0].sz])) \($ys | index([$grp[0].qd])) \($f * 100 / ($grp | length) | floor) \($f) \($grp | length)");

# The fix card (harness/fix-card's fix-card.jsonl, slurped): links down,
# kernels across, each cell its state with the evidence on hover and below.
def card_class: {"fixed": "PASS", "missing": "FAIL", "open upstream": "FAIL",
  "not seen": "SKIP", "unknown": "BROKEN"}[.] // "BROKEN";
def html_card:
  (map(.kernel) | unique) as $ks
  | (reduce .[] as $c ({}; .[$c.kernel] = ($c.kernel_name // $c.kernel))) as $kn
  | (reduce .[].link as $x ([]; if index([$x]) then . else . + [$x] end)) as $links
  | . as $all
  | "<table class=\"matrix\"><tr><th>link</th><th>fix</th>"
    + ($ks | map("<th data-kernel=\"\(esc)\">\($kn[.] | esc)</th>") | join("")) + "</tr>"
    + ([$links[] as $l | [$all[] | select(.link == $l)] as $row
        | "<tr><td>\($l | esc)</td><td><code>\($row[0].fix | esc)</code> \($row[0].subject | esc)</td>"
          + ([$ks[] as $k | $row[] | select(.kernel == $k)
              | "<td class=\"v-\(.state | card_class)\" title=\"\(.evidence | esc)\">\(.state | esc)</td>"]
             | join(""))
          + "</tr>"] | join(""))
    + "</table><ul>"
    + ([.[] | select(.state != "unknown" or (.evidence | test("^not run|^no reproducer") | not))
        | "<li>\(.link | esc) on \(.kernel_name // .kernel | esc): <b>\(.state | esc)</b>: \(.evidence | esc)</li>"]
       | join(""))
    + "</ul>";

# SKIP and BROKEN cases grouped by reason (figures in a reason made N), so a
# wall of SKIPs reads as the few reasons behind it.
def html_reasons:
  map(select(.verdict == "SKIP" or .verdict == "BROKEN"))
  | if length == 0 then "<p>None.</p>" else
    "<table class=\"matrix\"><tr><th>verdict</th><th>cases</th><th>reason</th><th>e.g.</th></tr>"
    + ([group_by([.verdict, (.reason // "none" | gsub("\\b[0-9]+\\b"; "N"))])[]
        | "<tr><td class=\"v-\(.[0].verdict)\">\(.[0].verdict)</td><td>\(length)</td><td>\(.[0].reason // "none" | gsub("\\b[0-9]+\\b"; "N") | esc)</td><td>\(.[0].case | esc)</td></tr>"]
       | join(""))
    + "</table>" end;
