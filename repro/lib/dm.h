/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm.h - device-mapper through its ioctls on /dev/mapper/control (no
 * dmsetup, no udev: the busybox guest has devtmpfs, which makes
 * /dev/mapper/control and /dev/dm-N), and the power cut the durability
 * reproducers do with it (dm.c, cut.c).
 *
 * The power cut is fstests' (common/dmflakey): the scratch disk sits under
 * a dm-flakey target that passes everything (`0 N flakey DEV 0 180 0`);
 * the cut loads `0 N flakey DEV 0 0 180 1 drop_writes` (every write from
 * then on completes and is thrown away), unmounts, loads the first table
 * again and mounts: what the filesystem made durable before the cut is
 * what it finds (log replay included). The table switches suspend the
 * device without freezing the filesystem (DM_SKIP_LOCKFS_FLAG): a freeze
 * would write everything out, which is what the cut must not do.
 *
 * Every function returns 0 or -errno, with one line in err.
 */
#ifndef DIOGAP_DM_H
#define DIOGAP_DM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

/* Write "fmt...: strerror(e)" (no ": ..." when e is 0) into err[n] and
 * return -e: every function below reports this way. */
int dg_dm_fail(char *err, size_t n, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define DG_DM_CONTROL "/dev/mapper/control"

/* One device-mapper device and the first target of its live table. */
struct dg_dm_dev {
	char name[128];
	dev_t dev;              /* its block device (/dev/dm-MINOR) */
	uint64_t sectors;       /* the target's length, 512-byte sectors */
	char target[16];        /* "flakey", "linear", ... ("" when no table) */
	char params[512];       /* the target's table line ("253:0 0 180 0") */
	unsigned targets;       /* targets in the live table */
};

/* Create NAME over the block device DEV (a path) as a flakey target that
 * is always up, and resume it: dev->dev is the new device. */
int dg_dm_create_flakey(const char *name, const char *dev, struct dg_dm_dev *out,
			char *err, size_t n);
/* Replace the live table of NAME by `0 SECTORS TARGET PARAMS`: load it,
 * suspend without freezing the filesystem (in-flight I/O completes),
 * resume (the new table goes live). */
int dg_dm_switch(const char *name, uint64_t sectors, const char *target,
		 const char *params, char *err, size_t n);
/* One target of a table: sectors [start, start + length) of the device
 * go to TYPE with PARAMS ("253:0 2048 180 0"). */
struct dg_dm_target {
	uint64_t start, length;
	const char *type, *params;
};
/* dg_dm_switch with a table of nt targets (in order, covering the device). */
int dg_dm_switch_table(const char *name, const struct dg_dm_target *t, size_t nt, char *err,
		       size_t n);
/* Remove NAME; deferred: when its last user closes it (a mounted fs). */
int dg_dm_remove(const char *name, bool deferred, char *err, size_t n);
/* The device-mapper device whose block device is DEV: 0 and *out, -ENXIO
 * when DEV is not one, or another -errno (no device mapper: -ENOENT from
 * opening the control device). */
int dg_dm_query(dev_t dev, struct dg_dm_dev *out, char *err, size_t n);
int dg_dm_query_name(const char *name, struct dg_dm_dev *out, char *err, size_t n);
/* Call fn(name, arg) for every device-mapper device; 0 or -errno. */
int dg_dm_list(void (*fn)(const char *name, void *arg), void *arg, char *err, size_t n);
/* /dev/dm-MINOR for dev (made with mknod if devtmpfs did not). */
int dg_dm_node(dev_t dev, char *path, size_t len, char *err, size_t n);

/* The flakey tables: "MAJ:MIN OFFSET 180 0" (always up) and
 * "MAJ:MIN OFFSET 0 180 1 drop_writes" (always down, writes dropped).
 * base: a flakey table line whose first two words are taken. */
int dg_flakey_params(const char *base, bool drop, char *out, size_t len);

/* ---- the power cut (cut.c) ---------------------------------------------- */
struct dg_mount {
	char point[1024];       /* mount point */
	char source[1024];      /* the block device mounted */
	char fstype[64];
	char opts[1024];        /* filesystem options for mount(2), no rw/ro */
	unsigned long flags;    /* MS_* from the mount's options */
	dev_t dev;              /* the source's device number */
};
/* The mount holding PATH (/proc/self/mountinfo; the longest mount point
 * that contains realpath(PATH)). */
int dg_mount_of(const char *path, struct dg_mount *m, char *err, size_t n);
/* Is m->source a dm-flakey device (its single target)? 0 and *d; else
 * -errno and why in err, a reason fit for SKIP ("no dm-flakey under the
 * scratch: ..."). */
int dg_cut_ready(const struct dg_mount *m, struct dg_dm_dev *d, char *err, size_t n);
/* The power cut: drop writes, unmount (the filesystem's last writes are
 * lost), let writes through again, mount again with the same source, type,
 * flags and options (log replay happens here). Nothing may hold files of
 * the mount open. Returns 0, or -errno with what failed in err; the
 * device lets writes through again on every path that can. *ms gets the
 * cut's duration in microseconds. */
int dg_cut(const struct dg_mount *m, const struct dg_dm_dev *d, uint64_t *us,
	   char *err, size_t n);

/* The verdict of a power cut (dg_cut) that failed with err: a filesystem
 * that does not mount again after it ("Structure needs cleaning", EIO)
 * lost everything, FAIL lost-after-cut; anything else BROKEN. Sets r's
 * diag; returns the verdict. */
struct dg_result;
int dg_cut_failed(struct dg_result *r, const char *err);

#endif
