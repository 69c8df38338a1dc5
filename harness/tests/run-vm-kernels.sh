#!/usr/bin/env bash
# run-vm's kernel handling, without booting: every way to name a kernel
# (package, .deb, bzImage, build directory), the bzImage checks, and the
# modules packed for Debian's 6.1 and 6.12 cloud kernels: the needed ones and
# their dependencies are there, decompressed, and the load order puts every
# dependency (modules.dep) before its user.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"
# shellcheck source=harness/lib/vm-kernel.sh
. "$DIOGAP_ROOT/harness/lib/vm-kernel.sh"
# shellcheck source=harness/lib/vm-modules.sh
. "$DIOGAP_ROOT/harness/lib/vm-modules.sh"

PKGS=(linux-image-6.1.0-56-cloud-amd64 linux-image-6.12.117+deb12-cloud-amd64)
T=''

setup() {
	T=$(mktemp -d /var/tmp/diogap-t.XXXXXX)
	on_exit rm -rf "$T"
}

# in_order ORDER_FILE MODDIR: every module's modules.dep dependencies that
# were packed come before it in ORDER_FILE.
in_order() {
	local order=$1 dir=$2 line mod dep n pos_m pos_d
	declare -A pos=()
	n=0
	while read -r mod; do
		n=$((n + 1))
		pos[${mod%.ko}]=$n
	done <"$order"
	while IFS= read -r line; do
		vmm_name mod "${line%%:*}"
		pos_m=${pos[$mod]:-}
		[[ -n $pos_m ]] || continue
		for dep in ${line#*:}; do
			vmm_name dep "$dep"
			pos_d=${pos[$dep]:-}
			[[ -n $pos_d ]] || { echo "# $mod needs $dep, which is not packed"; return 1; }
			((pos_d < pos_m)) || { echo "# $dep loads after its user $mod"; return 1; }
		done
	done <"$dir/modules.dep"
}

# is_plain_ko FILE: an uncompressed ELF module.
is_plain_ko() { [[ $(od -An -c -N 4 -- "$1" | tr -d ' ') == 177ELF ]]; }

test_package() {
	local pkg=$1 rel stage=$T/stage.$1 m ok=1
	vmk_resolve "$pkg"
	rel=$K_RELEASE
	check_eq "$pkg: kind package" package "$K_KIND"
	check "$pkg: release read from the bzImage header ($rel)" test "linux-image-$rel" = "$pkg"
	check "$pkg: config and module tree found" test -f "$K_CONFIG" -a -d "$K_MODROOT/lib/modules/$rel"
	vmm_stage "$K_MODROOT" "$rel" "$stage"
	check "$pkg: btrfs is packed" grep -qx 'btrfs.ko' "$stage/order"
	check "$pkg: virtio_blk is packed" grep -qx 'virtio_blk.ko' "$stage/order"
	check_eq "$pkg: nothing wanted is missing" "" "${VMM_MISSING[*]}"
	check "$pkg: every dependency loads before its user" \
		in_order "$stage/order" "$K_MODROOT/lib/modules/$rel"
	check_eq "$pkg: btrfs loads last but the optional power-cut modules" btrfs.ko \
		"$(grep -vx 'dm_mod.ko\|dm_flakey.ko' "$stage/order" | tail -n 1)"
	check "$pkg: dm_flakey is packed (the power cut)" grep -qx 'dm_flakey.ko' "$stage/order"
	while read -r m; do is_plain_ko "$stage/$m" || ok=0; done <"$stage/order"
	check "$pkg: every packed module is a decompressed .ko" test "$ok" = 1
	for m in $(vmk_builtin_wanted "$K_MODROOT/lib/modules/$rel"); do
		check "$pkg: built-in $m is not packed" test ! -e "$stage/$m.ko"
	done
}

# vmk_builtin_wanted MODDIR: the wanted modules this kernel has built in.
vmk_builtin_wanted() {
	local n
	for n in "${VMM_WANTED[@]}"; do
		grep -q "/$n\.ko\$" "$1/modules.builtin" && echo "$n"
	done
	return 0
}

test_specs() {
	local deb rel rc
	vmk_resolve "${PKGS[1]}"
	rel=$K_RELEASE
	deb=$(vmk_cached_deb "$DIOGAP_CACHE/debs" "${PKGS[1]}")
	vmk_resolve "$deb"
	check_eq "a .deb path: kind deb, same release" "deb $rel" "$K_KIND $K_RELEASE"
	vmk_resolve "$K_IMAGE"
	check_eq "its vmlinuz as a path: kind bzimage, same release" "bzimage $rel" "$K_KIND $K_RELEASE"
	check_eq "a bare bzImage brings no modules" "" "$K_MODROOT"
	mkdir -p "$T/kdir/lib/modules/$rel"
	cp "$K_IMAGE" "$T/kdir/bzImage"
	vmk_resolve "$T/kdir"
	check_eq "a directory with bzImage and lib/modules: kind builddir, its modules" \
		"builddir $T/kdir" "$K_KIND $K_MODROOT"
	rc=0
	(vmk_resolve /etc/hostname) 2>"$T/err" || rc=$?
	check_eq "not a kernel: exit 2" 2 "$rc"
	check "not a kernel: says so" grep -q "no bzImage 'HdrS' magic" "$T/err"
	head -c 600 "$K_IMAGE" >"$T/short"
	rc=0
	(vmk_resolve "$T/short") 2>"$T/err" || rc=$?
	check_eq "a truncated bzImage header is refused (exit 2)" 2 "$rc"
}

test_pvh() {
	vmk_resolve "${PKGS[1]}"
	vmk_boot_image
	check_eq "6.12 (CONFIG_PVH=y) boots its vmlinux through PVH" pvh "$K_BOOT_METHOD"
	check "the vmlinux has the PVH note" vmk_has_pvh "$K_BOOT"
	DIOGAP_VM_BOOT=bzimage vmk_boot_image
	check_eq "DIOGAP_VM_BOOT=bzimage boots the bzImage" "bzimage $K_IMAGE" "$K_BOOT_METHOD $K_BOOT"
}

main() {
	local p
	setup
	for p in "${PKGS[@]}"; do
		test_package "$p"
	done
	test_specs
	test_pvh
	t_done
}

main "$@"
