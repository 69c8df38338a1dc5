# shellcheck shell=bash
# Sweep files: `key = value...` lists, parsed without eval, expanded into a
# case list (see sweep_cases). Sourced after common.sh.

# shellcheck source=harness/lib/repro-meta.sh
. "$DIOGAP_ROOT/harness/lib/repro-meta.sh"

# Keys a sweep may set. Parameter keys become reproducer options; the rest
# configure the run.
readonly DG_PARAM_KEYS="size offset chunk fault buffer engine layout qd fixed_buffers async hang_timeout seconds nocow"
# Options every reproducer takes (repro/lib/opts.c), whatever its Params line.
readonly DG_COMMON_PARAMS="nocow"
readonly DG_RUN_KEYS="name repro iterations timeout mkfs mount image_size profile expect_splat"

# Filesystem profiles a sweep may ask for (`profile = ...`): the scratch
# disks each takes and its mkfs.btrfs options (the sweep's `mkfs` options
# come after them). Every profile is its own filesystem, made before the run.
declare -grA DG_PROFILE_DISKS=([single]=1 [dup]=1 [raid1]=2 [raid10]=4)
declare -grA DG_PROFILE_MKFS=([single]="-d single -m single" [dup]="-d dup -m dup"
	[raid1]="-d raid1 -m raid1" [raid10]="-d raid10 -m raid10")

declare -gA DG_SWEEP=() DG_SWEEP_LINE=()
DG_SWEEP_FILE=

# sweep_repro_header REPRO KEY: the reproducer's Params (space separated) or
# May-hang (yes|no), from its metadata table (repro-meta.sh).
sweep_repro_header() {
	case "$2" in
	Params) repro_field "$1" params ;;
	May-hang) repro_field "$1" may_hang ;;
	*) return 1 ;;
	esac
}

sweep_known_key() {
	local key=$1 base=${1##*.} repro
	case " $DG_PARAM_KEYS $DG_RUN_KEYS " in
	*" $base "*) ;;
	*) return 1 ;;
	esac
	[[ $key == "$base" ]] && return 0
	repro=${key%.*}
	[[ -r $DIOGAP_ROOT/repro/$repro.c ]]
}

# sweep_check_value FILE:LINE KEY VALUE: reject values that cannot be right
# before anything runs.
sweep_check_value() {
	local where=$1 key=${2##*.} v
	if [[ $key == expect_splat ]]; then
		# A regex (ERE, jq's test()): kernel log splats a case expects.
		if [[ $3 == *$'\t'* ]] || ! jq -n --arg re "$3" '"" | test($re)' >/dev/null 2>&1; then
			die "$where: expect_splat: '$3' is not a regular expression"
		fi
		return 0
	fi
	for v in $3; do
		case "$key" in
		size | offset | chunk | image_size)
			[[ $v =~ ^[0-9]+[KMG]?$ ]] || die "$where: $key: '$v' is not a size (N, NK, NM, NG)" ;;
		qd | iterations | timeout | hang_timeout)
			[[ $v =~ ^[1-9][0-9]*$ ]] || die "$where: $key: '$v' is not a positive integer" ;;
		seconds)
			[[ $v =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ && ! $v =~ ^[0.]+$ ]] ||
				die "$where: $key: '$v' is not a positive number of seconds" ;;
		layout)
			[[ $v =~ ^[a-z0-9]+$ ]] || die "$where: $key: '$v' is not a word" ;;
		fixed_buffers | async | nocow)
			[[ $v == 0 || $v == 1 ]] || die "$where: $key: '$v' is not 0 or 1" ;;
		repro)
			[[ -r $DIOGAP_ROOT/repro/$v.c ]] || die "$where: repro: no reproducer '$v' in repro/" ;;
		buffer)
			# A sweep may write nowhere but the scratch filesystem: "file" is
			# a new file there (the reproducer's target directory).
			[[ $v != file:* ]] || die "$where: buffer: '$v' would write outside the scratch filesystem; use 'file' (a new file on the scratch btrfs)"
			[[ $v =~ ^(memfd|anon|file)$ ]] || die "$where: buffer: '$v' is not memfd, anon or file" ;;
		fault)
			[[ $v =~ ^(first|none|all|stride:[1-9][0-9]*|random:[0-9]+:[0-9]+|pages:[0-9,-]+)$ ]] ||
				die "$where: fault: '$v' is not a fault pattern" ;;
		mount)
			[[ $v =~ ^[A-Za-z0-9_=,.:-]+$ ]] || die "$where: mount: bad option set '$v'"
			# The reproducers write: a read-only scratch filesystem would make
			# every case BROKEN (EROFS), or worse, look like a kernel bug.
			if [[ ,$v, =~ ,(ro|norecovery|rescue=[^,]*), ]]; then
				die "$where: mount = $v would make the scratch filesystem read-only"
			fi
			;;
		profile)
			[[ -n ${DG_PROFILE_DISKS[$v]:-} ]] ||
				die "$where: profile: '$v' is not one of ${!DG_PROFILE_DISKS[*]}" ;;
		esac
	done
}

# sweep_load FILE: read FILE into DG_SWEEP. A malformed line is an error
# naming the file and line (exit 2).
sweep_load() {
	local file=$1 line n=0 key val
	[[ -f $file && -r $file ]] || die "sweep file not readable: $file"
	DG_SWEEP=()
	DG_SWEEP_FILE=$file
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		line=${line%%#*}
		[[ $line =~ ^[[:space:]]*$ ]] && continue
		if [[ ! $line =~ ^[[:space:]]*([A-Za-z0-9_.-]+)[[:space:]]*=(.*)$ ]]; then
			die "$file:$n: malformed line, want 'key = value': ${line}"
		fi
		key=${BASH_REMATCH[1]}
		read -r -a val <<<"${BASH_REMATCH[2]}"
		sweep_known_key "$key" || die "$file:$n: unknown key '$key'"
		[[ -v DG_SWEEP[$key] ]] && die "$file:$n: key '$key' given twice"
		if ((${#val[@]} == 0)) && [[ $key != mkfs ]]; then
			die "$file:$n: key '$key' has no value"
		fi
		sweep_check_value "$file:$n" "$key" "${val[*]}"
		DG_SWEEP[$key]="${val[*]}"
		DG_SWEEP_LINE[$key]=$n
	done <"$file"
	[[ -n ${DG_SWEEP[repro]:-} ]] || die "$file: no 'repro =' line"
	sweep_check_keys
}

# sweep_takes REPRO KEY: REPRO has parameter KEY (its Params: line).
sweep_takes() {
	[[ " $(sweep_repro_header "$1" Params) $DG_COMMON_PARAMS " == *" $2 "* ]]
}

# sweep_check_keys: a key that would change nothing is an error naming its
# line: REPRO.KEY for a reproducer the sweep does not run, or a parameter
# REPRO does not take; a global parameter no reproducer of the sweep takes.
sweep_check_keys() {
	local key base repro r where
	for key in "${!DG_SWEEP[@]}"; do
		base=${key##*.} where="$DG_SWEEP_FILE:${DG_SWEEP_LINE[$key]}"
		if [[ $key == *.* ]]; then
			repro=${key%.*}
			[[ " ${DG_SWEEP[repro]} " == *" $repro "* ]] ||
				die "$where: key '$key': the sweep does not run $repro (repro = ${DG_SWEEP[repro]})"
			[[ " $DG_PARAM_KEYS " != *" $base "* ]] || sweep_takes "$repro" "$base" ||
				die "$where: key '$key': $repro takes no $base (Params: $(sweep_repro_header "$repro" Params))"
		elif [[ " $DG_PARAM_KEYS " == *" $key "* ]]; then
			for r in ${DG_SWEEP[repro]}; do
				sweep_takes "$r" "$key" && continue 2
			done
			die "$where: key '$key': no reproducer of the sweep takes it (repro = ${DG_SWEEP[repro]})"
		fi
	done
}

# sweep_get KEY [REPRO] [DEFAULT]: the per-reproducer value, else the global
# one, else DEFAULT.
sweep_get() {
	local key=$1 repro=${2:-} def=${3:-}
	if [[ -n $repro && -v DG_SWEEP[$repro.$key] ]]; then
		printf '%s\n' "${DG_SWEEP[$repro.$key]}"
	elif [[ -v DG_SWEEP[$key] ]]; then
		printf '%s\n' "${DG_SWEEP[$key]}"
	else
		printf '%s\n' "$def"
	fi
}

# sweep_id_part KEY VALUE: the short form of one parameter in a case id.
sweep_id_part() {
	local key=$1 v=$2
	case "$key" in
	fixed_buffers) [[ $v == 1 ]] && printf 'fixed' ;;
	async) [[ $v == 1 ]] && printf 'async' ;;
	nocow) [[ $v == 1 ]] && printf 'nocow' ;;
	qd) printf 'qd%s' "$v" ;;
	chunk) printf 'c%s' "$v" ;;
	offset) printf 'o%s' "$v" ;;
	hang_timeout) printf 'ht%s' "$v" ;;
	seconds) printf '%ss' "$v" ;;
	buffer) printf '%s' "${v%%:*}" ;;
	*) printf '%s' "$v" ;;
	esac | tr ':,' '-_'
}

# sweep_option KEY VALUE: the reproducer option for one parameter.
sweep_option() {
	local key=$1 v=$2
	case "$key" in
	fixed_buffers | async | nocow) [[ $v == 1 ]] && printf -- '--%s' "${key//_/-}" ;;
	*) printf -- '--%s %s' "${key//_/-}" "$v" ;;
	esac
}

# sweep_expand_repro REPRO MOUNT FS: one case line per combination of the
# reproducer's parameters. FS is sweep_filesystems' "NAME@DISKS".
sweep_expand_repro() {
	local repro=$1 mount=$2 fs=$3 params key v id args hang timeout iters i part opt splat
	local -a ids=("$repro") argl=("") nids nargs
	params=$(sweep_repro_header "$repro" Params) ||
		die "reproducer $repro has no source repro/$repro.c"
	hang=$(sweep_repro_header "$repro" May-hang)
	[[ $hang == yes ]] && hang=1 || hang=0
	for key in $params $DG_COMMON_PARAMS; do
		v=$(sweep_get "$key" "$repro")
		[[ -z $v ]] && continue
		nids=() nargs=()
		for ((i = 0; i < ${#ids[@]}; i++)); do
			for v in $(sweep_get "$key" "$repro"); do
				part=$(sweep_id_part "$key" "$v")
				opt=$(sweep_option "$key" "$v")
				nids+=("${ids[i]}${part:+.$part}")
				nargs+=("${argl[i]}${opt:+ $opt}")
			done
		done
		ids=("${nids[@]}") argl=("${nargs[@]}")
	done
	# a power cut needs the filesystem's disk under dm-flakey (run-cases.sh):
	# "+flakey" on the FS column; one disk, a table over several is not ours
	if [[ " $(repro_field "$repro" needs) " == *" dm-flakey "* ]]; then
		[[ ${fs#*@} != *,* ]] ||
			die "$DG_SWEEP_FILE: $repro needs dm-flakey (a power cut): one disk per filesystem, not profile ${fs%@*}"
		fs+=+flakey
	fi
	iters=$(sweep_get iterations "$repro" 1)
	timeout=$(sweep_get timeout "$repro" 120)
	splat=$(sweep_get expect_splat "$repro")
	for ((i = 0; i < ${#ids[@]}; i++)); do
		id="${ids[i]}"
		[[ ${fs%@*} == - ]] || id+=".${fs%@*}"
		id+=".$mount"
		args="${argl[i]# } --iterations $iters"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$repro" "$mount" "$timeout" "$hang" "$args" "$fs" "$splat"
	done
}

# sweep_profiles [REPRO]: the profiles the sweep (or REPRO) uses, in order
# of appearance; "-" when the sweep names none (one disk, `mkfs` options).
sweep_profiles() {
	local repro p
	if [[ -n ${1:-} ]]; then
		p=$(sweep_get profile "$1")
		echo "${p:--}"
		return 0
	fi
	for repro in ${DG_SWEEP[repro]}; do
		p=$(sweep_get profile "$repro")
		echo "${p:--}"
	done | tr ' ' '\n' | awk 'NF && !seen[$0]++'
}

# sweep_filesystems: one line per filesystem the run makes, disks numbered
# from 1 across all of them:
#   NAME@DISK[,DISK...] TAB MKFS_OPTIONS
# "-@1" is the single disk of a sweep without `profile`.
sweep_filesystems() {
	local p n=1 k disks
	for p in $(sweep_profiles); do
		if [[ $p == - ]]; then
			printf '%s\t%s\n' "-@$n" "$(sweep_get mkfs)"
			n=$((n + 1))
			continue
		fi
		disks=$n
		for ((k = 1; k < ${DG_PROFILE_DISKS[$p]}; k++)); do disks+=",$((n + k))"; done
		n=$((n + DG_PROFILE_DISKS[$p]))
		printf '%s\t%s\n' "$p@$disks" "${DG_PROFILE_MKFS[$p]} $(sweep_get mkfs)"
	done
}

# sweep_disks: how many scratch disks the run needs.
sweep_disks() {
	sweep_filesystems | cut -f1 | sed 's/.*@//' | tr ',' '\n' | grep -c .
}

# sweep_cases: print the case list of the loaded sweep, TAB separated:
#   CASE_ID REPRO MOUNT_OPTS TIMEOUT_S MAY_HANG ARGS FS EXPECT_SPLAT
# FS is the filesystem (sweep_filesystems): PROFILE@DISKS, "-@1" without
# profiles; "+flakey" after it: the case's disk under dm-flakey (a
# reproducer that needs a power cut, its metadata's needs). EXPECT_SPLAT (the sweep's expect_splat regex, may be empty) is
# read on the host only (results.jq); the guest's runner ignores it.
# Cases that may hang come last, so a hang cannot hide other verdicts.
sweep_cases() {
	local mount repro all mounts
	# Every mount option set any reproducer uses, in order of appearance.
	mounts=$(for repro in ${DG_SWEEP[repro]}; do
		sweep_get mount "$repro" defaults | tr ' ' '\n'
	done | awk '!seen[$0]++')
	all=$(
		sweep_filesystems | cut -f1 | while read -r fs; do
			for mount in $mounts; do
				for repro in ${DG_SWEEP[repro]}; do
					[[ " $(sweep_get mount "$repro" defaults) " == *" $mount "* ]] || continue
					[[ " $(sweep_profiles "$repro") " == *" ${fs%@*} "* ]] || continue
					sweep_expand_repro "$repro" "$mount" "$fs"
				done
			done
		done
	)
	[[ -n $all ]] || die "$DG_SWEEP_FILE: the sweep expands to no case"
	if [[ -n $(cut -f1 <<<"$all" | sort | uniq -d | head -n 1) ]]; then
		die "$DG_SWEEP_FILE: two cases have the same id"
	fi
	awk -F'\t' '$5 == 0' <<<"$all"
	awk -F'\t' '$5 == 1' <<<"$all"
}

# sweep_hash: identity of the sweep, for meta.json.
sweep_hash() {
	sha256sum "$DG_SWEEP_FILE" | cut -c1-16
}

# sweep_make_images DIR SIZE: DIR/disk-N.img for every scratch disk of the
# sweep (SIZE each, sparse), each filesystem made across its disks with
# mkfs.btrfs; prints the image paths in disk order. Exit 2 on failure.
sweep_make_images() {
	local dir=$1 size=$2 fs mkfs n i img
	local -a imgs=() mine
	n=$(sweep_disks)
	for ((i = 1; i <= n; i++)); do
		img=$dir/disk-$i.img
		rm -f "$img"
		truncate -s "$size" "$img" ||
			die "cannot create the scratch image $img (is its filesystem full?)"
		imgs+=("$img")
	done
	while IFS=$'\t' read -r fs mkfs; do
		mine=()
		for i in ${fs#*@}; do mine+=("${imgs[i - 1]}"); done
		# shellcheck disable=SC2086 # mkfs options are a list: split on purpose
		mkfs.btrfs -q -f $mkfs "${mine[@]}" >"$dir/mkfs.log" 2>&1 ||
			die "mkfs.btrfs $mkfs (filesystem ${fs%@*}) failed: $(tail -n 3 "$dir/mkfs.log")"
	done < <(sweep_filesystems | sed 's/,/ /g')
	printf '%s\n' "${imgs[@]}"
}
