// SPDX-License-Identifier: GPL-2.0
/*
 * main.c - dg_main: the skeleton every reproducer shares. Options and
 * target checks, the target file, the iterations, KTAP/JSON, cleanup.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "diogap.h"

static char *cleanup_path; /* the target file, removed at exit unless kept */
static char abandoned[200]; /* why the file is not to be touched, or "" */

static void remove_target(void)
{
	if (cleanup_path && !abandoned[0])
		unlink(cleanup_path);
}

void dg_abandon_file(const char *why)
{
	snprintf(abandoned, sizeof(abandoned), "%s", why && *why ? why : "abandoned");
	cleanup_path = NULL;
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void append(char *dst, size_t n, const char *s)
{
	size_t l = strlen(dst);

	snprintf(dst + l, n - l, "%s%s", l ? "." : "", s);
}

static void human(char *out, size_t n, uint64_t v)
{
	if (v && !(v % (1ULL << 30)))
		snprintf(out, n, "%" PRIu64 "G", v >> 30);
	else if (v && !(v % (1ULL << 20)))
		snprintf(out, n, "%" PRIu64 "M", v >> 20);
	else if (v && !(v % 1024))
		snprintf(out, n, "%" PRIu64 "K", v >> 10);
	else
		snprintf(out, n, "%" PRIu64, v);
}

/* KTAP test name: repro[.engine][.LAYOUT][.qdN][.fixed][.async].SIZE
 * [.cCHUNK][.oOFFSET].FAULT.BUFFER[.nocow].iN (LAYOUT when not the first,
 * the default), characters outside [A-Za-z0-9._-] replaced by '_'. */
static void test_name(const struct dg_opts *o, unsigned it, char *out, size_t n)
{
	char t[64], *p;

	out[0] = '\0';
	append(out, n, o->rp->name);
	if (o->engine)
		append(out, n, o->engine);
	if (o->layout && o->rp->layouts &&
	    (strcspn(o->rp->layouts, "|") != strlen(o->layout) ||
	     strncmp(o->rp->layouts, o->layout, strlen(o->layout))))
		append(out, n, o->layout);
	if (dg_takes_param(o->rp, "qd")) {
		snprintf(t, sizeof(t), "qd%u", o->qd);
		append(out, n, t);
	}
	if (o->fixed_buffers)
		append(out, n, "fixed");
	if (o->async)
		append(out, n, "async");
	human(t, sizeof(t), o->size);
	append(out, n, t);
	if (o->chunk && o->chunk != o->size) {
		t[0] = 'c';
		human(t + 1, sizeof(t) - 1, o->chunk);
		append(out, n, t);
	}
	if (o->offset) {
		t[0] = 'o';
		human(t + 1, sizeof(t) - 1, o->offset);
		append(out, n, t);
	}
	append(out, n, o->fault);
	if (dg_takes_param(o->rp, "buffer"))
		append(out, n, o->buf == DG_BUF_FILE ? "file" : dg_buf_kind_name(o->buf));
	if (o->nocow)
		append(out, n, "nocow");
	snprintf(t, sizeof(t), "i%u", it);
	append(out, n, t);
	for (p = out; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
			*p = '_';
}

static void set_nocow(const struct dg_opts *o, int fd)
{
	int flags = 0;

	if (strcmp(o->fstype, "btrfs"))
		dg_usage_error("--nocow needs btrfs, %s is on %s", o->target, o->fstype);
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
		dg_usage_error("--nocow: FS_IOC_GETFLAGS: %s", strerror(errno));
	flags |= FS_NOCOW_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
		dg_usage_error("--nocow: FS_IOC_SETFLAGS: %s", strerror(errno));
}

/* After dg_abandon_file(): iterations it..N are not run, one SKIP result
 * each (the KTAP plan said 1..N), with their JSON records. */
static void skip_rest(const struct dg_opts *o, unsigned it)
{
	struct dg_result r;
	char name[256];

	for (; it <= o->iterations; it++) {
		memset(&r, 0, sizeof(r));
		test_name(o, it, name, sizeof(name));
		r.name = name;
		r.iteration = it;
		r.verdict = DG_SKIP;
		snprintf(r.diag_buf, sizeof(r.diag_buf), "not run: %s", abandoned);
		r.diag = r.diag_buf;
		dg_ktap_result(o, NULL, &r);
	}
}

/* The whole run is SKIP: one KTAP test, one JSON record, exit 4. */
static int skip_all(const struct dg_opts *o, const char *why)
{
	struct dg_result r;

	memset(&r, 0, sizeof(r));
	test_name(o, 1, r.diag_buf, sizeof(r.diag_buf));
	r.name = r.diag_buf;
	r.verdict = DG_SKIP;
	r.diag = why;
	dg_ktap_begin(1);
	dg_ktap_result(o, NULL, &r);
	return dg_ktap_end();
}

int dg_main(const struct dg_repro *rp, int argc, char **argv)
{
	struct dg_opts o;
	uint64_t run_id;
	int fd, rc;
	unsigned it;

	dg_prog = rp->name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	dg_opts_parse(rp, argc, argv, &o);

	snprintf(o.file, sizeof(o.file), "%s/diogap-%s-%d.dat", o.target, rp->name,
		 (int)getpid());
	unlink(o.file); /* a leftover of an earlier process with our pid */
	fd = open(o.file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		dg_usage_error("cannot create %s: %s", o.file, strerror(errno));
	cleanup_path = o.file;
	atexit(remove_target);
	if (o.nocow)
		set_nocow(&o, fd);
	dg_opts_file(&o, fd);
	close(fd);

	fd = open(o.file, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0 && errno == EINVAL) {
		char why[160];

		snprintf(why, sizeof(why), "O_DIRECT is not supported on %s (%s)",
			 o.target, o.fstype);
		return skip_all(&o, why);
	}
	if (fd < 0)
		dg_usage_error("open %s O_DIRECT: %s", o.file, strerror(errno));
	close(fd);

	run_id = mix64(o.seed);
	dg_ktap_begin(o.iterations);
	printf("# %s seed %" PRIu64 " fs %s datasum %s alignment %u (%s)\n",
	       rp->name, o.seed, o.fstype, o.datasum, o.dio_align, o.align_source);
	if (!strcmp(o.datasum, "yes"))
		printf("# note: kernels with 968f19c5b1b7 (v6.15, 6.12.77) turn O_DIRECT writes to files with data checksums into buffered writes; --nocow or mount -o nodatasum tests the DIO path there\n");
	if (getenv("DIOGAP_TEST_NO_PAGEMAP") && *getenv("DIOGAP_TEST_NO_PAGEMAP"))
		printf("# test hook: DIOGAP_TEST_NO_PAGEMAP: /proc/self/pagemap treated as absent (mincore)\n");
	for (it = 1; it <= o.iterations; it++) {
		struct dg_result r;
		struct dg_buf b;
		char name[256];

		memset(&r, 0, sizeof(r));
		memset(&b, 0, sizeof(b));
		b.fd = -1;
		test_name(&o, it, name, sizeof(name));
		r.name = name;
		r.iteration = it;
		r.verdict = rp->run(&o, it, run_id, &r, &b);
		dg_ktap_result(&o, &b, &r);
		dg_buf_release(&b);
		dg_ranges_free(&r.gaps);
		dg_ranges_free(&r.predicted);
		dg_ranges_free(&r.unverifiable);
		if (abandoned[0]) {
			/* a task stuck in the kernel holds the file: no unlink,
			 * open or stat of it from here on (we would hang beside it) */
			printf("# file kept: %s (%s)\n", o.file, abandoned);
			skip_rest(&o, it + 1);
			break;
		}
	}
	rc = dg_ktap_end();
	fflush(NULL);
	if (rc == DG_FAIL && o.keep && !abandoned[0]) {
		printf("# kept the target file: %s\n", o.file);
		cleanup_path = NULL;
	}
	return rc;
}
