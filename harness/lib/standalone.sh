# shellcheck shell=bash
# Standalone reproducers: one C file, libc only, from a template per
# reproducer family (configs/standalone/FAMILY.c.in) filled with one case's
# parameters; and the same program as an fstests draft (tests/generic/NNN,
# its golden output, src/). Sourced after common.sh, never run.
#
# A case is given as JSON, the form of a results.jsonl line:
#   {case, repro, mount, params: {size, fault, buffer, engine, chunk, offset,
#    ...}, kernel, kernel_label, signature, rerun}
# (harness/minimize writes its result in the same form).

# shellcheck source=harness/lib/repro-meta.sh
. "$DIOGAP_ROOT/harness/lib/repro-meta.sh"

SA_TEMPLATES=$DIOGAP_ROOT/configs/standalone

# sa_bytes SIZE: 1M -> 1048576 (K, M, G suffixes; plain bytes as they are).
sa_bytes() {
	local v=$1 n
	[[ $v =~ ^([0-9]+)([KMG]?)$ ]] || die "not a size: '$v'"
	n=${BASH_REMATCH[1]}
	case "${BASH_REMATCH[2]}" in
	K) n=$((n * 1024)) ;;
	M) n=$((n * 1024 * 1024)) ;;
	G) n=$((n * 1024 * 1024 * 1024)) ;;
	esac
	echo "$n"
}

# sa_family REPRO: the template family of a reproducer, "" when none.
sa_family() {
	case "$1" in
	dio-partial-write) echo partial-write ;;
	dio-append-write) echo append-write ;;
	dio-self-mmap-write) echo self-mmap-write ;;
	dio-uring-write) echo uring-write ;;
	dio-unstable-write) echo unstable-write ;;
	*) echo "" ;;
	esac
}

# sa_resident_expr FAULT: the C expression in p (page index) and pg (page
# size) that says whether buffer page p is resident; the same pages as
# repro/lib/fault.c picks. CHUNK is the template's macro.
sa_resident_expr() {
	local f=$1 item terms=() items=()
	case "$f" in
	none) echo 0 ;;
	all) echo 1 ;;
	first) echo '(p * pg + CHUNK - 1) / CHUNK * CHUNK < (p + 1) * pg' ;;
	stride:*) echo "p % ${f#stride:} == 0" ;;
	pages:*)
		IFS=, read -r -a items <<<"${f#pages:}"
		for item in "${items[@]}"; do
			if [[ $item == *-* ]]; then
				terms+=("(p >= ${item%-*} && p <= ${item#*-})")
			else
				terms+=("p == $item")
			fi
		done
		printf '%s' "${terms[0]}"
		for item in "${terms[@]:1}"; do printf ' || %s' "$item"; done
		echo
		;;
	*) return 1 ;;
	esac
}

# sa_fault_text FAULT: the residency in words.
sa_fault_text() {
	case "$1" in
	none) echo "no page" ;;
	all) echo "every page" ;;
	first) echo "the first page of each write call" ;;
	stride:*) echo "every ${1#stride:}th page from page 0" ;;
	pages:*) echo "pages ${1#pages:} only" ;;
	*) echo "$1" ;;
	esac
}

# sa_fix SIGNATURE REPRO: "SHA<TAB>SUBJECT" of the fix the kernel likely
# lacks: by the FAIL signature (a hole is the partial-DIO bug whichever
# reproducer saw it; EIO of the unstable-write reproducer is its checksum
# bug), from the reproducer's metadata (repro-meta.sh).
sa_fix() {
	local sig=$1 repro=$2 src=$2 nth=1 line
	case "$sig:$repro" in
	eio:dio-unstable-write) ;;          # its checksum bug: the first Fixes line
	copies:dio-unstable-write) nth=2 ;; # its duplication bug: the second
	hole:* | eio:*) src=dio-partial-write ;;
	size:*) src=dio-append-write ;;
	hang:*) src=dio-self-mmap-write ;;
	esac
	line=$(repro_field "$src" fixes 2>/dev/null | sed -n "${nth}p") || line=
	[[ -n $line ]] || { printf 'unknown\tunknown\n'; return 0; }
	printf '%s\n' "$line"
}

# sa_fill TEMPLATE VARS OUT: TEMPLATE with every @KEY@ replaced by its value
# from VARS (lines KEY<TAB>VALUE); a placeholder left over is an error.
sa_fill() {
	awk -F'\t' 'NR == FNR { v["@" $1 "@"] = substr($0, length($1) + 2); next }
		{
			out = ""; s = $0
			while (match(s, /@[A-Z_]+@/)) {
				k = substr(s, RSTART, RLENGTH)
				out = out substr(s, 1, RSTART - 1) (k in v ? v[k] : k)
				s = substr(s, RSTART + RLENGTH)
			}
			print out s
		}' "$2" FS='\n' "$1" >"$3.tmp"
	if grep -q '@[A-Z_]*@' "$3.tmp"; then
		die "template $1: placeholders left unfilled: $(grep -o '@[A-Z_]*@' "$3.tmp" | sort -u | tr '\n' ' ')"
	fi
	mv "$3.tmp" "$3"
}

# sa_vars CASE_JSON NAME: the placeholder values for a case.
sa_vars() {
	local c=$1 name=$2 repro size chunk offset fault buffer engine sig fix expr calls
	repro=$(jq -r .repro <<<"$c")
	size=$(sa_bytes "$(jq -r '.params.size // "1M"' <<<"$c")")
	chunk=$(jq -r '.params.chunk // empty' <<<"$c")
	chunk=$([[ -n $chunk ]] && sa_bytes "$chunk" || echo "$size")
	((chunk > 0 && chunk <= size)) || chunk=$size
	offset=$(sa_bytes "$(jq -r '.params.offset // "0"' <<<"$c")")
	fault=$(jq -r '.params.fault // "first"' <<<"$c")
	buffer=$(jq -r '.params.buffer // "memfd"' <<<"$c")
	[[ $buffer == memfd || $buffer == anon || $buffer == file ]] ||
		die "buffer '$buffer' cannot be made standalone (memfd, anon or file)"
	engine=$(jq -r '.params.engine // "psync"' <<<"$c")
	expr=$(sa_resident_expr "$fault") ||
		die "fault pattern '$fault' cannot be made standalone (minimize the case first)"
	sig=$(jq -r '.signature // ""' <<<"$c")
	fix=$(sa_fix "$sig" "$repro")
	calls=$(((size + chunk - 1) / chunk))
	printf 'NAME\t%s\n' "$name"
	printf 'SIZE\t%s\nCHUNK\t%s\nOFFSET\t%s\n' "$size" "$chunk" "$offset"
	printf 'BUFFER\t%s\nRESIDENT\t%s\n' "$buffer" "$expr"
	printf 'FAULT_TEXT\t%s\n' "$(sa_fault_text "$fault")"
	printf 'VECTORED\t%s\n' "$([[ $engine == pwritev ]] && echo 1 || echo 0)"
	printf 'WRITE_TEXT\t%s\n' "$calls write call$( ((calls > 1)) && echo s) of $chunk bytes$([[ $engine == pwritev ]] && echo ", pwritev")"
	printf 'KERNEL\t%s\n' "$(jq -r '"\(.kernel // "?") "
		+ (if (.kernel_built // "") != "" then "(\(.kernel_built))" else "(diogap label \(.kernel_label // "?"))" end)' <<<"$c")"
	printf 'FIX_SHA\t%s\nFIX_SUBJECT\t%s\n' "${fix%%$'\t'*}" "${fix#*$'\t'}"
	printf 'MOUNT\t%s\n' "$(jq -r '.mount // "defaults"' <<<"$c")"
	printf 'CASE\t%s\n' "$(jq -r '.case // "?"' <<<"$c")"
	printf 'RERUN\t%s\n' "$(jq -r '.rerun // "?" | gsub("\\*/"; "* /")' <<<"$c")"
	[[ $(jq -r '.params["fixed-buffers"] // false' <<<"$c") != true ]] ||
		die "fixed buffers cannot be made standalone (registered buffers never fault: minimize drops them)"
	printf 'QD\t%s\n' "$(jq -r '.params.qd // "1"' <<<"$c")"
	if [[ $(jq -r '.params.async // false' <<<"$c") == true ]]; then
		printf 'ASYNC\t1\nASYNC_TEXT\t, IOSQE_ASYNC\n'
	else
		printf 'ASYNC\t0\nASYNC_TEXT\t\n'
	fi
	printf 'ITERATIONS\t%s\n' "$(jq -r '.iterations // 1' <<<"$c")"
	printf 'HANG_TIMEOUT\t%s\n' "$(jq -r '.params["hang-timeout"] // "15" | tonumber | ceil' <<<"$c")"
}

# sa_emit CASE_JSON OUT [NAME]: OUT, the standalone C program for the case.
sa_emit() {
	local c=$1 out=$2 name=${3:-repro.c} family tpl vars
	family=$(sa_family "$(jq -r .repro <<<"$c")")
	[[ -n $family ]] || die "no standalone template for reproducer $(jq -r .repro <<<"$c")"
	tpl=$SA_TEMPLATES/$family.c.in
	[[ -r $tpl ]] || die "no template $tpl"
	if [[ $family == unstable-write ]] && jq -e '.mount // "" | test("nodatasum|nodatacow")' <<<"$c" >/dev/null; then
		die "unstable-write without data checksums FAILs by its mirror copies (raw devices): no standalone form"
	fi
	vars=$(mktemp)
	sa_vars "$c" "$name" >"$vars"
	sa_fill "$tpl" "$vars" "$out"
	rm -f "$vars"
}

# sa_fstests_desc FAMILY FAULT_TEXT SIGNATURE: the test's description.
sa_fstests_desc() {
	case "$1" in
	unstable-write)
		echo "# O_DIRECT writes from a buffer another thread keeps changing must read"
		echo "# back (EIO: csum failed) on btrfs with data checksums; btrfs without the"
		echo "# fix below stored checksums of one version of a page and data of another"
		echo "# (FAIL signature: $3)." ;;
	self-mmap-write)
		echo "# An O_DIRECT write whose source is a shared mapping of the same file range"
		echo "# ($2 resident) must return; btrfs without the fix below deadlocked." ;;
	*)
		echo "# An O_DIRECT write from a buffer of which only some pages are resident"
		echo "# ($2) must read back exactly as written; btrfs without the fix"
		echo "# below lost part of it (FAIL signature: $3)." ;;
	esac
}

# sa_fstests_upstream REPRO: the draft's line naming the upstream fstests
# test(s) of the reproducer's fix (its metadata's fstests), if any.
sa_fstests_upstream() {
	local t
	t=$(repro_field "$1" fstests 2>/dev/null) || t=
	[[ $t == generic/* || $t == btrfs/* ]] || return 0
	echo "# Upstream fstests already tests this fix in $t: compare with it"
	echo "# before submitting (this draft is the minimized case, in the same form)."
	echo "#"
}

# sa_fstests CASE_JSON C_FILE OUTDIR: an fstests-form draft of the same
# program: OUTDIR/tests/generic/NNN, NNN.out and src/NAME.c (NAME from the
# family), marked DRAFT; fstests assigns NNN when the test is submitted.
sa_fstests() {
	local c=$1 cfile=$2 out=$3 family name sig fix mount mopt libs=''
	family=$(sa_family "$(jq -r .repro <<<"$c")")
	name=btrfs-dio-$family
	sig=$(jq -r '.signature // ""' <<<"$c")
	fix=$(sa_fix "$sig" "$(jq -r .repro <<<"$c")")
	mount=$(jq -r '.mount // "defaults"' <<<"$c")
	mopt=''
	[[ $mount == defaults ]] || mopt=" -o $mount"
	[[ $family != unstable-write ]] || libs=' (it needs -lpthread: LLDLIBS)'
	mkdir -p "$out/tests/generic" "$out/src"
	sed "s|^ \\* [a-z-]*\\.c - | * $name - |" "$cfile" |
		sed "1a /* DRAFT for fstests src/: generated by diogap, not yet submitted. */" \
			>"$out/src/$name.c"
	cat >"$out/tests/generic/NNN" <<EOF
#! /bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# DRAFT, generated by diogap (harness/report --bug) from case $(jq -r .case <<<"$c"):
# not yet submitted; fstests assigns the number. Add src/$name to
# src/Makefile's TARGETS$libs and to .gitignore.
#
$(sa_fstests_upstream "$(jq -r .repro <<<"$c")")
# FS QA Test No. NNN
#
$(sa_fstests_desc "$family" "$(sa_fault_text "$(jq -r '.params.fault // "first"' <<<"$c")")" "$sig")
#
. ./common/preamble
_begin_fstest auto quick rw

_require_scratch
_require_odirect
_require_test_program "$name"
[ "\$FSTYP" = "btrfs" ] && _fixed_by_kernel_commit ${fix%%$'\t'*} \\
	"${fix#*$'\t'}"

_scratch_mkfs >>\$seqres.full 2>&1
_scratch_mount$mopt

\$here/src/$name \$SCRATCH_MNT >>\$seqres.full 2>&1 ||
	echo "$name failed (exit \$?), see \$seqres.full"

echo "Silence is golden"
status=0
exit
EOF
	printf 'QA output created by NNN\nSilence is golden\n' >"$out/tests/generic/NNN.out"
	cat >"$out/README.DRAFT" <<EOF
DRAFT fstests test, generated by diogap; not yet submitted.
tests/generic/NNN and NNN.out: the test and its golden output (fstests
assigns NNN); src/$name.c: the same program as repro.c (proven by diogap in a
VM: FAIL on the bad kernel, PASS with the fix). fstests is not packaged for
Debian, so this form was not run here.
EOF
}
