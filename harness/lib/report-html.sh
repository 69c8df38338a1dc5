# shellcheck shell=bash
# report.html: one self-contained page (inline CSS and SVG, no script, no
# external asset) from a results directory. Sourced by harness/report after
# common.sh and results.sh. HTML fragments come from harness/lib/report.jq,
# heatmaps from gnuplot's SVG terminal.

# rpt_jq ARGS...: jq with the report library loaded.
rpt_jq() {
	jq -L "$DIOGAP_ROOT/harness/lib" "$@"
}

# rpt_inputs DIR TMP: TMP/results.jsonl (the run's cases: the combined file
# of a run-vm directory, or every kernel's file when there is none) and
# TMP/meta.json ({top: DIR/meta.json, kernels: {label: DIR/label/meta.json}}).
rpt_inputs() {
	local dir=$1 tmp=$2 f label kernels='{}'
	if [[ -s $dir/results.jsonl ]]; then
		cp "$dir/results.jsonl" "$tmp/raw.jsonl"
	else
		: >"$tmp/raw.jsonl"
		for f in "$dir"/*/results.jsonl; do
			[[ -s $f ]] && cat "$f" >>"$tmp/raw.jsonl"
		done
	fi
	[[ -s $tmp/raw.jsonl ]] || die "no results.jsonl with cases in $dir"
	# A run that died may have left a torn last line: report what is whole.
	jq -cR 'fromjson? | objects | select(.case and .kernel_label and .verdict)' \
		"$tmp/raw.jsonl" >"$tmp/results.jsonl"
	f=$(($(grep -c . "$tmp/raw.jsonl" || true) - $(grep -c . "$tmp/results.jsonl" || true)))
	((f == 0)) || warn "$dir: $f results.jsonl line(s) are not whole case records: left out"
	[[ -s $tmp/results.jsonl ]] || die "$dir: results.jsonl holds no case record"
	while IFS= read -r label; do
		f=$dir/$label/meta.json
		if [[ ! -f $f ]] || ! jq -e . "$f" >/dev/null 2>&1; then
			continue
		fi
		# shellcheck disable=SC2016 # jq code, not shell
		kernels=$(jq --arg l "$label" --slurpfile m "$f" --argjson b "$(rpt_built "$f")" \
			'.[$l] = ($m[0] | if $b then .kernel.built = $b else . end)' <<<"$kernels")
	done < <(jq -r .kernel_label "$tmp/results.jsonl" | awk '!seen[$0]++')
	if [[ -f $dir/meta.json ]] && jq -e . "$dir/meta.json" >/dev/null 2>&1; then
		jq --argjson k "$kernels" '{top: ., kernels: $k}' "$dir/meta.json" >"$tmp/meta.json"
	else
		jq -n --argjson k "$kernels" '{top: {note: "no meta.json in the results directory"}, kernels: $k}' \
			>"$tmp/meta.json"
	fi
}

# rpt_built KERNEL_META: what harness/build-kernel recorded about the kernel
# image (source, patches, fragments) when the image is one of its cached
# kernels and still the same file; else null.
rpt_built() {
	local img sum bm
	img=$(jq -r '.kernel.image // empty' "$1")
	bm=$(dirname "${img:-/nonexistent}")/meta.json
	[[ -n $img && -f $img && -f $bm ]] || { echo null; return 0; }
	sum=$(sha256sum "$img" | cut -d' ' -f1)
	jq -c --arg sum "$sum" --slurpfile k "$1" 'if $k[0].kernel.image_sha256 == $sum and .source then
		{source: .source.description, patches: [.patches[]?.path | split("/")[-1]],
		 fragments: [.fragments[]?.path | split("/")[-1]], command, built_at}
		else null end' "$bm" 2>/dev/null || echo null
}

# rpt_gnuplot_labels DATA AXIS: gnuplot tics "("a" 0, "b" 1)" from the
# "#x I LABEL" lines of the heatmap data (labels are [A-Za-z0-9._-] only).
rpt_gnuplot_labels() {
	awk -v a="#$2" '$1 == a { s = s (n++ ? ", " : "") "\"" $3 "\" " $2 }
		END { print "(" s ")"; print n }' "$1"
}

# rpt_heatmap JSONL LABEL N TMP: the FAIL-rate heatmap (size x queue depth)
# of one kernel as inline SVG, its ids prefixed so several can share a page.
rpt_heatmap() {
	local jsonl=$1 label=$2 n=$3 tmp=$4 data xt yt nx ny
	data=$tmp/heat-$n.dat
	# shellcheck disable=SC2016 # jq code, not shell
	rpt_jq -rs --arg k "$label" 'include "report"; heat_data($k)' "$jsonl" >"$data"
	if ! grep -q '^[0-9]' "$data"; then
		echo '<p>No PASS or FAIL case on this kernel: nothing to plot.</p>'
		return 0
	fi
	{ read -r xt; read -r nx; } < <(rpt_gnuplot_labels "$data" x)
	{ read -r yt; read -r ny; } < <(rpt_gnuplot_labels "$data" y)
	gnuplot >"$tmp/gnuplot-$n.log" 2>&1 <<-EOF || die "gnuplot failed: $(tail -n 3 "$tmp/gnuplot-$n.log")"
		set terminal svg size $((nx < 4 ? 440 : 160 + 70 * nx)),$((ny < 4 ? 270 : 110 + 40 * ny)) font "sans,11" background "white"
		set output "$tmp/heat-$n.svg"
		set xtics $xt nomirror
		set ytics $yt nomirror
		set xrange [-0.5:$nx - 0.5]
		set yrange [-0.5:$ny - 0.5]
		set cbrange [0:100]
		set palette defined (0 "#e8f5e9", 50 "#ffb74d", 100 "#c62828")
		set xlabel "size"
		set ylabel "queue depth"
		set cblabel "FAIL %"
		unset key
		plot "$data" using 1:2:(0.5):(0.5):3 with boxxyerror fc palette fs solid 1.0 border lc "white", \
			"" using 1:2:(sprintf("%d/%d FAIL", \$4, \$5)) with labels
	EOF
	# Drop the XML prolog; make the SVG's ids unique on the page.
	sed -e '/^<?xml/d' -e '/^<!DOCTYPE/d' -e "s/id='/id='h$n-/g; s/id=\"/id=\"h$n-/g" \
		-e "s/href='#/href='#h$n-/g; s/href=\"#/href=\"#h$n-/g; s/url(#/url(#h$n-/g" \
		-e 's/<svg /<svg class="heatmap" /' "$tmp/heat-$n.svg"
}

rpt_css() {
	cat <<-'EOF'
		body { font: 14px/1.4 sans-serif; margin: 1.5em; color: #222; }
		h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
		table { border-collapse: collapse; margin: .5em 0; }
		td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
		pre { white-space: pre-wrap; word-break: break-all; margin: 0; }
		.v-PASS { background: #c8e6c9; } .v-FAIL { background: #ef9a9a; }
		.v-BROKEN { background: #ffcc80; } .v-SKIP { background: #e0e0e0; }
		.cell a { color: inherit; text-decoration: none; display: block; }
		.chip { display: inline-block; padding: 0 5px; margin: 1px; border-radius: 3px;
		  border: 1px solid #0003; font-size: 12px; }
		.cell.empty { color: #999; }
		section.cases:target, div.gapmap:target, tr.case:target { outline: 3px solid #1565c0; }
		.gapmap { margin: 1em 0 2em; } .gapmap h3 { font-size: 1em; margin: .3em 0; }
		.gapsvg text { font: 11px sans-serif; fill: #333; }
		.g-file { fill: #eeeeee; stroke: #999; } .g-data { fill: #81c784; }
		.g-zero-hole { fill: #ffffff; stroke: #c62828; stroke-width: 1.5; }
		.g-zero-extent { fill: #c62828; } .g-zero { fill: #e57373; }
		.g-stale { fill: #6a1b9a; } .g-misplaced { fill: #ef6c00; } .g-garbage { fill: #000; }
		.g-excess { fill: #fdd835; } .g-short { fill: #bdbdbd; stroke: #000; stroke-dasharray: 2 2; }
		.g-res { fill: #00897b; }
		.g-pred { fill: #1565c0; } .g-predo { fill: none; stroke: #1565c0; stroke-width: 2; stroke-dasharray: 5 3; }
		.gap:not(.g-zero-hole):not(.g-zero-extent):not(.g-zero):not(.g-stale):not(.g-misplaced):not(.g-garbage) { fill: #795548; }
		.tick { stroke: #666; }
		td.from { max-width: 32em; word-break: break-all; }
		.legend span { display: inline-block; margin-right: 1em; }
		.legend i { display: inline-block; width: 14px; height: 10px; border: 1px solid #999; margin-right: 3px; }
		.rerun { background: #f5f5f5; padding: 4px; }
	EOF
}

rpt_legend() {
	local c t out='<p class="legend">'
	for c in data:'written data' zero-hole:'zeros, hole (no extent)' zero-extent:'zeros inside an extent' \
		zero:'zeros (hole or extent not known)' stale:'stale data' misplaced:'misplaced data' \
		garbage:'garbage' excess:'beyond the expected size' short:'missing: file too short' \
		res:'buffer pages resident at the write' pred:'predicted (a buggy kernel loses this)'; do
		t=${c#*:}
		c=${c%%:*}
		out+="<span><svg width=\"16\" height=\"12\"><rect class=\"g-$c\" x=\"1\" y=\"1\" width=\"14\" height=\"10\"/></svg>$t</span>"
	done
	echo "$out</p>"
}

# rpt_html DIR: write DIR/report.html (through a temporary file).
rpt_html() {
	local dir=$1 tmp label n=0 title
	tmp=$(mktemp -d)
	on_exit rm -rf "$tmp"
	rpt_inputs "$dir" "$tmp"
	title="diogap report: $(basename "$(realpath "$dir")")"
	{
		echo '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
		printf '<title>%s</title><style>\n' "$(jq -rn --arg t "$title" '$t | @html')"
		rpt_css
		echo '</style></head><body>'
		printf '<h1>%s</h1><p>Generated %s by harness/report (diogap %s).</p>\n' \
			"$(jq -rn --arg t "$title" '$t | @html')" "$(date -u +%FT%TZ)" "$(project_commit)"
		if [[ -s $dir/fix-card.jsonl ]]; then
			echo '<h2 id="fix-card">Fix card</h2><p>Which links of the fix chain (configs/chain.conf) each kernel has: <i>fixed</i> (every case PASSed), <i>missing</i> (FAILed with the link&#39;s signature), <i>open upstream</i> (the same, no fix exists), <i>not seen</i>, <i>unknown</i> (SKIP, BROKEN, not run).</p>'
			rpt_jq -rs 'include "report"; html_card' "$dir/fix-card.jsonl"
		fi
		echo '<h2 id="summary">Summary</h2>'
		# shellcheck disable=SC2016 # jq code, not shell
		rpt_jq -rs --slurpfile m "$tmp/meta.json" 'include "report"; html_summary($m[0])' "$tmp/results.jsonl"
		echo '<h2 id="matrix-h">Verdict matrix</h2><p>Kernels × reproducer × fault pattern; a cell lists its cases.</p>'
		rpt_jq -rs 'include "report"; html_matrix' "$tmp/results.jsonl"
		echo '<h2 id="heatmaps">FAIL rate by size and queue depth</h2><p>Cells read FAIL/cases'
		echo '(PASS and FAIL cases only); queue depth <i>sync</i> is the reproducers without io_uring.</p>'
		while IFS= read -r label; do
			n=$((n + 1))
			# shellcheck disable=SC2016 # jq code, not shell
			printf '<h3>%s</h3>\n' "$(rpt_jq -rs --arg k "$label" 'include "kernel-name"; kernel_names[$k] | @html' \
				"$tmp/results.jsonl")"
			rpt_heatmap "$tmp/results.jsonl" "$label" "$n" "$tmp"
		done < <(jq -r .kernel_label "$tmp/results.jsonl" | awk '!seen[$0]++')
		echo '<h2 id="failures">Gap maps of the FAIL cases</h2>'
		rpt_legend
		rpt_jq -rs 'include "report"; html_failures' "$tmp/results.jsonl"
		echo '<h2 id="reasons">SKIP and BROKEN by reason</h2>'
		rpt_jq -rs 'include "report"; html_reasons' "$tmp/results.jsonl"
		echo '<h2 id="broken">BROKEN cases and kernel splats</h2>'
		rpt_jq -rs 'include "report"; html_broken' "$tmp/results.jsonl"
		echo '<h2 id="cases">Cases by matrix cell</h2>'
		rpt_jq -rs 'include "report"; html_cells' "$tmp/results.jsonl"
		echo '<h2 id="timings">Timings</h2>'
		# shellcheck disable=SC2016 # jq code, not shell
		rpt_jq -rs --slurpfile m "$tmp/meta.json" 'include "report"; html_timings($m[0])' "$tmp/results.jsonl"
		echo '<h2 id="environment">Environment</h2>'
		# shellcheck disable=SC2016 # jq code, not shell
		rpt_jq -rn --slurpfile m "$tmp/meta.json" 'include "report"; html_env($m[0])'
		echo '</body></html>'
	} >"$tmp/report.html"
	mv "$tmp/report.html" "$dir/report.html"
}
