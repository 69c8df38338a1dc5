# shellcheck shell=bash
# Scratch filesystems for the reproducer checks and benchmark: a btrfs (or
# ext4) image on a loop device, tmpfs and ramfs mounts, all inside this
# run's scratch directory (DG_RUN_DIR from scratch.sh), so scratch_release
# unmounts and detaches them on every exit path. Sourced after scratch.sh.

# scratch_image_fs FSTYPE NAME SIZE [MOUNT_OPTS]: make FSTYPE on a loop
# device, mount it on $DG_RUN_DIR/NAME, print the mount point.
scratch_image_fs() {
	local fstype=$1 name=$2 size=$3 opts=${4:-defaults} img dev mnt
	img=$DG_RUN_DIR/$name.img
	mnt=$DG_RUN_DIR/$name
	truncate -s "$size" "$img" || die "cannot create $img"
	case "$fstype" in
	btrfs) mkfs.btrfs -q -f "$img" >/dev/null 2>&1 || die "mkfs.btrfs $img failed" ;;
	ext4) mkfs.ext4 -q -F "$img" >/dev/null 2>&1 || die "mkfs.ext4 $img failed" ;;
	*) die "scratch_image_fs: unsupported fstype $fstype" ;;
	esac
	dev=$(losetup --find --show --direct-io=on "$img") || die "losetup failed for $img"
	mkdir -p "$mnt"
	mount -t "$fstype" -o "$opts" "$dev" "$mnt" || die "mount $dev ($fstype, -o $opts) failed"
	echo "$mnt"
}

# scratch_remount MNT OPTS: unmount and mount the same device again with
# other options (a plain remount cannot change every btrfs option).
scratch_remount() {
	local mnt=$1 opts=$2 dev fstype
	dev=$(findmnt -n -o SOURCE --target "$mnt") || die "$mnt is not mounted"
	fstype=$(findmnt -n -o FSTYPE --target "$mnt")
	umount "$mnt" || die "umount $mnt failed"
	mount -t "$fstype" -o "$opts" "$dev" "$mnt" || die "mount $dev -o $opts failed"
}

# scratch_mem_fs TYPE NAME [OPTS]: mount tmpfs/ramfs on $DG_RUN_DIR/NAME.
scratch_mem_fs() {
	local type=$1 name=$2 opts=${3:-defaults} mnt
	mnt=$DG_RUN_DIR/$name
	mkdir -p "$mnt"
	mount -t "$type" -o "$opts" "$type" "$mnt" || die "mount $type on $mnt failed"
	echo "$mnt"
}
