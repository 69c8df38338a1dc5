# shellcheck shell=bash
# Kernel modules for the guest: which of btrfs, virtio_blk and virtio_pci a
# kernel has as modules, their dependency closure from modules.dep (plus the
# "pre:" soft dependencies no built-in code provides), decompressed on the
# host, and a load order where every dependency comes before its user.
# Sourced after common.sh, never run.

# The modules the guest needs for a virtio disk holding a btrfs.
VMM_WANTED=(virtio_pci virtio_blk btrfs)
# Loaded when the kernel ships them: device mapper and dm-flakey, the power
# cut of the durability reproducers (without them those SKIP, saying why).
VMM_OPTIONAL=(dm_mod dm_flakey)

# vmm_name VAR PATH: set VAR to the module name of a .ko[.xz|.zst|.gz]
# path (dashes as _). No subshell: it runs once per modules.dep entry.
vmm_name() {
	local vmm_b=${2##*/}
	vmm_b=${vmm_b%.gz} vmm_b=${vmm_b%.xz} vmm_b=${vmm_b%.zst} vmm_b=${vmm_b%.ko}
	printf -v "$1" '%s' "${vmm_b//-/_}"
}

# vmm_load_tables MODDIR: fill the lookup tables from modules.dep,
# modules.builtin, modules.builtin.modinfo and modules.softdep.
vmm_load_tables() {
	local dir=$1 line path deps d n dn names mod rest
	declare -gA VMM_PATH=() VMM_DEPS=() VMM_BUILTIN=() VMM_SOFT=()
	while IFS= read -r line; do
		path=${line%%:*}
		deps=${line#*:}
		vmm_name n "$path"
		VMM_PATH[$n]=$path
		names=''
		for d in $deps; do
			vmm_name dn "$d"
			names+=" $dn"
		done
		VMM_DEPS[$n]=$names
	done <"$dir/modules.dep"
	if [[ -f $dir/modules.builtin ]]; then
		while IFS= read -r line; do
			vmm_name n "$line"
			VMM_BUILTIN[$n]=1
		done <"$dir/modules.builtin"
	fi
	if [[ -f $dir/modules.builtin.modinfo ]]; then
		while IFS= read -r line; do
			VMM_BUILTIN[alias:${line#*.alias=}]=1
		done < <(tr '\0' '\n' <"$dir/modules.builtin.modinfo" | grep '^[^.]*\.alias=')
	fi
	if [[ -f $dir/modules.softdep ]]; then
		# "softdep MOD pre: A B post: C": keep the pre: part.
		while read -r _ mod rest; do
			rest=${rest#*pre:}
			rest=${rest%%post:*}
			[[ $rest == *softdep* ]] && continue
			VMM_SOFT[${mod//-/_}]+=" $rest"
		done < <(grep '^softdep .*pre:' "$dir/modules.softdep")
	fi
}

# vmm_soft_target MODDIR NAME: the module that provides soft dependency NAME
# (a module name or an alias), or nothing when built in or unknown.
vmm_soft_target() {
	local dir=$1 name=$2 n
	n=${name//-/_}
	[[ -n ${VMM_BUILTIN[$n]:-} || -n ${VMM_BUILTIN[alias:$name]:-} ]] && return 0
	if [[ -n ${VMM_PATH[$n]:-} ]]; then
		echo "$n"
		return 0
	fi
	# Prefer a generic implementation: it works on every CPU model.
	awk -v a="$name" '$1 == "alias" && $2 == a {gsub(/-/, "_", $3); print $3}' \
		"$dir/modules.alias" 2>/dev/null |
		awk '/_generic$/ {g = $0} NR == 1 {f = $0} END {print (g != "" ? g : f)}'
}

# vmm_visit MODDIR NAME: depth-first, dependencies first, into VMM_ORDER.
vmm_visit() {
	local dir=$1 n=$2 d s t
	[[ -n ${VMM_SEEN[$n]:-} ]] && return 0
	VMM_SEEN[$n]=1
	for d in ${VMM_DEPS[$n]:-}; do
		vmm_visit "$dir" "$d"
	done
	for s in ${VMM_SOFT[$n]:-}; do
		t=$(vmm_soft_target "$dir" "$s")
		[[ -n $t && -n ${VMM_PATH[$t]:-} ]] && vmm_visit "$dir" "$t"
	done
	VMM_ORDER+=("$n")
}

# vmm_depmod MODROOT RELEASE: make modules.dep when the tree has none
# (Debian packages ship none).
vmm_depmod() {
	local dir=$1/lib/modules/$2
	[[ -s $dir/modules.dep && $dir/modules.dep -nt $dir/modules.order ]] && return 0
	depmod -b "$1" "$2" || die "depmod -b $1 $2 failed"
}

# vmm_stage MODROOT RELEASE DEST: copy the needed modules, decompressed,
# into DEST/ and write DEST/order (one file name per line, load order).
# Sets VMM_ORDER (names in load order) and VMM_MISSING (wanted modules that
# are neither built in nor shipped).
vmm_stage() {
	local root=$1 rel=$2 dest=$3 dir n src out
	dir=$root/lib/modules/$rel
	VMM_ORDER=() VMM_MISSING=()
	declare -gA VMM_SEEN=()
	mkdir -p "$dest"
	: >"$dest/order"
	[[ -d $dir ]] || die "no module tree $dir"
	vmm_depmod "$root" "$rel"
	vmm_load_tables "$dir"
	for n in "${VMM_WANTED[@]}"; do
		if [[ -n ${VMM_BUILTIN[$n]:-} ]]; then
			continue
		elif [[ -n ${VMM_PATH[$n]:-} ]]; then
			vmm_visit "$dir" "$n"
		else
			VMM_MISSING+=("$n")
		fi
	done
	for n in "${VMM_OPTIONAL[@]}"; do
		[[ -z ${VMM_BUILTIN[$n]:-} && -n ${VMM_PATH[$n]:-} ]] && vmm_visit "$dir" "$n"
	done
	for n in "${VMM_ORDER[@]}"; do
		src=$dir/${VMM_PATH[$n]}
		out=$dest/$n.ko
		case $src in
		*.ko.xz) xz -dc -- "$src" >"$out" ;;
		*.ko.zst) zstd -qdc -- "$src" >"$out" ;;
		*.ko.gz) gzip -dc -- "$src" >"$out" ;;
		*) cp -- "$src" "$out" ;;
		esac || die "cannot decompress module $src"
		echo "$n.ko" >>"$dest/order"
	done
}
