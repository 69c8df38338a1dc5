# shellcheck shell=bash
# A reproducer's metadata (fixes, introduced-by, fstests, parameters,
# may-hang) is its dg_repro table in C, printed by `REPRO --describe --json`.
# The harness reads it from the binary, never from the source's comments.
# Sourced after common.sh; needs jq.

# The host's build (run-vm --arch arm64 points DIOGAP_BUILD at binaries this
# machine cannot run): taken when this file is sourced.
DG_META_BUILD=${DG_META_BUILD:-$DIOGAP_BUILD}

# repro_meta REPRO: the metadata JSON. The binary is built first when it is
# missing or older than its source (the table lives in the source).
repro_meta() {
	local src=$DIOGAP_ROOT/repro/$1.c bin=$DG_META_BUILD/$1
	[[ -r $src ]] || return 1
	if [[ ! -x $bin || $src -nt $bin ]]; then
		make -s -C "$DIOGAP_ROOT" ARCH= BUILD="$DG_META_BUILD" "$bin" >&2 ||
			die "cannot build $bin (its --describe --json is the reproducer's metadata)"
	fi
	"$bin" --describe --json || die "$bin --describe --json failed"
}

# repro_field REPRO FIELD: one field as text: params (space separated),
# may_hang (yes|no), fix (first fix "SHA<TAB>SUBJECT"), fixes (one
# "SHA<TAB>SUBJECT" a line), introduced_by ("SHA<TAB>SUBJECT"), fstests
# (space separated), note, needs (space separated: dm-flakey = the scratch
# disk under dm-flakey, for a power cut).
repro_field() {
	local meta
	meta=$(repro_meta "$1") || return 1
	jq -r --arg f "$2" '
		def commit: if . == null then empty else "\(.sha)\t\(.subject)" end;
		if $f == "params" then .params | join(" ")
		elif $f == "may_hang" then (if .may_hang then "yes" else "no" end)
		elif $f == "fix" then (.fixes[0] | commit)
		elif $f == "fixes" then (.fixes[] | commit)
		elif $f == "introduced_by" then (.introduced_by | commit)
		elif $f == "fstests" then .fstests | join(" ")
		elif $f == "note" then .note // empty
		elif $f == "needs" then (.needs // []) | join(" ")
		else error("unknown field \($f)") end' <<<"$meta"
}
