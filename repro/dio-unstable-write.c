// SPDX-License-Identifier: GPL-2.0
/*
 * dio-unstable-write - O_DIRECT writes from a buffer another thread keeps changing
 *
 * Fixes, fstests, parameters, may-hang: the dg_repro table at the end of
 * this file (--describe, --describe --json).
 *
 * Thread 1 writes --size bytes with O_DIRECT (--chunk bytes per call) from
 * a buffer whose last byte of every 512 a second thread keeps flipping
 * (XOR 0xff, in a loop) for as long as the writes run. The device reads
 * the user pages while they change: with data checksums, btrfs computes
 * the checksum from one version of a page and stores another, so the
 * read-back fails with EIO ("csum failed" in the kernel log); on a profile
 * with two or more copies (DUP, RAID1, RAID1C3/4) each copy is read from
 * the pages at its own moment, so the copies differ (silently with
 * nodatasum). Kernels with 968f19c5b1b7 (v6.15, 6.12.77) turn O_DIRECT
 * writes to checksummed files into buffered ones; 7c2830f00c3e (v7.0)
 * does the same for profiles with duplication. 6.1 has neither.
 *
 * After the writes: fsync, the range dropped from the page cache
 * (POSIX_FADV_DONTNEED, else /proc/sys/vm/drop_caches), read back with
 * O_DIRECT. EIO: FAIL eio-read (the first failing offset, found by
 * reading alignment units). Content: every byte but the flipped one of
 * each sector must be exactly the pattern, the flipped one either of its
 * two values; anything else is FAIL data. When the data profile has 2+
 * copies (dup, raid1, raid1c3, raid1c4, raid10: chunk tree,
 * BTRFS_IOC_TREE_SEARCH_V2), every copy of every extent (FIEMAP) is read
 * from the raw devices (BTRFS_IOC_DEV_INFO paths, O_RDONLY|O_DIRECT) and
 * compared: any difference is FAIL copies (first logical address, file
 * offset, device offsets); raid5/6 parity is not checked. A "direct" member says
 * whether the writes went direct or the kernel fell back to buffered (the
 * fixes' way): /proc/vmstat nr_dirtied grew by less than a quarter, or by
 * half or more, of the pages written, above what the devices add (a loop
 * device without direct I/O dirties its backing file's pages once per
 * copy); null when it cannot tell.
 * Precondition: data checksums, or a profile with 2+ copies (with
 * nodatasum on a single copy nothing could disagree: SKIP).
 *
 * Extra options (not in the sweep): --copies insists on the copies check
 * (exit 2 when the profile has one copy); --verify-only FILE only compares
 * the copies of FILE's extents (any file on btrfs, e.g. one a test damaged
 * on one mirror), one KTAP test, with --json FILE. Needs root (chunk tree,
 * raw devices). Exit 0 PASS, 1 FAIL, 2 BROKEN, 4 SKIP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diogap.h"

#define FLIP_STRIDE DG_SECTOR       /* one flipped byte per 512 */
#define FLIP_BYTE (DG_SECTOR - 1)   /* the last one: filler, not the header */
#define MAX_STRIPES DG_MAX_STRIPES
#define MAX_DEVS 64
#define MAP_LISTED 16               /* copy map lines in KTAP / JSON */
#define CMP_PIECE (1u << 20)

static bool want_copies; /* --copies */

/* ---- the copies: chunk tree, devices, FIEMAP ----------------------------- */

struct copies {
	/* input: the filesystem */
	struct dg_chunk *chunks;
	size_t nchunks;
	unsigned ncopies;      /* most copies of any data chunk (1: none to compare) */
	const char *profile;   /* of the data chunks: single dup raid1 ... mixed */
	const char *why;       /* not checkable: why (NULL: checkable) */
	char why_buf[200];
	struct { uint64_t devid; int fd; char path[1024]; } dev[MAX_DEVS];
	unsigned ndev;
	/* result */
	bool checked;
	uint64_t extents, bytes, differ_bytes, skipped_bytes;
	bool differ;
	uint64_t first_logical, first_file;
	unsigned first_copy;   /* index of the copy that differs from copy 0 */
	uint64_t first_phys[2], first_devid[2];
	struct dg_sb map;      /* JSON array of the pieces compared (first MAP_LISTED) */
	unsigned map_n;
};

static const char *profile_name(uint64_t type)
{
	uint64_t p = type & BTRFS_BLOCK_GROUP_PROFILE_MASK;

	return p == BTRFS_BLOCK_GROUP_DUP ? "dup" : p == BTRFS_BLOCK_GROUP_RAID1 ? "raid1" :
	       p == BTRFS_BLOCK_GROUP_RAID1C3 ? "raid1c3" :
	       p == BTRFS_BLOCK_GROUP_RAID1C4 ? "raid1c4" :
	       p == BTRFS_BLOCK_GROUP_RAID10 ? "raid10" : p == BTRFS_BLOCK_GROUP_RAID0 ? "raid0" :
	       p == BTRFS_BLOCK_GROUP_RAID5 ? "raid5" : p == BTRFS_BLOCK_GROUP_RAID6 ? "raid6" :
	       p == 0 ? "single" : "unknown";
}

static bool is_raid10(const struct dg_chunk *c)
{
	return (c->type & BTRFS_BLOCK_GROUP_PROFILE_MASK) == BTRFS_BLOCK_GROUP_RAID10;
}

/* Copies a chunk holds that can be compared byte for byte: every stripe of
 * dup/raid1/raid1c3/raid1c4, sub_stripes for raid10; 1 for single/raid0;
 * 0 for raid5/6 (parity: not compared). */
static unsigned mirror_copies(const struct dg_chunk *c)
{
	uint64_t p = c->type & BTRFS_BLOCK_GROUP_PROFILE_MASK;

	if (p == BTRFS_BLOCK_GROUP_DUP || p == BTRFS_BLOCK_GROUP_RAID1 ||
	    p == BTRFS_BLOCK_GROUP_RAID1C3 || p == BTRFS_BLOCK_GROUP_RAID1C4)
		return c->nstripes;
	if (p == BTRFS_BLOCK_GROUP_RAID10)
		return c->sub_stripes >= 2 && c->nstripes % c->sub_stripes == 0 ? c->sub_stripes : 0;
	if (p == 0 || p == BTRFS_BLOCK_GROUP_RAID0)
		return 1;
	return 0;
}

static unsigned profile_copies(uint64_t type)
{
	uint64_t p = type & BTRFS_BLOCK_GROUP_PROFILE_MASK;

	/* raid5/6 count as one: their copies are not compared */
	return p == BTRFS_BLOCK_GROUP_RAID1C4 ? 4 : p == BTRFS_BLOCK_GROUP_RAID1C3 ? 3 :
	       (p == BTRFS_BLOCK_GROUP_DUP || p == BTRFS_BLOCK_GROUP_RAID1 ||
		p == BTRFS_BLOCK_GROUP_RAID10) ? 2 : 1;
}

/* Where copy m of the byte at logical (inside chunk c) lives: returns the
 * stripe index (its device), sets *phys and *run, the bytes from there on
 * that stay contiguous on that device (btrfs_map_block's arithmetic). */
static unsigned copy_at(const struct dg_chunk *c, uint64_t logical, unsigned m, uint64_t *phys,
			uint64_t *run)
{
	uint64_t off = logical - c->logical;

	if (is_raid10(c)) {
		unsigned factor = c->nstripes / c->sub_stripes;
		uint64_t nr = off / c->stripe_len, in = off % c->stripe_len;
		unsigned idx = (unsigned)(nr % factor) * c->sub_stripes + m;

		*phys = c->st[idx].offset + nr / factor * c->stripe_len + in;
		*run = c->stripe_len - in;
		return idx;
	}
	*phys = c->st[m].offset + off;
	*run = c->length - off;
	return m;
}

/* The data chunks from the chunk tree (chunks.c), their profile and the
 * most copies any holds. 0, or -errno (EPERM: not root). */
static int load_chunks(int fd, struct copies *cp)
{
	size_t i;
	int err = dg_chunks_load(fd, BTRFS_BLOCK_GROUP_DATA, &cp->chunks, &cp->nchunks);

	if (err)
		return err;
	for (i = 0; i < cp->nchunks; i++) {
		const struct dg_chunk *c = &cp->chunks[i];

		if (profile_copies(c->type) > cp->ncopies)
			cp->ncopies = profile_copies(c->type);
		if (!cp->profile || !strcmp(cp->profile, profile_name(c->type)))
			cp->profile = profile_name(c->type);
		else
			cp->profile = "mixed";
	}
	if (!cp->profile)
		cp->profile = "none";
	return 0;
}

/* Read the chunk tree: profile, copies, and why the copies cannot be
 * compared (cp->why) if so. */
static void copies_probe(int fd, struct copies *cp)
{
	int err;

	memset(cp, 0, sizeof(*cp));
	err = load_chunks(fd, cp);
	if (err) {
		snprintf(cp->why_buf, sizeof(cp->why_buf),
			 "cannot read the chunk tree (BTRFS_IOC_TREE_SEARCH_V2: %s%s)",
			 strerror(-err), err == -EPERM ? "; needs root" : "");
		cp->why = cp->why_buf;
		cp->profile = "unknown";
		return;
	}
	if (cp->ncopies < 2) {
		bool striped = strstr(cp->profile, "raid5") || strstr(cp->profile, "raid6") ||
			       !strcmp(cp->profile, "mixed");

		snprintf(cp->why_buf, sizeof(cp->why_buf), striped ?
			 "the copies of a %s data profile are not compared (only dup, raid1, raid1c3, raid1c4, raid10)" :
			 "the data profile (%s) has one copy: nothing to compare", cp->profile);
		cp->why = cp->why_buf;
	}
}

static int dev_fd(int fsfd, struct copies *cp, uint64_t devid, const char **path)
{
	struct btrfs_ioctl_dev_info_args di;
	unsigned i;

	for (i = 0; i < cp->ndev; i++)
		if (cp->dev[i].devid == devid) {
			*path = cp->dev[i].path;
			return cp->dev[i].fd;
		}
	if (cp->ndev == MAX_DEVS)
		dg_usage_error("more than %d devices", MAX_DEVS);
	memset(&di, 0, sizeof(di));
	di.devid = devid;
	CHECK_SYS(ioctl(fsfd, BTRFS_IOC_DEV_INFO, &di));
	cp->dev[i].devid = devid;
	snprintf(cp->dev[i].path, sizeof(cp->dev[i].path), "%s", (const char *)di.path);
	/* O_DIRECT: the block device's page cache may hold an older copy */
	cp->dev[i].fd = open(cp->dev[i].path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (cp->dev[i].fd < 0)
		dg_die_at(__FILE__, __LINE__, cp->dev[i].path, errno);
	cp->ndev++;
	*path = cp->dev[i].path;
	return cp->dev[i].fd;
}

static const struct dg_chunk *find_chunk(const struct copies *cp, uint64_t logical)
{
	size_t i;

	for (i = 0; i < cp->nchunks; i++)
		if (logical >= cp->chunks[i].logical &&
		    logical - cp->chunks[i].logical < cp->chunks[i].length)
			return &cp->chunks[i];
	return NULL;
}

static void pread_all(int fd, void *buf, size_t n, uint64_t off, const char *path)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			char what[1200];

			snprintf(what, sizeof(what), "read %s at %" PRIu64, path, off + done);
			dg_die_at(__FILE__, __LINE__, what, r < 0 ? errno : EIO);
		}
		done += (size_t)r;
	}
}

/* Compare the copies of [logical, +len) (inside chunk c), file offset
 * foff. */
static void compare_piece(int fsfd, struct copies *cp, const struct dg_chunk *c,
			  uint64_t logical, uint64_t len, uint64_t foff, char **bufs)
{
	unsigned n = mirror_copies(c), k, idx[MAX_STRIPES];
	uint64_t phys[MAX_STRIPES], run, done;
	const char *path[MAX_STRIPES];
	int fds[MAX_STRIPES];

	if (cp->map_n < MAP_LISTED) {
		dg_sb_printf(&cp->map, "%s{\"file_offset\":%" PRIu64 ",\"logical\":%" PRIu64
			     ",\"len\":%" PRIu64 ",\"copies\":[", cp->map_n ? "," : "", foff,
			     logical, len);
		printf("# copies: file %" PRIu64 " logical %" PRIu64 " len %" PRIu64 ":", foff,
		       logical, len);
		for (k = 0; k < n; k++) {
			unsigned i = copy_at(c, logical, k, &phys[k], &run);

			dev_fd(fsfd, cp, c->st[i].devid, &path[k]);
			dg_sb_printf(&cp->map, "%s{\"devid\":%" PRIu64 ",\"path\":", k ? "," : "",
				     c->st[i].devid);
			dg_sb_str(&cp->map, path[k]);
			dg_sb_printf(&cp->map, ",\"physical\":%" PRIu64 "}", phys[k]);
			printf(" copy %u devid %" PRIu64 " %s physical %" PRIu64 "%s", k + 1,
			       c->st[i].devid, path[k], phys[k], k + 1 < n ? ";" : "\n");
		}
		dg_sb_printf(&cp->map, "]}");
		cp->map_n++;
	}
	for (done = 0; done < len; ) {
		size_t m = (size_t)(len - done < CMP_PIECE ? len - done : CMP_PIECE), i;

		for (k = 0; k < n; k++) {
			idx[k] = copy_at(c, logical + done, k, &phys[k], &run);
			if (m > run)
				m = (size_t)run; /* raid10: up to the stripe's end */
			fds[k] = dev_fd(fsfd, cp, c->st[idx[k]].devid, &path[k]);
		}
		for (k = 0; k < n; k++)
			pread_all(fds[k], bufs[k], m, phys[k], path[k]);
		for (k = 1; k < n; k++) {
			if (!memcmp(bufs[0], bufs[k], m))
				continue;
			for (i = 0; i < m; i++) {
				if (bufs[0][i] == bufs[k][i])
					continue;
				cp->differ_bytes++;
				if (cp->differ)
					continue;
				cp->differ = true;
				cp->first_logical = logical + done + i;
				cp->first_file = foff + done + i;
				cp->first_copy = k;
				cp->first_devid[0] = c->st[idx[0]].devid;
				cp->first_devid[1] = c->st[idx[k]].devid;
				cp->first_phys[0] = phys[0] + i;
				cp->first_phys[1] = phys[k] + i;
			}
		}
		done += m;
	}
	cp->bytes += len;
}

/* Compare every copy of every extent of the file range [off, off+len)
 * (len 0: the whole file). Sets cp->checked, or cp->why. */
static void copies_compare(int fd, struct copies *cp, uint64_t off, uint64_t len)
{
	size_t sz = sizeof(struct fiemap) + 256 * sizeof(struct fiemap_extent);
	struct fiemap *fm = dg_xmalloc(sz);
	char *bufs[MAX_STRIPES] = { 0 };
	uint64_t pos = off, end = len ? off + len : UINT64_MAX;
	bool last = false;
	unsigned k;

	for (k = 0; k < MAX_STRIPES; k++)
		bufs[k] = dg_xbuffer((size_t)sysconf(_SC_PAGESIZE), CMP_PIECE);
	while (!last && pos < end) {
		uint32_t i;

		memset(fm, 0, sz);
		fm->fm_start = pos;
		fm->fm_length = end - pos;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = 256;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
			snprintf(cp->why_buf, sizeof(cp->why_buf), "FIEMAP: %s", strerror(errno));
			cp->why = cp->why_buf;
			goto out;
		}
		if (!fm->fm_mapped_extents)
			break;
		for (i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent *e = &fm->fm_extents[i];
			uint64_t fs = e->fe_logical > off ? e->fe_logical : off;
			uint64_t fe = e->fe_logical + e->fe_length < end ?
				      e->fe_logical + e->fe_length : end;

			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				last = true;
			pos = e->fe_logical + e->fe_length;
			if (fe <= fs)
				continue;
			if (e->fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |
					   FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_INLINE |
					   FIEMAP_EXTENT_NOT_ALIGNED)) {
				cp->skipped_bytes += fe - fs; /* no plain on-disk copy */
				continue;
			}
			cp->extents++;
			while (fs < fe) {
				uint64_t lg = e->fe_physical + (fs - e->fe_logical), n;
				const struct dg_chunk *c = find_chunk(cp, lg);

				if (!c) {
					snprintf(cp->why_buf, sizeof(cp->why_buf),
						 "logical %" PRIu64 " (file offset %" PRIu64
						 ") is in no data chunk", lg, fs);
					cp->why = cp->why_buf;
					goto out;
				}
				n = c->logical + c->length - lg;
				if (n > fe - fs)
					n = fe - fs;
				if (mirror_copies(c) >= 2)
					compare_piece(fd, cp, c, lg, n, fs, bufs);
				else
					cp->skipped_bytes += n; /* single / raid0 / parity chunk */
				fs += n;
			}
		}
	}
	cp->checked = true;
out:
	for (k = 0; k < MAX_STRIPES; k++)
		free(bufs[k]);
	for (k = 0; k < cp->ndev; k++)
		close(cp->dev[k].fd);
	cp->ndev = 0;
	free(fm);
}

static void copies_json(struct dg_sb *j, const struct copies *cp)
{
	dg_sb_printf(j, "\"copies\":{\"profile\":");
	dg_sb_str(j, cp->profile);
	dg_sb_printf(j, ",\"n\":%u,\"checked\":%s,\"why\":", cp->ncopies,
		     cp->checked ? "true" : "false");
	dg_sb_str(j, cp->checked ? NULL : cp->why);
	dg_sb_printf(j, ",\"extents\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"skipped_bytes\":%"
		     PRIu64 ",\"differ_bytes\":%" PRIu64, cp->extents, cp->bytes,
		     cp->skipped_bytes, cp->differ_bytes);
	if (cp->differ)
		dg_sb_printf(j, ",\"first\":{\"logical\":%" PRIu64 ",\"file_offset\":%" PRIu64
			     ",\"copy\":%u,\"devid\":[%" PRIu64 ",%" PRIu64 "],\"physical\":[%"
			     PRIu64 ",%" PRIu64 "]}", cp->first_logical, cp->first_file,
			     cp->first_copy + 1, cp->first_devid[0], cp->first_devid[1],
			     cp->first_phys[0], cp->first_phys[1]);
	dg_sb_printf(j, ",\"map\":[%s]}", cp->map.s ? cp->map.s : "");
}

static void copies_diag(const struct copies *cp, char *out, size_t n)
{
	snprintf(out, n, "mirror copies differ (%s): first at logical %" PRIu64
		 " (file offset %" PRIu64 "): copy 1 devid %" PRIu64 " physical %" PRIu64
		 " vs copy %u devid %" PRIu64 " physical %" PRIu64 "; %" PRIu64
		 " bytes differ", cp->profile, cp->first_logical, cp->first_file,
		 cp->first_devid[0], cp->first_phys[0], cp->first_copy + 1, cp->first_devid[1],
		 cp->first_phys[1], cp->differ_bytes);
}

/* ---- one iteration ------------------------------------------------------- */

/* /proc/vmstat nr_dirtied: pages dirtied in any page cache since boot (-1:
 * cannot tell). A buffered fallback dirties every page it writes; an
 * O_DIRECT write none (a loop device over a file may add as many again). */
static long long nr_dirtied(void)
{
	char line[128];
	long long v = -1;
	FILE *f = fopen("/proc/vmstat", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "nr_dirtied %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* How many times a direct write's pages show up in nr_dirtied from below
 * btrfs: 0 for real (or virtual) disks and loop devices doing direct I/O;
 * for loop devices over a file without it, the backing file's pages are
 * dirtied once per copy: `copies`. -1: a mix, or cannot tell. */
static int below_factor(int fd, unsigned copies)
{
	struct btrfs_ioctl_fs_info_args fi;
	struct btrfs_ioctl_dev_info_args di;
	int buffered_loop = 0, other = 0;
	uint64_t id;
	char sys[1200];

	memset(&fi, 0, sizeof(fi));
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &fi) < 0)
		return -1;
	for (id = 1; id <= fi.max_id; id++) {
		const char *p;
		FILE *f;
		int dio = -1;

		memset(&di, 0, sizeof(di));
		di.devid = id;
		if (ioctl(fd, BTRFS_IOC_DEV_INFO, &di) < 0)
			continue; /* a removed devid */
		p = strrchr((const char *)di.path, '/');
		snprintf(sys, sizeof(sys), "/sys/class/block/%s/loop/dio", p ? p + 1 : "");
		f = fopen(sys, "re");
		if (!f) {
			other++;
			continue;
		}
		if (fscanf(f, "%d", &dio) != 1)
			dio = -1;
		fclose(f);
		if (dio < 0)
			return -1;
		if (dio)
			other++;
		else
			buffered_loop++;
	}
	return buffered_loop && other ? -1 : buffered_loop ? (int)(copies ? copies : 1) : 0;
}

/* Did the writes of `pages` pages go direct? 1 yes, 0 no (buffered), -1
 * cannot tell. A buffered fallback dirties each page once in btrfs's page
 * cache, above what the devices add (below_factor). The counter is global
 * and per-CPU batched (up to ~128 pages per CPU late): small writes, or an
 * excess between a quarter and a half of the pages, say nothing. */
static int went_direct(int fd, unsigned copies, long long before, long long after,
		       uint64_t pages)
{
	uint64_t slack = 128 * (uint64_t)sysconf(_SC_NPROCESSORS_ONLN);
	int below = below_factor(fd, copies);
	long long excess;

	if (before < 0 || after < before || pages < 4 * slack || below < 0)
		return -1;
	excess = after - before - (long long)pages * below;
	if (excess < (long long)pages / 4)
		return 1;
	if (excess >= (long long)pages / 2)
		return 0;
	return -1;
}

/* Read [off, off+len) back with O_DIRECT in pieces of `piece` bytes; a
 * piece that fails with EIO is read again unit by unit to find its first
 * bad unit; failed bytes are left zero in got. Returns EIO pieces; other
 * errors are BROKEN (exit 2). */
static unsigned read_back(const struct dg_opts *o, int fd, char *got, uint64_t len,
			  uint64_t piece, uint64_t *first_eio, struct dg_ranges *eio)
{
	unsigned bad = 0;
	uint64_t c, u;

	for (c = 0; c < len; c += piece) {
		size_t n = (size_t)(len - c < piece ? len - c : piece);
		ssize_t r = dg_read_back(fd, got + c, n, o->offset + c);

		if (r >= 0)
			continue;
		if (r != -EIO)
			dg_die_at(__FILE__, __LINE__, "read back", (int)-r);
		bad++;
		for (u = c; u < c + n; u += o->dio_align) {
			if (dg_read_back(fd, got + u, o->dio_align, o->offset + u) != -EIO)
				continue;
			memset(got + u, 0, o->dio_align);
			if (*first_eio == UINT64_MAX)
				*first_eio = o->offset + u;
			dg_ranges_add(eio, o->offset + u, o->offset + u + o->dio_align, DG_GARBAGE);
		}
	}
	return bad;
}

/* The content rule: every byte of a sector as written, but the flipped
 * one, which may hold either of its two values. Ranges that failed with
 * EIO are not judged (they are reported as such). */
static size_t check_content(const char *got, const char *want, size_t len, uint64_t foff,
			    uint64_t run_id, unsigned it, const struct dg_ranges *eio,
			    struct dg_ranges *gaps)
{
	unsigned char s[DG_SECTOR];
	size_t k, bad = 0, e = 0;
	enum dg_class cls;

	for (k = 0; k + DG_SECTOR <= len; k += DG_SECTOR) {
		unsigned char w = (unsigned char)want[k + FLIP_BYTE];

		while (e < eio->n && eio->r[e].end <= foff + k)
			e++;
		if (e < eio->n && eio->r[e].start <= foff + k)
			continue;
		memcpy(s, got + k, DG_SECTOR);
		if (s[FLIP_BYTE] == (unsigned char)~w)
			s[FLIP_BYTE] = w;
		if (!memcmp(s, want + k, DG_SECTOR))
			continue;
		bad++;
		/* as read (a zero sector stays zero even where want's flipped
		 * byte is 0xff), else with the flipped byte put back (stale or
		 * misplaced data carries a flipped byte too) */
		cls = dg_classify(got + k, want + k, foff + k, run_id, (uint32_t)it);
		if (cls == DG_GARBAGE)
			cls = dg_classify(s, want + k, foff + k, run_id, (uint32_t)it);
		dg_ranges_add(gaps, foff + k, foff + k + DG_SECTOR, cls);
	}
	return bad;
}

/*
 * Test hook DIOGAP_TEST_UNSTABLE=disk: after the writes and the cache drop,
 * one byte of the file's first sector (at --offset) is changed on the raw
 * device, in the last copy of its chunk (the only one on single): what a
 * buggy kernel leaves. With data checksums the read-back fails with EIO;
 * with two copies they differ. Shows the FAIL paths on a kernel with the
 * fixes; never set by the harness. Returns a description for the JSON.
 */
static const char *test_damage_disk(int fd, const struct dg_opts *o, const struct copies *cp)
{
	const char *how = getenv("DIOGAP_TEST_UNSTABLE");
	struct {
		struct fiemap fm;
		struct fiemap_extent fe[1];
	} q;
	const struct dg_chunk *c;
	struct btrfs_ioctl_dev_info_args di;
	uint64_t lg, phys, run;
	unsigned copies, stripe;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *blk;
	int dfd;

	if (!how || !*how)
		return NULL;
	if (strcmp(how, "disk"))
		dg_usage_error("DIOGAP_TEST_UNSTABLE='%s' must be disk", how);
	memset(&q, 0, sizeof(q));
	q.fm.fm_start = o->offset;
	q.fm.fm_length = o->dio_align;
	q.fm.fm_flags = FIEMAP_FLAG_SYNC;
	q.fm.fm_extent_count = 1;
	CHECK_SYS(ioctl(fd, FS_IOC_FIEMAP, &q.fm));
	CHECK(q.fm.fm_mapped_extents == 1 && q.fe[0].fe_logical <= o->offset);
	lg = q.fe[0].fe_physical + (o->offset - q.fe[0].fe_logical);
	c = find_chunk(cp, lg);
	CHECK(c && mirror_copies(c));
	copies = mirror_copies(c);
	stripe = copy_at(c, lg, copies - 1, &phys, &run);
	memset(&di, 0, sizeof(di));
	di.devid = c->st[stripe].devid;
	CHECK_SYS(ioctl(fd, BTRFS_IOC_DEV_INFO, &di));
	dfd = open((const char *)di.path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (dfd < 0)
		dg_die_at(__FILE__, __LINE__, (const char *)di.path, errno);
	blk = dg_xbuffer(page, o->dio_align);
	CHECK(pread(dfd, blk, o->dio_align, (off_t)phys) == (ssize_t)o->dio_align);
	blk[100] ^= 0x5a; /* not the flipped byte: the content check sees it too */
	CHECK(pwrite(dfd, blk, o->dio_align, (off_t)phys) == (ssize_t)o->dio_align);
	CHECK_SYS(fsync(dfd));
	close(dfd);
	free(blk);
	printf("# test hook: DIOGAP_TEST_UNSTABLE=disk changed byte 100 of file offset %" PRIu64
	       " on %s at %" PRIu64 " (copy %u of %u)\n", o->offset, (const char *)di.path, phys,
	       copies, copies);
	return "disk";
}

static int set_fail(struct dg_result *r, const char **symptom, const char *what)
{
	if (!*symptom)
		*symptom = what;
	return r->verdict = DG_FAIL;
}

static int run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
	       struct dg_result *r, struct dg_buf *b)
{
	static struct dg_sb extra;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t align = o->mem_align > page ? o->mem_align : page;
	size_t len = (size_t)o->size;
	uint64_t chunk = o->chunk ? o->chunk : o->size, c, t0, first_eio = UINT64_MAX;
	struct dg_scribble sc = { 0 };
	struct dg_ranges eio = { 0 };
	const char *symptom = NULL, *drop, *hook;
	struct copies cp;
	unsigned calls = 0, shorts = 0, eio_pieces;
	long long dirtied0, dirtied1;
	int direct;
	char *data, *want, *got;
	size_t bad;
	int fd, werr = 0, csum;
	const char *datasum;
	struct stat st;

	(void)b;
	free(extra.s);
	memset(&extra, 0, sizeof(extra));
	r->size_expected = o->offset + o->size;
	fd = CHECK_SYS(open(o->file, O_RDWR | O_DIRECT | O_CLOEXEC));
	datasum = dg_file_datasum(o, fd, &csum);
	copies_probe(fd, &cp);
	if (want_copies && cp.why)
		dg_usage_error("--copies: %s", cp.why);
	if (strcmp(datasum, "yes") && cp.ncopies < 2) {
		dg_precondition_skip(r, "no data checksums (inode %s) and %s",
				     csum < 0 ? "unknown" : "NODATASUM", cp.why ? cp.why : "one copy");
		dg_sb_printf(&extra, "\"datasum_inode\":\"%s\",", datasum);
		copies_json(&extra, &cp);
		r->extra_json = extra.s;
		close(fd);
		return r->verdict;
	}

	data = dg_xbuffer(align, len);
	want = dg_xmalloc(len);
	got = dg_xbuffer(align, len);
	dg_pattern_fill(want, len, o->offset, run_id, (uint32_t)iteration);
	memcpy(data, want, len);
	CHECK_SYS(ftruncate(fd, 0));

	sc.buf = data;
	sc.len = len;
	sc.mode = DG_SCRIBBLE_FLIP;
	sc.stride = FLIP_STRIDE;
	sc.byte = FLIP_BYTE;
	dg_scribble_start(&sc);
	dirtied0 = nr_dirtied();
	for (c = 0; c < len && !werr; ) {
		size_t n = (size_t)(len - c < chunk ? len - c : chunk);
		ssize_t w;

		t0 = dg_now_us();
		w = pwrite(fd, data + c, n, (off_t)(o->offset + c));
		r->write_us += dg_now_us() - t0;
		calls++;
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			werr = w < 0 ? errno : EIO;
		else if ((size_t)w < n)
			shorts++;
		if (w > 0)
			c += (size_t)w;
	}
	dirtied1 = nr_dirtied();
	dg_scribble_stop(&sc);
	r->chunk_used = chunk;
	direct = went_direct(fd, cp.ncopies, dirtied0, dirtied1, (o->size + page - 1) / page);
	if (werr && werr != EIO) {
		close(fd);
		free(data), free(want), free(got);
		return dg_write_failed(werr, o->offset + c, r);
	}
	drop = dg_drop_cache(fd, o->offset, o->size);
	/* again: the writes may have allocated a new data chunk */
	free(cp.chunks);
	copies_probe(fd, &cp);
	dg_test_corrupt(o, fd, run_id, iteration, r);
	hook = test_damage_disk(fd, o, &cp);
	if ((getenv("DIOGAP_TEST_CORRUPT") && *getenv("DIOGAP_TEST_CORRUPT")) || hook)
		drop = dg_drop_cache(fd, o->offset, o->size);

	t0 = dg_now_us();
	eio_pieces = read_back(o, fd, got, len, chunk, &first_eio, &eio);
	bad = check_content(got, want, len, o->offset, run_id, iteration, &eio, &r->gaps);
	CHECK_SYS(fstat(fd, &st));
	r->size_seen = (uint64_t)st.st_size;
	if (cp.ncopies >= 2)
		copies_compare(fd, &cp, o->offset, o->size);
	r->verify_us = dg_now_us() - t0;

	r->verdict = DG_PASS;
	if (werr) {
		set_fail(r, &symptom, "eio-write");
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "write at offset %" PRIu64 " failed with EIO (the device is a healthy loop/virtual disk)",
			 o->offset + c);
	} else if (eio_pieces) {
		set_fail(r, &symptom, "eio-read");
		snprintf(r->diag_buf, sizeof(r->diag_buf),
			 "read back: EIO (csum failure: the data on disk does not match its checksum; see 'csum failed' in the kernel log) in %u of %u reads of %" PRIu64
			 " bytes, first at file offset %" PRIu64 "",
			 eio_pieces, (unsigned)((len + chunk - 1) / chunk), chunk,
			 first_eio == UINT64_MAX ? o->offset : first_eio);
	}
	if (bad) {
		dg_first_bad_note(r, got, want, len, o->offset);
		dg_gaps_fiemap(fd, &r->gaps);
		if (!symptom)
			snprintf(r->diag_buf, sizeof(r->diag_buf),
				 "%zu bad sectors in %zu ranges, first [%" PRIu64 ", %" PRIu64
				 ") %s (beyond the flipped byte)", bad, r->gaps.n, r->gaps.r[0].start,
				 r->gaps.r[0].end, dg_class_name(r->gaps.r[0].cls));
		set_fail(r, &symptom, "data");
	}
	if (r->size_seen != r->size_expected && !symptom) {
		snprintf(r->diag_buf, sizeof(r->diag_buf), "file size %" PRIu64 ", expected %" PRIu64,
			 r->size_seen, r->size_expected);
		set_fail(r, &symptom, "size");
	}
	if (cp.differ) {
		if (!symptom)
			copies_diag(&cp, r->diag_buf, sizeof(r->diag_buf));
		set_fail(r, &symptom, "copies");
	}
	if (r->verdict == DG_FAIL) {
		r->diag = r->diag_buf;
	} else if (cp.ncopies >= 2 && !cp.checked) {
		/* the check this iteration promised did not run */
		snprintf(r->diag_buf, sizeof(r->diag_buf), "copies not compared: %s",
			 cp.why ? cp.why : "unknown");
		r->diag = r->diag_buf;
		r->verdict = DG_BROKEN;
	}

	/* record fields of the library (output.c): symptom, precondition,
	 * direct. A write that went buffered still PASSes here: the fallback
	 * to buffered writes is this link's fix (968f19c5b1b7, 7c2830f00c3e) */
	r->symptom = symptom;
	r->precondition = DG_YES;
	r->direct = direct < 0 ? DG_NULL : direct ? DG_YES : DG_NO;
	dg_sb_printf(&extra, "\"pages_dirtied\":%lld,\"cache_drop\":\"%s\""
		     ",\"write_calls\":%u,\"short_writes\":%u,\"scribble_passes\":%" PRIu64
		     ",\"flip\":{\"stride\":%d,\"byte\":%d},\"eio_reads\":%u,\"first_eio\":",
		     dirtied0 < 0 || dirtied1 < 0 ? -1 : dirtied1 - dirtied0, drop, calls, shorts,
		     sc.passes, FLIP_STRIDE, FLIP_BYTE, eio_pieces);
	if (first_eio == UINT64_MAX)
		dg_sb_printf(&extra, "null");
	else
		dg_sb_printf(&extra, "%" PRIu64, first_eio);
	dg_sb_printf(&extra, ",\"bad_sectors\":%zu,\"datasum_inode\":\"%s\",", bad, datasum);
	if (hook)
		dg_sb_printf(&extra, "\"test_unstable\":\"%s\",", hook);
	copies_json(&extra, &cp);
	r->extra_json = extra.s;
	printf("# %s: writes went %s (nr_dirtied +%lld for %zu pages), %" PRIu64
	       " scribbler passes, copies %s\n", r->name,
	       direct < 0 ? "direct or buffered (cannot tell)" : direct ? "direct" : "buffered",
	       dirtied0 < 0 || dirtied1 < 0 ? -1 : dirtied1 - dirtied0,
	       (size_t)((o->size + page - 1) / page), sc.passes,
	       cp.checked ? (cp.differ ? "DIFFER" : "equal") : cp.why ? cp.why : "not checked");

	free(cp.chunks);
	free(cp.map.s);
	dg_ranges_free(&eio);
	close(fd);
	free(data), free(want), free(got);
	return r->verdict;
}

/* ---- --verify-only FILE -------------------------------------------------- */

static int verify_only(const struct dg_repro *rp, const char *file, const char *json,
		       const char *argv0)
{
	static struct dg_sb extra;
	struct dg_opts o;
	struct dg_result r;
	struct copies cp;
	struct stat st;
	int fd;

	dg_prog = rp->name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	o.rp = rp;
	o.fault = "none";
	o.iterations = 1;
	o.json_path = json;
	o.fstype = "btrfs";
	o.datasum = "n/a";
	snprintf(o.argv_line, sizeof(o.argv_line), "%s --verify-only %s", argv0, file);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		dg_usage_error("--verify-only %s: %s", file, strerror(errno));
	CHECK_SYS(fstat(fd, &st));
	o.size = (uint64_t)st.st_size;
	r.name = "dio-unstable-write.verify-only";
	r.iteration = 1;
	r.size_expected = r.size_seen = o.size;
	dg_ktap_begin(1);
	copies_probe(fd, &cp);
	if (!cp.why)
		copies_compare(fd, &cp, 0, 0);
	if (!cp.checked && cp.ncopies < 2) {
		snprintf(r.diag_buf, sizeof(r.diag_buf), "precondition not met: %s", cp.why);
		r.verdict = DG_SKIP;
	} else if (!cp.checked) {
		snprintf(r.diag_buf, sizeof(r.diag_buf), "copies not compared: %s", cp.why);
		r.verdict = DG_BROKEN;
	} else if (cp.differ) {
		copies_diag(&cp, r.diag_buf, sizeof(r.diag_buf));
		r.verdict = DG_FAIL;
	} else {
		r.verdict = DG_PASS;
	}
	r.diag = r.diag_buf[0] ? r.diag_buf : NULL;
	r.symptom = cp.differ ? "copies" : NULL;
	copies_json(&extra, &cp);
	r.extra_json = extra.s;
	printf("# verify-only %s: %" PRIu64 " bytes in %" PRIu64 " extents compared, %" PRIu64
	       " not comparable, %" PRIu64 " bytes differ\n", file, cp.bytes, cp.extents,
	       cp.skipped_bytes, cp.differ_bytes);
	close(fd);
	dg_ktap_result(&o, NULL, &r);
	return dg_ktap_end();
}

int main(int argc, char **argv)
{
	static const struct dg_repro rp = {
		.name = "dio-unstable-write",
		.summary = "O_DIRECT writes from a buffer another thread keeps changing",
		.fixes = {
			{ "968f19c5b1b7",
			  "btrfs: always fallback to buffered write if the inode requires checksum" },
			{ "7c2830f00c3e",
			  "btrfs: fallback to buffered IO if the data profile has duplication" },
		},
		.fstests = "generic/761",
		.params = "size chunk offset",
		.may_hang = false,
		.run = run,
	};
	const char *only = NULL, *json = NULL;
	int i, n = 1;

	/* our own options, taken out before the library sees argv */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--copies")) {
			want_copies = true;
		} else if (!strcmp(argv[i], "--verify-only") && i + 1 < argc) {
			only = argv[++i];
		} else {
			if (!strcmp(argv[i], "--json") && i + 1 < argc)
				json = argv[i + 1];
			argv[n++] = argv[i];
		}
	}
	argv[n] = NULL;
	if (only) {
		if (n != 1 && !(n == 3 && json))
			dg_usage_error("--verify-only FILE takes no other option but --json FILE");
		return verify_only(&rp, only, json, argv[0]);
	}
	return dg_main(&rp, n, argv);
}
