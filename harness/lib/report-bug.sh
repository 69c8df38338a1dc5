# shellcheck shell=bash
# bug-report.txt and bug-report.tar.gz for one case of a results directory:
# plain text for a mail to linux-btrfs, and what a maintainer needs to rerun
# it. Sourced by harness/report after report-html.sh (uses rpt_inputs, rpt_jq).

# shellcheck source=harness/lib/repro-meta.sh
. "$DIOGAP_ROOT/harness/lib/repro-meta.sh"

# rpt_pick JSONL CASE KERNEL: the chosen case's results line: CASE (on
# KERNEL) when given, preferring a FAIL; else the first FAIL.
rpt_pick() {
	local jsonl=$1 id=$2 kernel=$3 line
	# shellcheck disable=SC2016 # jq code, not shell
	line=$(jq -c --arg id "$id" --arg k "$kernel" \
		'select(($id == "" or .case == $id) and ($k == "" or .kernel_label == $k))' "$jsonl" |
		jq -cs 'sort_by(if .verdict == "FAIL" then 0 else 1 end) | .[0] // empty')
	if [[ -z $line ]]; then
		[[ -n $id$kernel ]] && die "no case ${id:-*} on kernel ${kernel:-*} in these results"
		die "no case in these results"
	fi
	[[ -n $id ]] || [[ $(jq -r .verdict <<<"$line") == FAIL ]] ||
		die "no FAIL case in these results (name one with --case ID)"
	[[ $(jq -r .verdict <<<"$line") == FAIL ]] ||
		warn "case $(jq -r .case <<<"$line") is $(jq -r .verdict <<<"$line"), not FAIL"
	printf '%s\n' "$line"
}

# rpt_hints REPRO: the reproducer's metadata (repro-meta.sh) as sentences
# for the report.
rpt_hints() {
	local sha subject n=0 tests note
	while IFS=$'\t' read -r sha subject; do
		n=$((n + 1))
		echo "  This kernel may be missing fix $sha (\"$subject\")."
	done < <(repro_field "$1" fixes)
	while IFS=$'\t' read -r sha subject; do
		n=$((n + 1))
		echo "  The bug came with $sha (\"$subject\") (kernels since then lack the fix until it is applied)."
	done < <(repro_field "$1" introduced_by)
	tests=$(repro_field "$1" fstests)
	[[ -z $tests ]] || { n=$((n + 1)); echo "  fstests $tests tests the same bug."; }
	note=$(repro_field "$1" note)
	[[ -z $note ]] || { n=$((n + 1)); echo "  Note: $note."; }
	((n > 0)) || echo "  ($1 names no fix, introducing commit or fstests test)"
}

# rpt_hexpair GOT WANT: 512 bytes read back next to what they should be,
# 16 bytes a line, "!" on lines that differ, "*" for repeats of the line
# above (as hexdump does). GOT/WANT: hex strings.
rpt_hexpair() {
	awk -v g="$1" -v w="$2" 'function grp(s, o,   i, r) {
			for (i = 0; i < 4; i++) r = r (i ? " " : "") substr(s, o + 8 * i + 1, 8)
			return r }
		BEGIN {
			printf "  offset %-35s   %s\n", "read back", (w == "" ? "" : "should hold")
			for (o = 0; o < length(w) || o < length(g); o += 32) {
				a = grp(g, o); b = grp(w, o)
				if (o > 0 && a == pa && b == pb) { if (!star++) print "  *"; continue }
				star = 0; pa = a; pb = b
				if (w == "") printf "  %04x   %s\n", o / 2, a
				else printf "%s %04x   %-35s | %s\n", (a == b ? " " : "!"), o / 2, a, b
			}
		}'
}

# rpt_sector LINE: the first bad sector, from the reproducer's JSON.
rpt_sector() {
	local line=$1 off cls got want
	IFS=$'\t' read -r off cls got want < <(jq -r '[.runs[]? | objects
		| (.first_bad // .first_bad_sector) | objects][0] // {}
		| [.offset // "", .class // "", .got // "", .want // ""] | @tsv' <<<"$line")
	if [[ -z $off ]]; then
		IFS=$'\t' read -r off cls < <(rpt_jq -r 'include "report";
			case_gaps | min_by(.s) // {} | [.s // "", .cls // ""] | @tsv' <<<"$line")
	fi
	[[ -n $off ]] || { echo "  No bad sector: the data read back matched (see sizes above)."; return 0; }
	case "$cls" in
	zero-hole) cls="zeros, a hole" ;;
	zero-extent) cls="zeros inside an extent" ;;
	esac
	echo "  First bad sector at file offset $off ($cls):"
	[[ $got =~ ^[0-9a-fA-F]+$ ]] || got=''
	[[ $want =~ ^[0-9a-fA-F]+$ ]] || want=''
	if [[ -n $got && -n $want ]]; then
		rpt_hexpair "$got" "$want"
	elif [[ -n $got ]]; then
		echo "  (what it should hold was not recorded by this reproducer version)"
		rpt_hexpair "$got" ""
	elif [[ $cls == zero* ]]; then
		echo "  It reads back as 512 zero bytes (that is what the class zero means); it should"
		echo "  hold the reproducer's pattern: a header naming offset $off, then filler. This"
		echo "  reproducer version records no sector bytes, so no hexdump."
	else
		echo "  (the sector's bytes were not recorded by this reproducer version)"
	fi
}

# rpt_bug_text LINE META DIR: the text of bug-report.txt.
rpt_bug_text() {
	local line=$1 meta=$2 dir=$3 repro label
	repro=$(jq -r .repro <<<"$line")
	label=$(jq -r .kernel_label <<<"$line")
	rpt_jq -r --slurpfile m "$meta" -f "$DIOGAP_ROOT/harness/lib/report-bug.jq" <<<"$line"
	echo
	echo "First bad sector"
	rpt_sector "$line"
	echo
	echo "Kernel log during this case"
	{
		jq -r '.splats[]?' <<<"$line"
		cat "$dir/dmesg.txt" "$dir/$label/dmesg.txt" 2>/dev/null |
			grep -F "[$(jq -r .case <<<"$line")] " | head -n 60 || true
	} | awk '!seen[$0]++ { print "  " $0; n++ } END { if (!n) print "  (nothing: no kernel message, no splat)" }'
	echo
	echo "Hints"
	rpt_hints "$repro"
	echo
	echo "Rerun"
	echo "  bug-report.tar.gz holds the reproducer's source (repro/), its static"
	echo "  binary (bin/$repro), the sweep, results.jsonl and the console log. As root,"
	echo "  on a scratch btrfs mounted at MNT: bin/$repro <options above> MNT"
	echo "  (the command line above names the directory the harness used)."
}

# rpt_sweep_file DIR META LABEL: the run's sweep file, if it can be found.
rpt_sweep_file() {
	local dir=$1 meta=$2 label=$3 f
	for f in "$dir/sweep.conf" "$dir/$label/sweep.conf" \
		$(jq -r --arg l "$label" '.top.sweep // empty, .kernels[$l].sweep // empty' "$meta"); do
		[[ $f == /* ]] || f=$DIOGAP_ROOT/$f
		[[ -f $f && -r $f ]] && { echo "$f"; return 0; }
	done
	return 1
}

# rpt_bundle DIR TMP LINE: DIR/bug-report.tar.gz.
rpt_bundle() {
	local dir=$1 tmp=$2 line=$3 repro label name stage f
	repro=$(jq -r .repro <<<"$line")
	label=$(jq -r .kernel_label <<<"$line")
	name=diogap-bug-$(jq -r '.case | gsub("[^A-Za-z0-9._-]"; "_")' <<<"$line")
	stage=$tmp/$name
	mkdir -p "$stage/repro/lib" "$stage/bin"
	cp "$dir/bug-report.txt" "$tmp/results.jsonl" "$stage/"
	cp "$tmp/meta.json" "$stage/meta.json"
	[[ -r $DIOGAP_ROOT/repro/$repro.c ]] && cp "$DIOGAP_ROOT/repro/$repro.c" "$stage/repro/"
	cp "$DIOGAP_ROOT"/repro/lib/* "$stage/repro/lib/" 2>/dev/null || true
	[[ -r $DIOGAP_ROOT/Makefile ]] && cp "$DIOGAP_ROOT/Makefile" "$stage/"
	if [[ -x $DIOGAP_BUILD/$repro ]]; then
		cp "$DIOGAP_BUILD/$repro" "$stage/bin/"
	else
		warn "no built reproducer $DIOGAP_BUILD/$repro: the bundle has its source only"
	fi
	if f=$(rpt_sweep_file "$dir" "$tmp/meta.json" "$label"); then
		cp "$f" "$stage/sweep.conf"
	else
		warn "the run's sweep file was not found: not in the bundle"
	fi
	if [[ -s $tmp/repro.c ]]; then
		cp "$tmp/repro.c" "$stage/repro.c"
		cp -r "$tmp/fstests" "$stage/fstests-draft"
	fi
	[[ -s $dir/minimize.json ]] && cp "$dir/minimize.json" "$dir/minimize.md" "$stage/" 2>/dev/null
	for f in console.log dmesg.txt; do
		[[ -f $dir/$f ]] && cp "$dir/$f" "$stage/$f"
		[[ -f $dir/$label/$f ]] && cp "$dir/$label/$f" "$stage/$label-$f"
	done
	tar -C "$tmp" -czf "$tmp/bundle.tar.gz" "$name"
	mv "$tmp/bundle.tar.gz" "$dir/bug-report.tar.gz"
}

# rpt_minimized DIR LINE: DIR/minimize.json when it minimized this case.
rpt_minimized() {
	local m=$1/minimize.json
	[[ -s $m ]] || return 1
	jq -e --argjson c "$2" '.original.case == $c.case and .kernel.label == $c.kernel_label' \
		"$m" >/dev/null 2>&1 || return 1
	echo "$m"
}

# rpt_kernel_built DIR LABEL: "SOURCE + PATCH..." when the case's kernel is
# a harness/build-kernel image (its meta.json beside the bzImage), else "".
rpt_kernel_built() {
	local img bm
	img=$(jq -r '.kernel.image // empty' "$1/$2/meta.json" 2>/dev/null) || true
	bm=$(dirname -- "${img:-/nonexistent/x}")/meta.json
	[[ -n $img && -s $bm ]] || return 0
	jq -r '"\(.source.description // .source.path // "?")"
		+ ([.patches[]? | (.path? // .) | tostring | split("/") | last] | map(" + " + .) | join(""))' \
		"$bm" 2>/dev/null || true
}

# rpt_standalone_case DIR LINE [MINIMIZE_JSON]: the case repro.c
# reproduces, in the form harness/lib/standalone.sh takes: the minimized one
# when there is one, else the case itself.
rpt_standalone_case() {
	local dir=$1 line=$2 m=${3:-} built
	built=$(rpt_kernel_built "$dir" "$(jq -r .kernel_label <<<"$line")")
	if [[ -n $m ]]; then
		jq -c --argjson c "$line" --arg b "$built" '.result + {case: "\($c.case) (minimized)",
			kernel: $c.kernel, kernel_label: $c.kernel_label, kernel_built: $b,
			signature: .signature}' "$m"
	else
		jq -c -L "$DIOGAP_ROOT/harness/lib" --arg b "$built" \
			'include "signature"; . + {signature: dg_signature, kernel_built: $b}' <<<"$line"
	fi
}

# rpt_min_text MINIMIZE_JSON BUILD: the minimized case, for the top of the
# report; BUILD: repro.c's build command (its "Build:" line).
rpt_min_text() {
	jq -r --arg build "$2" '"Minimized case (harness/minimize; the original case follows below)",
	  "  command:  \(.result.rerun)",
	  "  mount -o \(.result.mount); FAIL signature \(.signature); FAILed \(.result.fail) of \(.result.runs) runs"
	    + " (rate >= \(.result.rate_lower * 100 | floor)% at \(.confidence * 100)% confidence)",
	  "  smaller than the original in: \(.smaller_in | join(", "))",
	  "  repro.c (in the bundle and next to this report) is this case as one C file:",
	  "  \($build) && ./repro /mnt/scratch   (exit 1 = FAIL)",
	  "", "Original case", ""' "$1"
}

# rpt_standalone DIR TMP LINE [MINIMIZE_JSON]: DIR/repro.c and the fstests
# draft (TMP/fstests), unless the case has no standalone template.
rpt_standalone() {
	local dir=$1 tmp=$2 c
	c=$(rpt_standalone_case "$dir" "$3" "${4:-}")
	if (sa_emit "$c" "$tmp/repro.c" repro.c) && (sa_fstests "$c" "$tmp/repro.c" "$tmp/fstests"); then
		cp "$tmp/repro.c" "$dir/repro.c"
	else
		warn "no standalone repro.c for this case (see above)"
		rm -f "$tmp/repro.c" "$dir/repro.c"
		rm -rf "$tmp/fstests"
	fi
}

# rpt_bug DIR CASE KERNEL: write DIR/bug-report.txt and DIR/bug-report.tar.gz
# (and DIR/repro.c).
rpt_bug() {
	local dir=$1 tmp line min='' build
	tmp=$(mktemp -d)
	on_exit rm -rf "$tmp"
	rpt_inputs "$dir" "$tmp"
	line=$(rpt_pick "$tmp/results.jsonl" "$2" "$3")
	min=$(rpt_minimized "$dir" "$line") || min=''
	rpt_bug_text "$line" "$tmp/meta.json" "$dir" >"$tmp/bug-report.body"
	rpt_standalone "$dir" "$tmp" "$line" "$min"
	build=$(sed -n 's/^ \* Build: *//p' "$tmp/repro.c" 2>/dev/null | head -n 1)
	{
		head -n 2 "$tmp/bug-report.body"
		[[ -z $min ]] || rpt_min_text "$min" "${build:-cc -O2 -static -o repro repro.c}"
		tail -n +3 "$tmp/bug-report.body"
	} >"$tmp/bug-report.txt"
	mv "$tmp/bug-report.txt" "$dir/bug-report.txt"
	rpt_bundle "$dir" "$tmp" "$line"
}
