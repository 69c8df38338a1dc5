#!/usr/bin/env bash
# Tests of harness/report on results of real runs: run-vm on a kernel with the
# partial-DIO bug (configs/patches/6.1/partial-dio-hole.patch) and on stock
# 6.1 (both built by harness/build-kernel, cached), with a sweep that gives
# PASS, FAIL, BROKEN and SKIP cases; and run-local on the running kernel.
# report.html is opened in headless Chromium and checked from the dumped DOM.
# DIOGAP_TEST_BAD_KERNEL / DIOGAP_TEST_STOCK_KERNEL: another pair of kernels.
# Arguments: the parts to run (real html bug rerun escape torn local errors
# labels; default all; html, bug, rerun, escape and torn read real's run).
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"

REPORT=$DIOGAP_ROOT/harness/report
FRAG=$DIOGAP_ROOT/configs/kernel/minimal-btrfs.config
BUGPATCH=$DIOGAP_ROOT/configs/patches/6.1/partial-dio-hole.patch
export DIOGAP_SCRATCH=${DIOGAP_SCRATCH:-/var/tmp/diogap-test-report}
T='' RUN='' BAD='' STOCK='' BADL='' STOCKL=''
FILEFIXED='.params.buffer != "memfd" and .params["fixed-buffers"] == true'

# The sweep of the two-kernel run. dio-partial-write at offset 512 is not
# DIO-aligned: the reproducer refuses it (BROKEN). Fixed buffers backed by a
# file on the btrfs under test (buffer = file) cannot be registered with
# io_uring: SKIP. fault=first on the buggy kernel: FAIL.
SWEEP_TEXT='name = report-test
repro = dio-partial-write dio-uring-write
size = 1M
fault = first all
buffer = memfd
engine = psync
iterations = 1
timeout = 60
image_size = 256M
mount = defaults
dio-partial-write.offset = 0 512
dio-uring-write.fault = first
dio-uring-write.chunk = 256K
dio-uring-write.qd = 4
dio-uring-write.buffer = memfd file
dio-uring-write.fixed_buffers = 0 1'

setup() {
	need_root
	ensure_pkgs jq gnuplot-nox chromium libxml2-utils
	T=$(mktemp -d /var/tmp/diogap-t-report.XXXXXX)
	[[ -n ${DIOGAP_TEST_KEEP:-} ]] || on_exit rm -rf "$T"
	make -s -C "$DIOGAP_ROOT" reproducers
	printf '%s\n' "$SWEEP_TEXT" >"$T/report-test.conf"
}

# setup_kernels: the pair of kernels the run-vm parts need.
setup_kernels() {
	# Another pair of kernels (any run-vm --kernel spec) can be given.
	BAD=${DIOGAP_TEST_BAD_KERNEL:-}
	STOCK=${DIOGAP_TEST_STOCK_KERNEL:-}
	[[ -n $BAD ]] || BAD=$("$DIOGAP_ROOT/harness/build-kernel" --config "$FRAG" --patch "$BUGPATCH") ||
		die "building the partial-dio-hole kernel failed"
	[[ -n $STOCK ]] || STOCK=$("$DIOGAP_ROOT/harness/build-kernel" --config "$FRAG") ||
		die "building the stock 6.1 kernel failed"
}

# chrome ARGS...: headless Chromium with a fresh profile.
chrome() {
	local prof
	prof=$(mktemp -d "$T/chrome.XXXXXX")
	timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$prof" "$@" 2>>"$T/chrome.log"
}

# xp FILE XPATH: an XPath value from an HTML file.
xp() {
	xmllint --html --xpath "$2" "$1" 2>/dev/null || true
}

# cell DOM KERNEL REPRO FAULT ATTR: one attribute of a verdict matrix cell.
cell() {
	xp "$1" "string(//table[@id='matrix']//td[@data-kernel='$2' and @data-repro='$3' and @data-fault='$4']/@$5)"
}

# verdict_where RESULTS KERNEL JQ_COND: the verdicts of the cases matching
# JQ_COND on KERNEL, space separated.
verdict_where() {
	jq -r --arg k "$2" "select(.kernel_label == \$k and ($3)) | .verdict" "$1" | xargs
}

test_real_run() {
	local rc=0 r
	RUN=$T/run
	BADL=partial-dio-hole STOCKL=stock
	"$DIOGAP_ROOT/harness/run-vm" --kernel "$BAD" --label "$BADL" --kernel "$STOCK" --label "$STOCKL" \
		--sweep "$T/report-test.conf" --out "$RUN" >"$T/run-vm.log" 2>&1 || rc=$?
	check_eq "run-vm on a bad and a stock kernel exits 1 (a FAIL)" 1 "$rc"
	r=$RUN/results.jsonl
	check_eq "bad kernel: dio-partial-write fault=first is FAIL" FAIL \
		"$(verdict_where "$r" "$BADL" '.repro == "dio-partial-write" and .params.fault == "first" and .params.offset == "0"')"
	check_eq "stock kernel: dio-partial-write fault=first is PASS" PASS \
		"$(verdict_where "$r" "$STOCKL" '.repro == "dio-partial-write" and .params.fault == "first" and .params.offset == "0"')"
	check_eq "an unaligned offset is BROKEN (both kernels, both faults)" "BROKEN BROKEN BROKEN BROKEN" \
		"$(verdict_where "$r" "$BADL" '.params.offset == "512"') $(verdict_where "$r" "$STOCKL" '.params.offset == "512"')"
	check_eq "file-backed fixed buffers are SKIP (both kernels)" "SKIP SKIP" \
		"$(verdict_where "$r" "$BADL" "$FILEFIXED") $(verdict_where "$r" "$STOCKL" "$FILEFIXED")"
	check_eq "bad kernel: io_uring from a memfd is FAIL" FAIL \
		"$(verdict_where "$r" "$BADL" '.repro == "dio-uring-write" and .params.buffer == "memfd" and .params["fixed-buffers"] != true')"
}

# test_html: report.html of the two-kernel run, read back through Chromium.
test_html() {
	local rc=0 html=$RUN/report.html dom=$T/dom.html k repro fault want got n id
	"$REPORT" "$RUN" >"$T/report.log" 2>&1 || rc=$?
	check_eq "harness/report exits 0" 0 "$rc"
	check "report.html written" test -s "$html"
	check "summary.md refreshed" grep -q '^| kernel |' "$RUN/summary.md"
	check "no external reference (src/href/url to a network)" \
		not_grep -Eiq '(src|href)=["'"'"']?(https?:|//)|url\((https?:|//)|@import|<script' "$html"
	chrome --dump-dom "file://$html" >"$dom" || true
	check "Chromium dumped the DOM" grep -q 'id="matrix"' "$dom"
	# Every (kernel, reproducer, fault) of the results is a matrix cell with
	# the worst verdict and the counts results.jsonl has.
	n=0
	while IFS=$'\t' read -r k repro fault want; do
		n=$((n + 1))
		got=$(cell "$dom" "$k" "$repro" "$fault" data-verdict)
		got+=" $(cell "$dom" "$k" "$repro" "$fault" data-pass)/$(cell "$dom" "$k" "$repro" "$fault" data-fail)"
		got+="/$(cell "$dom" "$k" "$repro" "$fault" data-broken)/$(cell "$dom" "$k" "$repro" "$fault" data-skip)"
		check_eq "matrix cell $k $repro $fault" "$want" "$got"
	done < <(jq -rs 'group_by([.kernel_label, .repro, (.params.fault // "-")])[]
		| def n($v): map(select(.verdict == $v)) | length;
		[.[0].kernel_label, .[0].repro, (.[0].params.fault // "-"),
		 ((map(.verdict) | if index(["FAIL"]) then "FAIL" elif index(["BROKEN"]) then "BROKEN"
		   elif index(["PASS"]) then "PASS" else "SKIP" end)
		  + " \(n("PASS"))/\(n("FAIL"))/\(n("BROKEN"))/\(n("SKIP"))")] | @tsv' "$RUN/results.jsonl")
	check_eq "as many matrix cells as kernel x reproducer x fault groups" "$n" \
		"$(xp "$dom" "count(//table[@id='matrix']//td[@data-verdict])")"
	check "the matrix shows all four verdicts" test \
		"$(xp "$dom" "count(//table[@id='matrix']//td[@data-verdict='FAIL'])")" -gt 0 -a \
		"$(xp "$dom" "count(//table[@id='matrix']//td[@data-broken!='0'])")" -gt 0 -a \
		"$(xp "$dom" "count(//table[@id='matrix']//td[@data-skip!='0'])")" -gt 0 -a \
		"$(xp "$dom" "count(//table[@id='matrix']//td[@data-pass!='0'])")" -gt 0
	for id in $(xp "$dom" "//table[@id='matrix']//td/a/@href" | grep -o 'cell-[0-9-]*'); do
		[[ $(xp "$dom" "count(//section[@id='$id']//tr[@class='case'])") -gt 0 ]] || break
		id=ok
	done
	check_eq "every matrix cell anchors to its case list" ok "$id"
	# Every FAIL has a gap map with at least one gap drawn.
	n=0
	while IFS=$'\t' read -r k id; do
		n=$((n + 1))
		check "gap map for FAIL $id on $k" test "$(xp "$dom" "count(//div[@class='gapmap' and @data-kernel='$k' \
			and @data-case='$id']//*[local-name()='rect' and contains(@class, 'gap ')])")" -gt 0
	done < <(jq -r 'select(.verdict == "FAIL") | [.kernel_label, .case] | @tsv' "$RUN/results.jsonl")
	check_eq "one gap map per FAIL" "$n" "$(xp "$dom" "count(//div[@class='gapmap'])")"
	check_eq "every BROKEN case is listed" "$(jq -s 'map(select(.verdict == "BROKEN")) | length' "$RUN/results.jsonl")" \
		"$(xp "$dom" "count(//table[@id='broken-list']//td[.='BROKEN'])")"
	check_eq "each with its reason" 0 "$(xp "$dom" "count(//table[@id='broken-list']//tr[td[3]='BROKEN' and normalize-space(td[4])=''])")"
	check_eq "a heatmap per kernel" 2 "$(xp "$dom" "count(//*[local-name()='svg' and contains(@class, 'heatmap')])")"
	check "matrix: each kernel named with its arch and page size ($BADL (x86_64, 4K pages))" test \
		"$(xp "$dom" "string(//table[@id='matrix']//th[@data-kernel='$BADL'])")" = "$BADL (x86_64, 4K pages)" -a \
		"$(xp "$dom" "string(//table[@id='matrix']//th[@data-kernel='$STOCKL'])")" = "$STOCKL (x86_64, 4K pages)"
	check "timings show the VM boot time" test -n "$(xp "$dom" "string(//table[@class='timings']//tr[@data-kernel='$BADL']/td[2])" | grep -v '^-$')"
	check "environment shows the qemu command line" grep -q 'qemu-system-x86_64 ' "$dom"
	chrome --window-size=1280,2200 --screenshot="$RUN/report.png" "file://$html" >/dev/null || true
	check "screenshot saved in the results dir" test -s "$RUN/report.png"
}

not_grep() { ! grep "$@"; }

# test_bug: the bug report of the first FAIL, and its bundle.
test_bug() {
	local rc=0 txt=$RUN/bug-report.txt line repro rerun sha s e list
	"$REPORT" --bug "$RUN" >"$T/bug.log" 2>&1 || rc=$?
	check_eq "harness/report --bug exits 0" 0 "$rc"
	line=$(jq -cs 'map(select(.verdict == "FAIL"))[0] // empty' "$RUN/results.jsonl" 2>/dev/null || true)
	[[ -n $line ]] || { not_ok "the run has a FAIL to report"; return 0; }
	repro=$(jq -r .repro <<<"$line")
	rerun=$(jq -r '[.runs[] | select(.verdict == "FAIL") | .rerun][0]' <<<"$line")
	check "the bug report has the rerun command" grep -qF -- "$rerun" "$txt"
	check "it names the case" grep -qF "$(jq -r .case <<<"$line")" "$txt"
	check "it names the kernel release" grep -qF "release:      $(jq -r .kernel <<<"$line")" "$txt"
	while read -r s e; do
		check "it lists the gap [$s, $e)" grep -qF "[$s, $e)" "$txt"
	done < <(jq -r '.runs[].gaps[] | "\(.[0]) \(.[1])"' <<<"$line")
	sha=$("$DIOGAP_BUILD/$repro" --describe --json | jq -r '.fixes[0].sha // empty' || true)
	check "$repro's metadata names a fix" test -n "$sha"
	check "it hints at the missing fix $sha" grep -q "may be missing fix $sha" "$txt"
	check "it has a subject line" grep -q '^Subject: \[BUG\] btrfs: ' "$txt"
	check "it shows the first bad sector" grep -q 'First bad sector at file offset' "$txt"
	list=$(tar tzf "$RUN/bug-report.tar.gz" 2>/dev/null || true)
	for f in bug-report.txt "repro/$repro.c" repro/lib/diogap.h "bin/$repro" sweep.conf results.jsonl \
		"$BADL-console.log" Makefile; do
		check "the bundle holds $f" grep -q "^diogap-bug-[^/]*/$f\$" <<<"$list"
	done
}

# rerun_sweep CMDLINE: a one-case sweep from a reproducer command line.
rerun_sweep() {
	local -a w
	local i k
	read -r -a w <<<"$1"
	echo "repro = $(basename "${w[0]}")"
	echo "mount = defaults"
	echo "image_size = 256M"
	echo "timeout = 60"
	for ((i = 1; i < ${#w[@]} - 1; i++)); do
		k=${w[i]#--}
		k=${k//-/_}
		case "$k" in
		size | offset | chunk | fault | buffer | engine | qd | hang_timeout | iterations)
			echo "$k = ${w[i + 1]}"; i=$((i + 1)) ;;
		fixed_buffers | async) echo "$k = 1" ;;
		seed | json) i=$((i + 1)) ;;
		esac
	done
}

# test_rerun: the bug report's command, run again on the same kernel, FAILs.
test_rerun() {
	local cmd rc=0
	cmd=$(sed -n 's/^  command:  //p' "$RUN/bug-report.txt" 2>/dev/null || true)
	[[ -n $cmd ]] || { not_ok "the bug report has a command to rerun"; return 0; }
	rerun_sweep "$cmd" >"$T/rerun.conf"
	"$DIOGAP_ROOT/harness/run-vm" --kernel "$BAD" --sweep "$T/rerun.conf" --out "$T/rerun" \
		>"$T/rerun.log" 2>&1 || rc=$?
	check_eq "the bug report's command on the same kernel FAILs again (exit 1)" 1 "$rc"
	check_eq "one case, FAIL" FAIL "$(jq -r .verdict "$T/rerun/results.jsonl" 2>/dev/null | xargs)"
}

# test_escape: text from results cannot become markup.
test_escape() {
	local dir=$T/esc dom=$T/esc-dom.html
	mkdir -p "$dir"
	jq -c 'if .verdict == "BROKEN" then .reason = "<img id=\"injected\" src=x>" else . end
		| if .verdict == "FAIL" then .case += "\"><b id=\"injected2\">x</b>" else . end' \
		"$RUN/results.jsonl" >"$dir/results.jsonl"
	cp "$RUN/meta.json" "$dir/"
	"$REPORT" "$dir" >/dev/null 2>&1
	chrome --dump-dom "file://$dir/report.html" >"$dom" || true
	check_eq "markup in results stays text" 0 "$(xp "$dom" "count(//*[@id='injected' or @id='injected2'])")"
	check "and shows escaped" grep -qF '&lt;img id=' "$dir/report.html"
}

# test_torn: a run that died mid-write leaves a torn last line; the report
# still shows every whole case.
test_torn() {
	local dir=$T/torn rc=0
	mkdir -p "$dir"
	{ cat "$RUN/results.jsonl"; head -c 300 "$RUN/results.jsonl"; } >"$dir/results.jsonl"
	"$REPORT" "$dir" >"$T/torn.log" 2>&1 || rc=$?
	check_eq "a torn results.jsonl still gives a report (exit 0)" 0 "$rc"
	check "and a warning" grep -q 'not whole case records' "$T/torn.log"
	check_eq "with every whole case in the matrix" "$(jq -s 'map(.verdict) | length' "$RUN/results.jsonl")" \
		"$(xp "$dir/report.html" "sum(//table[@id='matrix']//td/@data-pass) + sum(//table[@id='matrix']//td/@data-fail) \
			+ sum(//table[@id='matrix']//td/@data-broken) + sum(//table[@id='matrix']//td/@data-skip)")"
}

# test_local: a run-local directory (one kernel, flat layout).
test_local() {
	local out=$T/local dom=$T/local-dom.html rc=0
	"$DIOGAP_ROOT/harness/run-local" --sweep "$DIOGAP_ROOT/configs/sweeps/quick.conf" --out "$out" \
		>"$T/local.log" 2>&1 || true
	"$REPORT" "$out" >/dev/null 2>&1 || rc=$?
	check_eq "report of a run-local directory exits 0" 0 "$rc"
	chrome --dump-dom "file://$out/report.html" >"$dom" || true
	check_eq "one kernel column: local" local "$(xp "$dom" "string(//table[@id='matrix']//tr[1]/th[3])")"
	check_eq "a matrix cell per reproducer x fault" \
		"$(jq -rs 'map([.repro, .params.fault]) | unique | length' "$out/results.jsonl")" \
		"$(xp "$dom" "count(//table[@id='matrix']//td[@data-verdict])")"
	rc=0
	"$REPORT" --bug "$out" >"$T/nofail.log" 2>&1 || rc=$?
	if jq -se 'any(.verdict == "FAIL")' "$out/results.jsonl" >/dev/null; then
		check_eq "--bug on a run with a FAIL exits 0" 0 "$rc"
	else
		check_eq "--bug without a FAIL exits 2" 2 "$rc"
		check "and says so" grep -q 'no FAIL case' "$T/nofail.log"
	fi
}

test_errors() {
	local rc=0
	mkdir -p "$T/empty"
	"$REPORT" "$T/empty" >"$T/err.log" 2>&1 || rc=$?
	check_eq "a directory without results: exit 2" 2 "$rc"
	check "with a message" grep -q 'no results.jsonl' "$T/err.log"
	rc=0
	"$REPORT" --bogus "$T/empty" >/dev/null 2>&1 || rc=$?
	check_eq "an unknown option: exit 2" 2 "$rc"
}

# test_arch_labels: records of an arm64 guest with 64 KiB pages beside an
# x86_64 one (made up, the fields run-vm writes): every place that names a
# kernel (matrix, counts, timings, heatmap titles, case lists, gap maps, fix
# card) shows its label with arch and page size.
test_arch_labels() {
	local dir=$T/arch dom=$T/arch-dom.html k64='hole-64k (arm64, 64K pages)' k4='stock (x86_64, 4K pages)'
	mkdir -p "$dir"
	jq -nc '{case: "dio-partial-write.1M.first", kernel: "6.1.192", repro: "dio-partial-write",
		params: {size: "1M", fault: "first"}, mount: "defaults", elapsed_ms: 900, splats: []}
		| (. + {kernel_label: "hole-64k", arch: "arm64", page_size: 65536, verdict: "FAIL",
			reason: "zeros", gaps: [[0, 65536, "zero"]],
			runs: [{verdict: "FAIL", symptom: "data", iteration: 1, gaps: [[0, 65536, "zero"]],
				size_seen: 1048576, size_expected: 1048576}]}),
		  (. + {kernel_label: "stock", arch: "x86_64", page_size: 4096, verdict: "PASS", gaps: [],
			runs: [{verdict: "PASS", iteration: 1}]})' >"$dir/results.jsonl"
	"$DIOGAP_ROOT/harness/fix-card" "$dir" >/dev/null 2>&1 || true
	"$REPORT" "$dir" >"$T/arch.log" 2>&1 || true
	chrome --dump-dom "file://$dir/report.html" >"$dom" || true
	check_eq "matrix header: label, arch, page size" "$k64|$k4" \
		"$(xp "$dom" "string(//table[@id='matrix']//th[@data-kernel='hole-64k'])")|$(xp "$dom" "string(//table[@id='matrix']//th[@data-kernel='stock'])")"
	check_eq "counts and timings rows name it so" "$k64 $k64" \
		"$(xp "$dom" "string(//table[@class='counts']//tr[@data-kernel='hole-64k']/td[1])") $(xp "$dom" "string(//table[@class='timings']//tr[@data-kernel='hole-64k']/td[1])")"
	check "the heatmap's title, the case list and the gap map too" test \
		"$(xp "$dom" "count(//h3[normalize-space()='$k64'])")" = 1 -a \
		"$(xp "$dom" "count(//section[@class='cases']/h3[starts-with(., '$k64 ·')])")" = 1 -a \
		"$(xp "$dom" "count(//div[@class='gapmap' and @data-kernel='hole-64k']/h3[contains(., 'on $k64')])")" = 1
	check "the fix card's column too" test \
		"$(xp "$dom" "count(//th[@data-kernel='hole-64k' and normalize-space()='$k64'])")" -ge 2
}

main() {
	local part
	local -a parts=("$@")
	((${#parts[@]})) || parts=(real html bug rerun escape torn local errors labels)
	setup
	[[ " ${parts[*]} " != *" real "* ]] || setup_kernels
	for part in "${parts[@]}"; do
		case $part in
		real) test_real_run ;;
		html) test_html ;;
		bug) test_bug ;;
		rerun) test_rerun ;;
		escape) test_escape ;;
		torn) test_torn ;;
		local) test_local ;;
		errors) test_errors ;;
		labels) test_arch_labels ;;
		*) die "unknown part: $part (real html bug rerun escape torn local errors labels)" ;;
		esac
	done
	t_done
}

main "$@"
