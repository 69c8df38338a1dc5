# shellcheck shell=bash
# The guest's initramfs, as three gzip'd newc cpio archives concatenated
# (the kernel unpacks them in turn):
#   base     busybox-static with its applet links, harness/guest/init as
#            /init, the case runner, the static reproducers the cases use;
#            cached under $DIOGAP_CACHE/vm by the hash of its contents
#   modules  the kernel's modules and their load order (vm-modules.sh);
#            cached per kernel image and module tree
#   cases    the case list and the ids to skip (--resume); made per boot
# Sourced after common.sh and vm-modules.sh, never run.

VMI_BUSYBOX=${VMI_BUSYBOX:-/bin/busybox}
# The busybox whose --list names the applets to link (it must run here: the
# host's, for a guest busybox of another architecture).
VMI_BUSYBOX_LIST=${VMI_BUSYBOX_LIST:-$VMI_BUSYBOX}
VMI_STRIP='strip'
# readelf's "Machine:" of the guest's binaries.
VMI_MACHINE='Advanced Micro Devices X86-64'
VMI_CACHE=$DIOGAP_CACHE/vm/initramfs
# Part of the cache keys: bump when the archives' layout changes.
readonly VMI_RECIPE=1

# vmi_prune: archives unused for two weeks go (each use touches its file).
vmi_prune() {
	find "$VMI_CACHE" -maxdepth 1 -type f -mtime +14 -delete 2>/dev/null || true
}

# vmi_set_arch ARCH: the guest's busybox, strip and ELF machine. arm64:
# Debian's busybox-static:arm64, downloaded (apt-get download) and unpacked
# into the cache, never installed over the host's; its applets are those of
# the host's busybox-static (same Debian version, same configuration).
vmi_set_arch() {
	[[ $1 == arm64 ]] || return 0
	local dir=$DIOGAP_CACHE/debs deb root want have
	VMI_STRIP=aarch64-linux-gnu-strip VMI_MACHINE=AArch64
	VMI_BUSYBOX_LIST=/bin/busybox
	mkdir -p "$dir"
	deb=$(vmi_busybox_deb "$dir")
	if [[ -z $deb ]]; then
		log "downloading Debian package busybox-static:arm64"
		(cd "$dir" && apt-get download -q busybox-static:arm64 >&2 2>"$dir/.apt.err") || {
			cat "$dir/.apt.err" >&2
			die "apt-get download busybox-static:arm64 failed (dpkg --add-architecture arm64 and apt-get update?)"
		}
		deb=$(vmi_busybox_deb "$dir")
		[[ -n $deb ]] || die "apt-get download busybox-static:arm64 left no busybox-static_*_arm64.deb in $dir"
	fi
	root=$DIOGAP_CACHE/debs/root/$(basename -- "$deb" .deb)-$(sha256sum -- "$deb" | cut -c1-12)
	if [[ ! -f $root/.unpacked ]]; then
		rm -rf "$root" && mkdir -p "$root"
		dpkg-deb -x "$deb" "$root" || die "cannot unpack $deb"
		touch "$root/.unpacked"
	fi
	VMI_BUSYBOX=$root/bin/busybox
	want=$(dpkg-deb -f "$deb" Version)
	have=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null) || true
	[[ $want == "$have" ]] ||
		warn "the guest's busybox is $want, the host's $have: applet links follow the host's"
}

vmi_busybox_deb() {
	local f
	# no match leaves the pattern itself: not a file, and not an error
	for f in "$1"/busybox-static_*_arm64.deb; do
		if [[ -f $f ]]; then echo "$f"; fi
	done | sort -V | tail -n 1
}

# vmi_check_machine FILE: FILE is built for the guest's architecture.
vmi_check_machine() {
	local m
	m=$(LC_ALL=C readelf -hW "$1" 2>/dev/null | sed -n 's/^ *Machine: *//p')
	[[ $m == "$VMI_MACHINE" ]] ||
		die "$1 is built for '${m:-not an ELF}', the guest is '$VMI_MACHINE' (make ARCH=arm64 for arm64 guests)"
}

# vmi_cpio DIR OUT: DIR as a gzip'd newc cpio owned by root, reproducibly.
vmi_cpio() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -n -1 >"$2.tmp" ||
		die "cannot make the cpio archive $2"
	mv "$2.tmp" "$2"
}

# vmi_is_static FILE: an ELF without a program interpreter.
vmi_is_static() {
	local interp
	interp=$(LC_ALL=C readelf -lW "$1" 2>/dev/null | grep -c 'Requesting program interpreter') || true
	[[ $interp == 0 ]]
}

# vmi_repros CASES: the reproducers the cases use, one per line, and the
# runner's helpers dg-case and dg-dm (repro/tools/).
vmi_repros() {
	{ cut -f2 "$1"; echo dg-case; echo dg-dm; } | sort -u
}

# vmi_base CASES: set VMI_BASE to the base archive for these cases.
vmi_base() {
	local cases=$1 r f key stage
	local -a files=("$VMI_BUSYBOX" "$DIOGAP_ROOT/harness/guest/init"
		"$DIOGAP_ROOT/harness/lib/run-cases.sh")
	[[ -x $VMI_BUSYBOX ]] || die "no $VMI_BUSYBOX (Debian package busybox-static)"
	vmi_is_static "$VMI_BUSYBOX" || die "$VMI_BUSYBOX is not a static binary (install busybox-static)"
	vmi_check_machine "$VMI_BUSYBOX"
	while read -r r; do
		f=$DIOGAP_BUILD/$r
		[[ -x $f ]] || die "$r is not built: no $f (run make)"
		vmi_is_static "$f" || die "$f is not a static binary: it cannot run in the guest"
		vmi_check_machine "$f"
		files+=("$f")
	done < <(vmi_repros "$cases")
	key=$({ echo "$VMI_RECIPE"; sha256sum "${files[@]}" | sed 's|  .*/| |'; } |
		sha256sum | cut -c1-16)
	VMI_BASE=$VMI_CACHE/base-$key.cpio.gz
	mkdir -p "$VMI_CACHE"
	vmi_prune
	if [[ -s $VMI_BASE ]]; then
		touch "$VMI_BASE"
		return 0
	fi
	stage=$(mktemp -d "$VMI_CACHE/stage.XXXXXX")
	vmi_stage_base "$stage" "$cases"
	vmi_cpio "$stage" "$VMI_BASE"
	rm -rf "$stage"
}

vmi_stage_base() {
	local s=$1 cases=$2 a r
	mkdir -p "$s/bin" "$s/diogap/bin" "$s/proc" "$s/sys" "$s/dev" "$s/run" "$s/tmp" "$s/mnt"
	cp "$VMI_BUSYBOX" "$s/bin/busybox"
	for a in $("$VMI_BUSYBOX_LIST" --list); do
		[[ $a == busybox || -e $s/bin/$a ]] || ln -s busybox "$s/bin/$a"
	done
	install -m 0755 "$DIOGAP_ROOT/harness/guest/init" "$s/init"
	cp "$DIOGAP_ROOT/harness/lib/run-cases.sh" "$s/diogap/run-cases.sh"
	# Stripped: a smaller initramfs unpacks faster in an emulated guest.
	while read -r r; do
		"$VMI_STRIP" --strip-all -o "$s/diogap/bin/$r" "$DIOGAP_BUILD/$r" 2>/dev/null ||
			cp "$DIOGAP_BUILD/$r" "$s/diogap/bin/$r"
		chmod 0755 "$s/diogap/bin/$r"
	done < <(vmi_repros "$cases")
}

# vmi_modules IMAGE MODROOT RELEASE: set VMI_MODULES to the modules
# archive ("" when the kernel has no module tree), VMM_ORDER and
# VMM_MISSING (kept beside a cached archive).
vmi_modules() {
	local img=$1 root=$2 rel=$3 key stage
	VMM_ORDER=() VMM_MISSING=() VMI_MODULES=
	[[ -n $root ]] || return 0
	key=$(printf '%s %s %s %s %s\n' "$VMI_RECIPE" "$(sha256sum <"$img")" "$root" "$rel" \
		"${VMM_WANTED[*]} ${VMM_OPTIONAL[*]}" | sha256sum | cut -c1-16)
	VMI_MODULES=$VMI_CACHE/modules-$key.cpio.gz
	if [[ -s $VMI_MODULES && -f $VMI_MODULES.list ]]; then
		touch "$VMI_MODULES" "$VMI_MODULES.list"
		read -r -a VMM_ORDER <"$VMI_MODULES.list"
		read -r -a VMM_MISSING < <(sed -n 2p "$VMI_MODULES.list")
		return 0
	fi
	mkdir -p "$VMI_CACHE"
	stage=$(mktemp -d "$VMI_CACHE/stage.XXXXXX")
	vmm_stage "$root" "$rel" "$stage/diogap/modules"
	vmi_cpio "$stage" "$VMI_MODULES"
	rm -rf "$stage"
	printf '%s\n%s\n' "${VMM_ORDER[*]}" "${VMM_MISSING[*]}" >"$VMI_MODULES.list"
}

# vmi_build OUT CASES DONE_IDS BASE MODULES: the initrd for one boot.
vmi_build() {
	local out=$1 stage
	stage=$(mktemp -d "$out.stage.XXXXXX")
	mkdir -p "$stage/diogap"
	cp "$2" "$stage/diogap/cases.tsv"
	cp "$3" "$stage/diogap/done.ids"
	vmi_cpio "$stage" "$out.cases"
	rm -rf "$stage"
	cat "$4" ${5:+"$5"} "$out.cases" >"$out"
	rm -f "$out.cases"
}
