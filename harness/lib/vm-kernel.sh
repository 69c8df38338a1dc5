# shellcheck shell=bash
# shellcheck disable=SC2034 # the K_* globals are this file's output, read by run-vm
# Kernel resolution for run-vm: turn what the user passed to --kernel into a
# bzImage (or, with VM_ARCH=arm64, an arm64 Image), its release, its config
# (if known) and a module tree (if any). Sourced after common.sh, never run.
#
# vmk_resolve SPEC sets these globals:
#   K_KIND     bzimage | builddir | deb | package
#   K_ORIGIN   what the user gave (path or package name)
#   K_IMAGE    the bzImage (arm64: Image, raw or gzip'd) to boot
#   K_RELEASE  the kernel release (uname -r), read from the bzImage header
#              (arm64: the image's "Linux version" banner)
#   K_PAGE     arm64: the page size its Image header declares, or ""
#   K_CONFIG   the kernel .config, or "" when unknown
#   K_MODROOT  a directory holding lib/modules/$K_RELEASE, or "" for none
# and vmk_boot_image sets K_BOOT / K_BOOT_METHOD (what QEMU is given).
# Everything it fetches or unpacks goes under $DIOGAP_CACHE.

# The guest's architecture (run-vm --arch): x86_64 or arm64.
VM_ARCH=${VM_ARCH:-x86_64}

# vmk_is_bzimage FILE: true when FILE carries the x86 boot protocol magic
# "HdrS" at offset 0x202.
vmk_is_bzimage() {
	local magic
	[[ -f $1 && -r $1 ]] || return 1
	magic=$(od -An -c -j 514 -N 4 -- "$1" 2>/dev/null | tr -d ' ')
	[[ $magic == HdrS ]]
}

# vmk_bzimage_release FILE: the release string from the header's
# kernel_version field (a pointer at 0x20e, relative to 0x200).
vmk_bzimage_release() {
	local ptr
	ptr=$(od -An -tu2 -j 526 -N 2 -- "$1" | tr -d ' ')
	[[ $ptr =~ ^[0-9]+$ ]] && ((ptr > 0)) || return 1
	dd if="$1" bs=1 skip=$((512 + ptr)) count=200 2>/dev/null |
		tr '\0' '\n' | head -n 1 | awk '{print $1}'
}

vmk_reset() {
	K_KIND='' K_ORIGIN='' K_IMAGE='' K_RELEASE='' K_CONFIG='' K_MODROOT=''
	K_BOOT='' K_BOOT_METHOD='' K_PAGE=''
}

# vmk_is_arm64_image FILE: an arm64 Image: "ARM\x64" at 0x38 of the
# kernel's boot header (Documentation/arm64/booting.rst), raw or gzip'd.
vmk_is_arm64_image() {
	local magic
	[[ -f $1 && -r $1 ]] || return 1
	magic=$(od -An -tx1 -j 56 -N 4 < <(vmk_cat_image "$1" 2>/dev/null) | tr -d ' ')
	[[ $magic == 41524d64 ]]
}

# vmk_cat_image FILE: the image, decompressed when gzip'd. Its readers stop
# early: read it through < <(...), where its SIGPIPE fails nothing.
vmk_cat_image() {
	if [[ $(od -An -tx1 -N 2 -- "$1" | tr -d ' ') == 1f8b ]]; then
		gzip -dc -- "$1"
	else
		cat -- "$1"
	fi
}

# vmk_arm64_release FILE: the release in the image's "Linux version" banner.
vmk_arm64_release() {
	LC_ALL=C grep -a -o -m1 'Linux version [^ ]*' < <(vmk_cat_image "$1" 2>/dev/null) |
		awk 'NR == 1 {print $3}'
}

# vmk_arm64_page FILE: the page size the Image header's flags declare
# (bits 1-2: 1 4K, 2 16K, 3 64K), or nothing.
vmk_arm64_page() {
	local flags
	flags=$(od -An -tu8 -j 24 -N 8 < <(vmk_cat_image "$1" 2>/dev/null) | tr -d ' ')
	[[ $flags =~ ^[0-9]+$ ]] || return 0
	case $(((flags >> 1) & 3)) in
	1) echo 4096 ;;
	2) echo 16384 ;;
	3) echo 65536 ;;
	esac
}

vmk_set_image() {
	if [[ $VM_ARCH == arm64 ]]; then
		vmk_set_arm64_image "$1"
		return 0
	fi
	if ! vmk_is_bzimage "$1" && vmk_is_arm64_image "$1"; then
		die "$1 is an arm64 kernel Image: boot it with --arch arm64"
	fi
	vmk_is_bzimage "$1" ||
		die "not a Linux x86 kernel image (no bzImage 'HdrS' magic at 0x202): $1"
	K_IMAGE=$(realpath -- "$1")
	K_RELEASE=$(vmk_bzimage_release "$K_IMAGE") || K_RELEASE=''
	[[ -n $K_RELEASE ]] || die "cannot read the kernel release from $1"
}

vmk_set_arm64_image() {
	if ! vmk_is_arm64_image "$1"; then
		vmk_is_bzimage "$1" && die "$1 is an x86 bzImage, not an arm64 Image (--arch arm64)"
		die "not a Linux arm64 kernel Image (no 'ARM\\x64' magic at 0x38): $1"
	fi
	K_IMAGE=$(realpath -- "$1")
	K_RELEASE=$(vmk_arm64_release "$K_IMAGE") || K_RELEASE=''
	[[ -n $K_RELEASE ]] || die "cannot read the kernel release from $1 (no 'Linux version' banner)"
	K_PAGE=$(vmk_arm64_page "$K_IMAGE")
}

# vmk_config_has CONFIG SYMBOL: prints y, m or nothing.
vmk_config_has() {
	[[ -n $1 && -f $1 ]] || return 0
	sed -n "s/^CONFIG_$2=\\([ym]\\)\$/\\1/p" "$1"
}

# A kernel build directory: arch/x86/boot/bzImage (arm64:
# arch/arm64/boot/Image) and .config. When one of the modules the guest
# needs is =m, modules_install into the cache.
vmk_from_builddir() {
	local dir=$1 rel=arch/x86/boot/bzImage img sym need=0 dest
	local -a mk_arch=()
	if [[ $VM_ARCH == arm64 ]]; then
		rel=arch/arm64/boot/Image mk_arch=(ARCH=arm64)
	fi
	img=$dir/$rel
	[[ -f $img ]] || img=$dir/${rel##*/}
	[[ -f $img ]] || die "kernel directory $dir has no $rel (not built?)"
	vmk_set_image "$img"
	K_KIND=builddir
	[[ -f $dir/.config ]] && K_CONFIG=$(realpath -- "$dir/.config")
	[[ -z $K_CONFIG && -f $dir/config ]] && K_CONFIG=$(realpath -- "$dir/config")
	if [[ -d $dir/lib/modules/$K_RELEASE ]]; then
		K_MODROOT=$(realpath -- "$dir")
		return 0
	fi
	for sym in BTRFS_FS VIRTIO_BLK VIRTIO_PCI; do
		[[ $(vmk_config_has "$K_CONFIG" "$sym") == m ]] && need=1
	done
	((need)) || return 0
	[[ -f $dir/Makefile ]] || die "$dir: modules needed (.config has =m) but no Makefile to install them"
	dest=$DIOGAP_CACHE/vm/modtree/$K_RELEASE-$(sha256sum "$K_IMAGE" | cut -c1-16)
	if [[ ! -f $dest/.installed ]]; then
		log "installing modules of $dir into $dest"
		rm -rf "$dest" && mkdir -p "$dest"
		make -s -C "$dir" "${mk_arch[@]}" INSTALL_MOD_PATH="$dest" INSTALL_MOD_STRIP=1 \
			modules_install >&2 || die "make modules_install failed in $dir"
		touch "$dest/.installed"
	fi
	K_MODROOT=$dest
}

# vmk_unpack_deb DEB: unpack a Debian kernel package into the cache and set
# K_IMAGE, K_RELEASE, K_CONFIG, K_MODROOT from it.
vmk_unpack_deb() {
	local deb=$1 root stem vmlinuz
	stem=$(basename -- "$deb" .deb)
	root=$DIOGAP_CACHE/debs/root/$stem-$(sha256sum -- "$deb" | cut -c1-12)
	if [[ ! -f $root/.unpacked ]]; then
		rm -rf "$root" && mkdir -p "$root"
		dpkg-deb -x "$deb" "$root" || die "cannot unpack $deb"
		touch "$root/.unpacked"
	fi
	vmlinuz=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n 1)
	[[ -n $vmlinuz ]] || die "$deb contains no boot/vmlinuz-*: not a kernel image package"
	vmk_set_image "$vmlinuz"
	[[ -f $root/boot/config-$K_RELEASE ]] && K_CONFIG=$root/boot/config-$K_RELEASE
	[[ -d $root/lib/modules/$K_RELEASE ]] && K_MODROOT=$root
	return 0
}

# vmk_fetch_package NAME: prints the path of the package's .deb in the cache,
# downloading it with apt-get download when it is not there yet.
vmk_fetch_package() {
	local name=$1 dir=$DIOGAP_CACHE/debs deb
	mkdir -p "$dir"
	deb=$(vmk_cached_deb "$dir" "$name")
	if [[ -z $deb ]]; then
		log "downloading Debian package $name"
		(cd "$dir" && apt-get download -q "$name" >&2 2>"$dir/.apt.err") || {
			cat "$dir/.apt.err" >&2
			die "apt-get download $name failed (not a known package? try apt-cache search $name)"
		}
		deb=$(vmk_cached_deb "$dir" "$name")
	fi
	[[ -n $deb ]] || die "apt-get download $name left no ${name}_*.deb in $dir"
	echo "$deb"
}

vmk_cached_deb() {
	local f
	for f in "$1/$2"_*.deb; do
		[[ -f $f ]] && echo "$f"
	done | sort -V | tail -n 1
}

# vmk_resolve SPEC: see the top of this file.
vmk_resolve() {
	local spec=$1 deb
	vmk_reset
	K_ORIGIN=$spec
	if [[ -d $spec ]]; then
		vmk_from_builddir "$spec"
	elif [[ -f $spec && $spec == *.deb ]]; then
		K_KIND=deb
		K_ORIGIN=$(realpath -- "$spec")
		vmk_unpack_deb "$spec"
	elif [[ -e $spec ]]; then
		K_KIND=bzimage
		K_ORIGIN=$(realpath -- "$spec")
		vmk_set_image "$spec"
		vmk_sibling_config "$spec"
	elif [[ $spec != */* && $spec =~ ^[a-z0-9][a-z0-9.+~-]+$ ]]; then
		K_KIND=package
		deb=$(vmk_fetch_package "$spec")
		vmk_unpack_deb "$deb"
	else
		die "--kernel $spec: no such file or directory, and not a Debian package name"
	fi
}

# A bare bzImage: use a config file next to it if there is one
# (harness/build-kernel caches bzImage and .config side by side).
vmk_sibling_config() {
	local d f
	d=$(dirname -- "$1")
	for f in "$d/.config" "$d/config" "$d/config-$K_RELEASE"; do
		if [[ -f $f ]]; then
			K_CONFIG=$(realpath -- "$f")
			return 0
		fi
	done
}

# vmk_u32 FILE OFFSET / vmk_u8 FILE OFFSET: little-endian header fields.
vmk_u32() { od -An -tu4 -j "$2" -N 4 -- "$1" | tr -d ' '; }
vmk_u8() { od -An -tu1 -j "$2" -N 1 -- "$1" | tr -d ' '; }

# vmk_has_pvh ELF: the ELF carries the PVH entry note
# (XEN_ELFNOTE_PHYS32_ENTRY, type 0x12), so QEMU can boot it directly.
vmk_has_pvh() {
	[[ $(od -An -c -N 4 -- "$1" 2>/dev/null | tr -d ' ') == 177ELF ]] || return 1
	LC_ALL=C readelf -nW "$1" 2>/dev/null |
		grep -Eq 'Xen[[:space:]]+0x[0-9a-f]+[[:space:]].*(0x00000012|PHYS32_ENTRY)'
}

# vmk_unpack_payload BZIMAGE OUT: the bzImage's compressed payload,
# decompressed (the decompressors may complain about the size the kernel
# build appends; the ELF check afterwards is what counts).
vmk_unpack_payload() {
	local img=$1 out=$2 sects off len start magic
	(($(od -An -tu2 -j 518 -N 2 -- "$img" | tr -d ' ') >= 0x208)) || return 1
	sects=$(vmk_u8 "$img" 497)
	((sects == 0)) && sects=4
	off=$(vmk_u32 "$img" 584) len=$(vmk_u32 "$img" 588)
	start=$(((sects + 1) * 512 + off))
	magic=$(od -An -tx1 -j "$start" -N 4 -- "$img" | tr -d ' ')
	dd if="$img" iflag=skip_bytes,count_bytes skip="$start" count="$len" bs=1M status=none |
		case "$magic" in
		1f8b*) gzip -dc ;;
		fd377a58) xz -dc ;;
		5d00*) xz --format=lzma -dc ;;
		28b52ffd) zstd -qdc ;;
		02214c18) lz4 -dc ;;
		425a68*) bzip2 -dc ;;
		*) cat >/dev/null; return 1 ;;
		esac >"$out" 2>/dev/null || true
	vmk_has_pvh "$out"
}

# vmk_boot_image_arm64: QEMU boots an arm64 Image as it is; a gzip'd one
# is unpacked once into the cache (QEMU could, at every boot).
vmk_boot_image_arm64() {
	local key dir
	K_BOOT=$K_IMAGE K_BOOT_METHOD=image
	[[ $(od -An -tx1 -N 2 -- "$K_IMAGE" | tr -d ' ') == 1f8b ]] || return 0
	key=$(sha256sum "$K_IMAGE" | cut -c1-16)
	dir=$DIOGAP_CACHE/vm/vmlinux
	mkdir -p "$dir"
	if [[ ! -s $dir/$key.Image ]]; then
		gzip -dc -- "$K_IMAGE" >"$dir/$key.tmp" || die "cannot unpack $K_IMAGE"
		mv "$dir/$key.tmp" "$dir/$key.Image"
	fi
	touch "$dir/$key.Image"
	K_BOOT=$dir/$key.Image K_BOOT_METHOD=image-gunzipped
}

# vmk_boot_image: set K_BOOT to what QEMU boots: the kernel's own vmlinux
# through its PVH entry when the bzImage has one (the guest then skips
# decompressing itself, seconds under TCG), else the bzImage. The same
# kernel either way; meta.json records which (K_BOOT_METHOD). Cached by the
# bzImage's hash. DIOGAP_VM_BOOT=bzimage turns it off.
vmk_boot_image() {
	local key dir
	if [[ $VM_ARCH == arm64 ]]; then
		vmk_boot_image_arm64
		return 0
	fi
	K_BOOT=$K_IMAGE K_BOOT_METHOD=bzimage
	[[ ${DIOGAP_VM_BOOT:-pvh} == pvh ]] || return 0
	[[ -z $K_CONFIG || $(vmk_config_has "$K_CONFIG" PVH) == y ]] || return 0
	key=$(sha256sum "$K_IMAGE" | cut -c1-16)
	dir=$DIOGAP_CACHE/vm/vmlinux
	mkdir -p "$dir"
	# Unpacked kernels are big (50+ MB): those unused for two weeks go.
	find "$dir" -maxdepth 1 -type f -mtime +14 -delete 2>/dev/null || true
	[[ -e $dir/$key.none ]] && return 0
	if [[ ! -s $dir/$key.elf ]]; then
		if vmk_unpack_payload "$K_IMAGE" "$dir/$key.tmp"; then
			mv "$dir/$key.tmp" "$dir/$key.elf"
		else
			rm -f "$dir/$key.tmp"
			touch "$dir/$key.none"
			return 0
		fi
	fi
	touch "$dir/$key.elf"
	K_BOOT=$dir/$key.elf K_BOOT_METHOD=pvh
}
