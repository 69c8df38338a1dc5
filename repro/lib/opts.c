// SPDX-License-Identifier: GPL-2.0
/*
 * opts.c - command line options and target validation. Every bad input
 * ends here with one line on stderr and exit 2 (BROKEN): a reproducer never
 * runs with parameters it cannot honour.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "diogap.h"

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

/* The kernel's struct statx layout (stable ABI), so the DIO alignment
 * fields are usable even where libc's struct statx lacks them. */
struct dg_statx {
	uint32_t stx_mask, stx_blksize;
	uint64_t stx_attributes;
	uint32_t stx_nlink, stx_uid, stx_gid;
	uint16_t stx_mode, pad0;
	uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
	struct {
		int64_t tv_sec;
		uint32_t tv_nsec;
		int32_t pad;
	} ts[4];
	uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
	uint64_t stx_mnt_id;
	uint32_t stx_dio_mem_align, stx_dio_offset_align;
	uint64_t spare[12];
};
_Static_assert(sizeof(struct dg_statx) == 256, "struct statx is 256 bytes");

#define MAX_SIZE (1ULL << 30)

int dg_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case '\0':
		break;
	case 'k': case 'K':
		mul = 1ULL << 10;
		p++;
		break;
	case 'm': case 'M':
		mul = 1ULL << 20;
		p++;
		break;
	case 'g': case 'G':
		mul = 1ULL << 30;
		p++;
		break;
	default:
		return -1;
	}
	if (*p == 'i' && mul > 1) /* accept KiB-style "Ki", "Mi", "Gi" */
		p++;
	if (*p == 'B' && mul > 1)
		p++;
	if (*p)
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

static uint64_t size_arg(const char *opt, const char *val)
{
	uint64_t v;

	if (dg_parse_size(val, &v))
		dg_usage_error("%s '%s' is not a size (bytes, or with K/M/G suffix)",
			       opt, val);
	return v;
}

static unsigned uint_arg(const char *opt, const char *val, unsigned min,
			 unsigned max)
{
	uint64_t v;
	const char *p;

	for (p = val; *p; p++)
		if (*p < '0' || *p > '9')
			break;
	if (!*val || *p || dg_parse_size(val, &v) || v < min || v > max)
		dg_usage_error("%s '%s' must be a whole number in %u..%u", opt, val,
			       min, max);
	return (unsigned)v;
}

/* Is key (e.g. "qd") one of rp->params? */
bool dg_takes_param(const struct dg_repro *rp, const char *key)
{
	const char *p = rp ? rp->params : NULL;
	size_t klen = strlen(key);

	while (p && *p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, klen) && (p[klen] == ' ' || !p[klen]))
			return true;
		while (*p && *p != ' ')
			p++;
	}
	return false;
}

const char *dg_buf_kind_name(enum dg_buf_kind k)
{
	return k == DG_BUF_MEMFD ? "memfd" : k == DG_BUF_ANON ? "anon" : "file:";
}

const char *dg_buf_arg(const struct dg_opts *o, char *out, size_t n)
{
	if (o->buf != DG_BUF_FILE)
		return dg_buf_kind_name(o->buf);
	if (!o->buf_path)
		return "file";
	snprintf(out, n, "file:%s", o->buf_path);
	return out;
}

static bool engine_ok(const char *list, const char *e)
{
	size_t n = strlen(e);
	const char *p = list;

	while (p && *p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && !strncmp(p, e, n))
			return true;
		p = bar ? bar + 1 : NULL;
	}
	return false;
}

static const char *fs_name(unsigned long type)
{
	static char buf[32];

	switch (type) {
	case BTRFS_SUPER_MAGIC:
		return "btrfs";
	case EXT4_SUPER_MAGIC:
		return "ext4";
	case TMPFS_MAGIC:
		return "tmpfs";
	case XFS_SUPER_MAGIC:
		return "xfs";
	case OVERLAYFS_SUPER_MAGIC:
		return "overlay";
	case NFS_SUPER_MAGIC:
		return "nfs";
	default:
		snprintf(buf, sizeof(buf), "fs-0x%lx", type);
		return buf;
	}
}

static void check_target(struct dg_opts *o)
{
	struct statfs sfs;
	struct stat st;

	if (stat(o->target, &st))
		dg_usage_error("target %s: %s", o->target, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		dg_usage_error("target %s is not a directory", o->target);
	if (access(o->target, W_OK | X_OK))
		dg_usage_error("target %s is not writable: %s", o->target,
			       strerror(errno));
	if (statfs(o->target, &sfs))
		dg_usage_error("target %s: statfs: %s", o->target, strerror(errno));
	o->fstype = strdup(fs_name((unsigned long)sfs.f_type));
	CHECK(o->fstype);
	if ((unsigned long)sfs.f_type != BTRFS_SUPER_MAGIC && !o->any_fs)
		dg_usage_error("target %s is on %s, not btrfs (--any-fs allows that)",
			       o->target, o->fstype);
}

/* Logical block size of the block device st_dev, from sysfs (what
 * BLKSSZGET returns), or 0 when st_dev is not a block device (btrfs,
 * tmpfs, ...). */
static unsigned blkdev_lbs(dev_t dev)
{
	char path[96];
	unsigned v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/logical_block_size",
		 major(dev), minor(dev));
	f = fopen(path, "re");
	if (!f) {
		/* a partition has queue/ one level up */
		snprintf(path, sizeof(path),
			 "/sys/dev/block/%u:%u/../queue/logical_block_size",
			 major(dev), minor(dev));
		f = fopen(path, "re");
	}
	if (!f)
		return 0;
	if (fscanf(f, "%u", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* DIO alignment of the target file: statx STATX_DIOALIGN, else btrfs's
 * sectorsize (BTRFS_IOC_FS_INFO), else the device's logical block size,
 * else st_blksize. */
static void find_alignment(struct dg_opts *o, int fd)
{
	struct dg_statx stx;
	struct stat st;

	memset(&stx, 0, sizeof(stx));
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, (struct statx *)&stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		o->dio_align = stx.stx_dio_offset_align;
		o->mem_align = stx.stx_dio_mem_align;
		o->align_source = "statx";
		return;
	}
	CHECK_SYS(fstat(fd, &st));
	if (!strcmp(o->fstype, "btrfs")) {
		struct btrfs_ioctl_fs_info_args fi;

		memset(&fi, 0, sizeof(fi));
		if (ioctl(fd, BTRFS_IOC_FS_INFO, &fi) == 0 && fi.sectorsize) {
			o->dio_align = fi.sectorsize;
			o->align_source = "btrfs-sectorsize";
		}
	}
	if (!o->dio_align && (o->dio_align = blkdev_lbs(st.st_dev)))
		o->align_source = "blkdev";
	if (!o->dio_align) {
		o->dio_align = (unsigned)st.st_blksize;
		o->align_source = "st_blksize";
	}
	o->mem_align = o->dio_align;
}

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

/* btrfs data checksums for this file: "no" with the NOCOW flag or a
 * nodatasum/nodatacow mount, else "yes". (Kernels with 968f19c5b1b7 turn
 * O_DIRECT writes to checksummed files into buffered writes.) The mount is
 * found by its id (statx STATX_MNT_ID = field 1 of mountinfo): st_dev on
 * btrfs is the subvolume's anonymous device, which mountinfo does not
 * show. "unknown" when the mount cannot be found. */
static const char *find_datasum(const struct dg_opts *o, int fd)
{
	char line[4096];
	struct dg_statx stx;
	int flags = 0;
	FILE *f;
	const char *res = "unknown";

	if (strcmp(o->fstype, "btrfs"))
		return "n/a";
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_NOCOW_FL))
		return "no";
	memset(&stx, 0, sizeof(stx));
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, (struct statx *)&stx) ||
	    !(stx.stx_mask & STATX_MNT_ID))
		return "unknown";
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return "unknown";
	while (fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");
		uint64_t id;

		if (sscanf(line, "%" SCNu64, &id) != 1 || id != stx.stx_mnt_id || !sep)
			continue;
		res = strstr(sep, "nodatasum") || strstr(sep, "nodatacow") ? "no" : "yes";
		break;
	}
	fclose(f);
	return res;
}

static void usage(const struct dg_repro *rp)
{
	char def[64] = "1M";

	if (rp->default_pages)
		snprintf(def, sizeof(def), "%u page%s of %ld bytes", rp->default_pages,
			 rp->default_pages == 1 ? "" : "s",
			 sysconf(_SC_PAGESIZE));
	printf("usage: %s [options] TARGET_DIR\n", rp->name);
	printf("  --size BYTES        bytes written per iteration (K/M/G), default %s\n", def);
	printf("  --offset BYTES      file offset of the first byte, default 0\n"
	       "  --chunk BYTES       bytes per write call, default = size\n"
	       "  --fault PATTERN     first|none|all|stride:N|random:SEED:PCT|pages:LIST\n"
	       "  --iterations N      write the range N times, default 1; each\n"
	       "                      iteration starts with an empty file\n"
	       "  --overwrite         keep the previous iteration's data instead, so a\n"
	       "                      lost overwrite shows as stale data\n"
	       "  --seed N            run id seed (printed; use it to rerun)\n"
	       "  --json FILE         append one JSON object per test to FILE\n"
	       "  --keep              keep the target file after a FAIL\n"
	       "  --any-fs            allow a target that is not btrfs\n"
	       "  --nocow             chattr +C the target file (no data checksums)\n"
	       "  --describe          print the reproducer's metadata (--json: as JSON)\n");
	if (dg_takes_param(rp, "buffer"))
		printf("  --buffer KIND       memfd|anon|file|file:PATH (file: a new file in\n"
		       "                      TARGET_DIR; PATH: a new file, or a directory)\n");
	if (dg_takes_param(rp, "engine"))
		printf("  --engine E          %s\n", rp->engines ? rp->engines : "");
	if (dg_takes_param(rp, "layout"))
		printf("  --layout L          %s\n", rp->layouts ? rp->layouts : "");
	if (dg_takes_param(rp, "qd"))
		printf("  --qd N              writes in flight\n");
	if (dg_takes_param(rp, "fixed_buffers"))
		printf("  --fixed-buffers     registered buffers\n");
	if (dg_takes_param(rp, "async"))
		printf("  --async             IOSQE_ASYNC\n");
	if (dg_takes_param(rp, "hang_timeout"))
		printf("  --hang-timeout S    seconds before a write counts as hung\n");
}

static void build_argv_line(struct dg_opts *o, const char *argv0)
{
	char *p = o->argv_line, buf[PATH_MAX + 8];
	size_t left = sizeof(o->argv_line);
	int n;

#define ADD(...) \
	do { \
		n = snprintf(p, left, __VA_ARGS__); \
		if (n < 0 || (size_t)n >= left) \
			dg_usage_error("command line too long"); \
		p += n; \
		left -= (size_t)n; \
	} while (0)
	if (getenv("DIOGAP_TEST_CORRUPT") && *getenv("DIOGAP_TEST_CORRUPT"))
		ADD("DIOGAP_TEST_CORRUPT=%s ", getenv("DIOGAP_TEST_CORRUPT"));
	if (getenv("DIOGAP_TEST_NO_PAGEMAP") && *getenv("DIOGAP_TEST_NO_PAGEMAP"))
		ADD("DIOGAP_TEST_NO_PAGEMAP=1 ");
	if (getenv("DIOGAP_TEST_NOISE") && *getenv("DIOGAP_TEST_NOISE"))
		ADD("DIOGAP_TEST_NOISE=%s ", getenv("DIOGAP_TEST_NOISE"));
	ADD("%s --size %" PRIu64 " --offset %" PRIu64, argv0, o->size, o->offset);
	if (o->chunk)
		ADD(" --chunk %" PRIu64, o->chunk);
	ADD(" --fault %s", o->fault);
	if (dg_takes_param(o->rp, "buffer"))
		ADD(" --buffer %s", dg_buf_arg(o, buf, sizeof(buf)));
	if (o->engine)
		ADD(" --engine %s", o->engine);
	if (o->layout)
		ADD(" --layout %s", o->layout);
	if (dg_takes_param(o->rp, "qd"))
		ADD(" --qd %u", o->qd);
	if (o->fixed_buffers)
		ADD(" --fixed-buffers");
	if (o->async)
		ADD(" --async");
	if (dg_takes_param(o->rp, "hang_timeout"))
		ADD(" --hang-timeout %g", o->hang_timeout);
	ADD(" --iterations %u --seed %" PRIu64, o->iterations, o->seed);
	if (o->any_fs)
		ADD(" --any-fs");
	if (o->nocow)
		ADD(" --nocow");
	if (o->overwrite)
		ADD(" --overwrite");
	ADD(" %s", o->target);
#undef ADD
}

enum {
	OPT_SIZE = 256, OPT_OFFSET, OPT_CHUNK, OPT_FAULT, OPT_BUFFER, OPT_ENGINE, OPT_QD,
	OPT_FIXED, OPT_ASYNC, OPT_HANG, OPT_ITER, OPT_SEED, OPT_JSON, OPT_KEEP, OPT_ANYFS,
	OPT_NOCOW, OPT_OVERWRITE, OPT_DESCRIBE, OPT_HELP, OPT_LAYOUT,
};

static const struct option longopts[] = {
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ "chunk", required_argument, NULL, OPT_CHUNK },
	{ "fault", required_argument, NULL, OPT_FAULT },
	{ "buffer", required_argument, NULL, OPT_BUFFER },
	{ "engine", required_argument, NULL, OPT_ENGINE },
	{ "layout", required_argument, NULL, OPT_LAYOUT },
	{ "qd", required_argument, NULL, OPT_QD },
	{ "fixed-buffers", no_argument, NULL, OPT_FIXED },
	{ "async", no_argument, NULL, OPT_ASYNC },
	{ "hang-timeout", required_argument, NULL, OPT_HANG },
	{ "iterations", required_argument, NULL, OPT_ITER },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "keep", no_argument, NULL, OPT_KEEP },
	{ "any-fs", no_argument, NULL, OPT_ANYFS },
	{ "nocow", no_argument, NULL, OPT_NOCOW },
	{ "overwrite", no_argument, NULL, OPT_OVERWRITE },
	{ "describe", no_argument, NULL, OPT_DESCRIBE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Per-reproducer options: accepted only when the Params line has the key. */
static void need_param(const struct dg_repro *rp, const char *key,
		       const char *opt)
{
	if (!dg_takes_param(rp, key))
		dg_usage_error("unknown option %s (%s does not take it)", opt,
			       rp->name);
}

static void parse_buffer(struct dg_opts *o, const char *v)
{
	struct stat st;

	if (!strcmp(v, "memfd")) {
		o->buf = DG_BUF_MEMFD;
	} else if (!strcmp(v, "anon")) {
		o->buf = DG_BUF_ANON;
	} else if (!strcmp(v, "file")) {
		o->buf = DG_BUF_FILE; /* a new file in the target directory */
		o->buf_path = NULL;
	} else if (!strncmp(v, "file:", 5) && v[5]) {
		o->buf = DG_BUF_FILE;
		o->buf_path = v + 5;
		if (stat(o->buf_path, &st) == 0 && !S_ISDIR(st.st_mode))
			dg_usage_error("--buffer %s: %s exists; give a new path or a directory",
				       v, o->buf_path);
	} else {
		dg_usage_error("--buffer '%s' must be memfd, anon, file or file:PATH", v);
	}
}

static void parse_args(const struct dg_repro *rp, int argc, char **argv,
		       struct dg_opts *o)
{
	double d;
	char *end;
	int c;

	/* --describe --json (--json without its FILE): the metadata as JSON */
	for (c = 1; c < argc; c++)
		if (!strcmp(argv[c], "--json") && (c + 1 == argc || !strncmp(argv[c + 1], "--", 2))) {
			int d;

			for (d = 1; d < argc; d++)
				if (!strcmp(argv[d], "--describe")) {
					dg_describe(rp, true);
					exit(0);
				}
		}
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SIZE: o->size = size_arg("--size", optarg); break;
		case OPT_OFFSET: o->offset = size_arg("--offset", optarg); break;
		case OPT_CHUNK: o->chunk = size_arg("--chunk", optarg); break;
		case OPT_FAULT: o->fault = optarg; break;
		case OPT_BUFFER:
			need_param(rp, "buffer", "--buffer");
			parse_buffer(o, optarg);
			break;
		case OPT_ENGINE:
			need_param(rp, "engine", "--engine");
			if (!rp->engines || !engine_ok(rp->engines, optarg))
				dg_usage_error("--engine '%s' must be one of %s", optarg,
					       rp->engines ? rp->engines : "(none)");
			o->engine = optarg;
			break;
		case OPT_LAYOUT:
			need_param(rp, "layout", "--layout");
			if (!rp->layouts || !engine_ok(rp->layouts, optarg))
				dg_usage_error("--layout '%s' must be one of %s", optarg,
					       rp->layouts ? rp->layouts : "(none)");
			o->layout = optarg;
			break;
		case OPT_QD:
			need_param(rp, "qd", "--qd");
			o->qd = uint_arg("--qd", optarg, 1, 4096);
			break;
		case OPT_FIXED:
			need_param(rp, "fixed_buffers", "--fixed-buffers");
			o->fixed_buffers = true;
			break;
		case OPT_ASYNC:
			need_param(rp, "async", "--async");
			o->async = true;
			break;
		case OPT_HANG:
			need_param(rp, "hang_timeout", "--hang-timeout");
			errno = 0;
			d = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(d > 0 && d <= 86400))
				dg_usage_error("--hang-timeout '%s' must be seconds in (0, 86400]",
					       optarg);
			o->hang_timeout = d;
			break;
		case OPT_ITER:
			o->iterations = uint_arg("--iterations", optarg, 1, 1000000);
			break;
		case OPT_SEED:
			if (dg_parse_size(optarg, &o->seed) || strpbrk(optarg, "kKmMgGiB"))
				dg_usage_error("--seed '%s' must be a whole number", optarg);
			o->seed_set = true;
			break;
		case OPT_JSON: o->json_path = optarg; break;
		case OPT_KEEP: o->keep = true; break;
		case OPT_ANYFS: o->any_fs = true; break;
		case OPT_NOCOW: o->nocow = true; break;
		case OPT_OVERWRITE: o->overwrite = true; break;
		case OPT_DESCRIBE:
			dg_describe(rp, false); /* --describe --json: see the pre-scan */
			exit(0);
		case OPT_HELP:
			usage(rp);
			exit(0);
		case ':':
			dg_usage_error("option %s needs a value", argv[optind - 1]);
		default:
			dg_usage_error("unknown option '%s' (--help lists them)",
				       argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		dg_usage_error("%s", optind >= argc ?
			       "missing TARGET_DIR (a directory on the btrfs under test)" :
			       "exactly one TARGET_DIR expected");
	o->target = argv[optind];
}

void dg_opts_parse(const struct dg_repro *rp, int argc, char **argv,
		   struct dg_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->rp = rp;
	o->size = rp->default_pages ?
		(uint64_t)rp->default_pages * (uint64_t)sysconf(_SC_PAGESIZE) : 1 << 20;
	o->fault = "first";
	o->buf = DG_BUF_MEMFD;
	o->qd = 1;
	o->hang_timeout = 30;
	o->iterations = 1;
	parse_args(rp, argc, argv, o);
	if (!o->engine && rp->engines && dg_takes_param(rp, "engine")) {
		static char first[32];

		snprintf(first, sizeof(first), "%.*s",
			 (int)strcspn(rp->engines, "|"), rp->engines);
		o->engine = first;
	}
	if (!o->layout && rp->layouts && dg_takes_param(rp, "layout")) {
		static char first[32];

		snprintf(first, sizeof(first), "%.*s",
			 (int)strcspn(rp->layouts, "|"), rp->layouts);
		o->layout = first;
	}
	if (!o->seed_set) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		o->seed = ((uint64_t)ts.tv_sec * 1000000007u + (uint64_t)ts.tv_nsec) ^
			  ((uint64_t)getpid() << 32);
		o->seed %= 1000000000000ULL; /* short enough to retype */
	}
	if (o->size == 0 || o->size > MAX_SIZE)
		dg_usage_error("--size %" PRIu64 " must be in 1..1G", o->size);
	if (o->chunk > o->size)
		dg_usage_error("--chunk %" PRIu64 " is larger than --size %" PRIu64,
			       o->chunk, o->size);
	if (o->offset > (1ULL << 50))
		dg_usage_error("--offset %" PRIu64 " is too large", o->offset);
	{
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		size_t np = (size_t)((o->size + page - 1) / page);
		unsigned char *w = dg_xmalloc(np);
		char err[160];

		if (dg_fault_want(o->fault, o->size, page, o->chunk, w, err, sizeof(err)))
			dg_usage_error("--fault: %s", err);
		free(w);
	}
	if (o->json_path) {
		int fd = open(o->json_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

		if (fd < 0)
			dg_usage_error("--json %s: %s", o->json_path, strerror(errno));
		close(fd);
	}
	{
		const char *how = getenv("DIOGAP_TEST_CORRUPT");

		if (how && *how && strcmp(how, "punch") && strcmp(how, "stale") &&
		    strcmp(how, "grow") && strcmp(how, "eio"))
			dg_usage_error("DIOGAP_TEST_CORRUPT='%s' must be punch, stale, grow or eio", how);
	}
	build_argv_line(o, argv[0]);
	check_target(o);
}

/* Called by dg_main once the target file exists: alignment and datasum
 * need a regular file (statx reports DIO alignment for files only). */
void dg_opts_file(struct dg_opts *o, int fd)
{
	const char *src;

	find_alignment(o, fd);
	src = !strcmp(o->align_source, "statx") ? "statx STATX_DIOALIGN" :
	      !strcmp(o->align_source, "btrfs-sectorsize") ? "btrfs sectorsize" :
	      !strcmp(o->align_source, "blkdev") ? "the device's logical block size" :
	      "st_blksize";
	if (o->size % o->dio_align)
		dg_usage_error("--size %" PRIu64 " is not a multiple of the DIO alignment %u of %s (%s)",
			       o->size, o->dio_align, o->target, src);
	if (o->offset % o->dio_align)
		dg_usage_error("--offset %" PRIu64 " is not a multiple of the DIO alignment %u of %s (%s)",
			       o->offset, o->dio_align, o->target, src);
	if (o->chunk % o->dio_align)
		dg_usage_error("--chunk %" PRIu64 " is not a multiple of the DIO alignment %u of %s (%s)",
			       o->chunk, o->dio_align, o->target, src);
	if (o->mem_align > (unsigned)sysconf(_SC_PAGESIZE))
		dg_usage_error("%s wants %u-byte aligned memory for O_DIRECT; buffers are page aligned",
			       o->target, o->mem_align);
	o->datasum = find_datasum(o, fd);
}
