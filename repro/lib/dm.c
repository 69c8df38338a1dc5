// SPDX-License-Identifier: GPL-2.0
/*
 * dm.c - device-mapper through its ioctls (see dm.h): create a flakey
 * device, switch its table, query, list and remove devices. One ioctl
 * buffer per call: a struct dm_ioctl header, then the call's data.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "dm.h"

#define DM_BUF 16384

int dg_dm_fail(char *err, size_t n, int e, const char *fmt, ...)
{
	va_list ap;
	size_t l;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	l = strlen(err);
	if (e && l < n)
		snprintf(err + l, n - l, ": %s", strerror(e));
	return -e;
}

/* The kernel's 32-bit device number encoding (huge_encode_dev). */
static uint64_t dev_encode(dev_t d)
{
	unsigned ma = major(d), mi = minor(d);

	return (mi & 0xff) | ((uint64_t)ma << 8) | ((uint64_t)(mi & ~0xffu) << 12);
}

static dev_t dev_decode(uint64_t v)
{
	return makedev((unsigned)((v & 0xfff00) >> 8),
		       (unsigned)((v & 0xff) | ((v >> 12) & 0xfff00)));
}

/* A zeroed ioctl buffer with its header filled for NAME (may be NULL). */
static struct dm_ioctl *dm_buf(const char *name)
{
	struct dm_ioctl *io = calloc(1, DM_BUF);

	if (!io)
		return NULL;
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = DM_BUF;
	io->data_start = sizeof(*io);
	if (name)
		snprintf(io->name, sizeof(io->name), "%s", name);
	return io;
}

/* Run one ioctl on the control device: 0 or -errno (err says which). */
static int dm_call(unsigned long cmd, const char *what, struct dm_ioctl *io,
		   char *err, size_t n)
{
	int fd = open(DG_DM_CONTROL, O_RDWR | O_CLOEXEC), e;

	if (fd < 0)
		return dg_dm_fail(err, n, errno, "open %s (device mapper: CONFIG_BLK_DEV_DM or module dm-mod)",
			    DG_DM_CONTROL);
	e = ioctl(fd, cmd, io) < 0 ? errno : 0;
	close(fd);
	if (e)
		return dg_dm_fail(err, n, e, "device mapper %s %s", what, io->name[0] ? io->name : "");
	return 0;
}

static int dev_sectors(const char *dev, uint64_t *sectors, char *err, size_t n)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC), e;
	uint64_t bytes;

	if (fd < 0)
		return dg_dm_fail(err, n, errno, "open %s", dev);
	e = ioctl(fd, BLKGETSIZE64, &bytes) < 0 ? errno : 0;
	close(fd);
	if (e)
		return dg_dm_fail(err, n, e, "BLKGETSIZE64 %s", dev);
	*sectors = bytes / 512;
	return 0;
}

/* Load the table t[0..nt) (inactive until a resume). */
static int dm_load(const char *name, const struct dg_dm_target *t, size_t nt, char *err,
		   size_t n)
{
	struct dm_ioctl *io = dm_buf(name);
	size_t at, i;
	int rc;

	if (!io)
		return dg_dm_fail(err, n, ENOMEM, "device mapper buffer");
	at = io->data_start;
	for (i = 0; i < nt; i++) {
		struct dm_target_spec *ts = (struct dm_target_spec *)((char *)io + at);
		size_t plen = strlen(t[i].params) + 1, next;

		/* each spec and its parameters, 8-byte aligned */
		next = (sizeof(*ts) + plen + 7) & ~(size_t)7;
		if (at + next > DM_BUF) {
			free(io);
			return dg_dm_fail(err, n, EINVAL, "table too long for %s", name);
		}
		ts->sector_start = t[i].start;
		ts->length = t[i].length;
		snprintf(ts->target_type, sizeof(ts->target_type), "%s", t[i].type);
		memcpy(ts + 1, t[i].params, plen);
		ts->next = (uint32_t)next;
		at += next;
	}
	io->target_count = (uint32_t)nt;
	rc = dm_call(DM_TABLE_LOAD, "table load", io, err, n);
	free(io);
	return rc;
}

/* Suspend (without freezing the filesystem) or resume NAME. */
static int dm_suspend(const char *name, bool suspend, char *err, size_t n)
{
	struct dm_ioctl *io = dm_buf(name);
	int rc;

	if (!io)
		return dg_dm_fail(err, n, ENOMEM, "device mapper buffer");
	io->flags = suspend ? DM_SUSPEND_FLAG | DM_SKIP_LOCKFS_FLAG : 0;
	rc = dm_call(DM_DEV_SUSPEND, suspend ? "suspend" : "resume", io, err, n);
	free(io);
	return rc;
}

int dg_dm_switch_table(const char *name, const struct dg_dm_target *t, size_t nt, char *err,
		       size_t n)
{
	int rc = dm_load(name, t, nt, err, n);

	if (!rc)
		rc = dm_suspend(name, true, err, n);
	if (!rc)
		rc = dm_suspend(name, false, err, n);
	return rc;
}

int dg_dm_switch(const char *name, uint64_t sectors, const char *target,
		 const char *params, char *err, size_t n)
{
	struct dg_dm_target t = { 0, sectors, target, params };
	int rc = dm_load(name, &t, 1, err, n);

	if (!rc)
		rc = dm_suspend(name, true, err, n);
	if (!rc)
		rc = dm_suspend(name, false, err, n);
	return rc;
}

int dg_dm_remove(const char *name, bool deferred, char *err, size_t n)
{
	struct dm_ioctl *io = dm_buf(name);
	int rc;

	if (!io)
		return dg_dm_fail(err, n, ENOMEM, "device mapper buffer");
	io->flags = deferred ? DM_DEFERRED_REMOVE : 0;
	rc = dm_call(DM_DEV_REMOVE, "remove", io, err, n);
	free(io);
	return rc;
}

int dg_flakey_params(const char *base, bool drop, char *out, size_t len)
{
	char dev[64], off[32];

	if (sscanf(base, "%63s %31s", dev, off) != 2)
		return -EINVAL;
	if ((size_t)snprintf(out, len, drop ? "%s %s 0 180 1 drop_writes" : "%s %s 180 0",
			     dev, off) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int dg_dm_create_flakey(const char *name, const char *dev, struct dg_dm_dev *out,
			char *err, size_t n)
{
	struct dm_ioctl *io;
	struct stat st;
	char base[64], params[128];
	uint64_t sectors = 0;
	int rc;

	if (stat(dev, &st) < 0)
		return dg_dm_fail(err, n, errno, "stat %s", dev);
	if (!S_ISBLK(st.st_mode))
		return dg_dm_fail(err, n, ENOTBLK, "%s", dev);
	rc = dev_sectors(dev, &sectors, err, n);
	if (rc)
		return rc;
	io = dm_buf(name);
	if (!io)
		return dg_dm_fail(err, n, ENOMEM, "device mapper buffer");
	rc = dm_call(DM_DEV_CREATE, "create", io, err, n);
	if (!rc) {
		memset(out, 0, sizeof(*out));
		snprintf(out->name, sizeof(out->name), "%s", name);
		out->dev = dev_decode(io->dev);
		out->sectors = sectors;
	}
	free(io);
	if (rc)
		return rc;
	snprintf(base, sizeof(base), "%u:%u 0", major(st.st_rdev), minor(st.st_rdev));
	dg_flakey_params(base, false, params, sizeof(params));
	rc = dg_dm_switch(name, sectors, "flakey", params, err, n);
	if (rc) {
		char e2[128];

		dg_dm_remove(name, false, e2, sizeof(e2));
		return rc;
	}
	snprintf(out->target, sizeof(out->target), "flakey");
	snprintf(out->params, sizeof(out->params), "%s", params);
	out->targets = 1;
	return 0;
}

/* The live table of the device named NAME, or (NAME NULL) numbered DEV. */
static int dm_query(const char *name, dev_t dev, struct dg_dm_dev *out, char *err, size_t n)
{
	struct dm_ioctl *io = dm_buf(name);
	struct dm_target_spec *ts;
	int rc;

	if (!io)
		return dg_dm_fail(err, n, ENOMEM, "device mapper buffer");
	if (!name)
		io->dev = dev_encode(dev);
	io->flags = DM_STATUS_TABLE_FLAG;
	rc = dm_call(DM_TABLE_STATUS, "table status", io, err, n);
	if (rc == -ENXIO && !name)
		dg_dm_fail(err, n, 0, "%u:%u is not a device-mapper device", major(dev), minor(dev));
	if (rc) {
		free(io);
		return rc;
	}
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", io->name);
	out->dev = dev_decode(io->dev);
	out->targets = io->target_count;
	if (io->target_count && io->data_start + sizeof(*ts) < io->data_size) {
		ts = (struct dm_target_spec *)((char *)io + io->data_start);
		out->sectors = ts->length;
		snprintf(out->target, sizeof(out->target), "%.*s",
			 (int)sizeof(ts->target_type), ts->target_type);
		snprintf(out->params, sizeof(out->params), "%s", (char *)(ts + 1));
	}
	free(io);
	return 0;
}

int dg_dm_query(dev_t dev, struct dg_dm_dev *out, char *err, size_t n)
{
	return dm_query(NULL, dev, out, err, n);
}

int dg_dm_query_name(const char *name, struct dg_dm_dev *out, char *err, size_t n)
{
	return dm_query(name, 0, out, err, n);
}

int dg_dm_list(void (*fn)(const char *name, void *arg), void *arg, char *err, size_t n)
{
	struct dm_ioctl *io = dm_buf(NULL);
	struct dm_name_list *nl;
	size_t at;
	int rc;

	if (!io)
		return dg_dm_fail(err, n, ENOMEM, "device mapper buffer");
	rc = dm_call(DM_LIST_DEVICES, "list", io, err, n);
	if (rc || (io->flags & DM_BUFFER_FULL_FLAG)) {
		free(io);
		return rc ? rc : dg_dm_fail(err, n, ENOBUFS, "device mapper list");
	}
	at = io->data_start;
	nl = (struct dm_name_list *)((char *)io + at);
	if (nl->dev) {
		for (;;) {
			fn(nl->name, arg);
			if (!nl->next || at + nl->next >= DM_BUF)
				break;
			at += nl->next;
			nl = (struct dm_name_list *)((char *)io + at);
		}
	}
	free(io);
	return 0;
}

int dg_dm_node(dev_t dev, char *path, size_t len, char *err, size_t n)
{
	struct stat st;

	snprintf(path, len, "/dev/dm-%u", minor(dev));
	if (stat(path, &st) == 0) {
		if (S_ISBLK(st.st_mode) && st.st_rdev == dev)
			return 0;
		return dg_dm_fail(err, n, EEXIST, "%s is not the device %u:%u", path, major(dev), minor(dev));
	}
	if (errno != ENOENT)
		return dg_dm_fail(err, n, errno, "stat %s", path);
	/* no devtmpfs node: make our own */
	if (mknod(path, S_IFBLK | 0600, dev) < 0)
		return dg_dm_fail(err, n, errno, "mknod %s", path);
	return 0;
}
