// SPDX-License-Identifier: GPL-2.0
/*
 * output.c - KTAP v1 on stdout (diagnostics before each result line, whole
 * lines, flushed) and one JSON object per test appended to --json FILE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "diogap.h"

#define MAX_LISTED 16 /* gap lines in KTAP; JSON always has them all */

static unsigned ktap_n, n_pass, n_fail, n_skip, n_err;
static int merged = -1;

/* ---- a growing string -------------------------------------------------- */
void dg_sb_printf(struct dg_sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t left = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, left, fmt, ap);
		va_end(ap);
		CHECK(n >= 0);
		if ((size_t)n < left) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		CHECK(b->s);
	}
}

void dg_sb_str(struct dg_sb *b, const char *s)
{
	if (!s) {
		dg_sb_printf(b, "null");
		return;
	}
	dg_sb_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			dg_sb_printf(b, "\\%c", c);
		else if (c < 0x20)
			dg_sb_printf(b, "\\u%04x", c);
		else
			dg_sb_printf(b, "%c", c);
	}
	dg_sb_printf(b, "\"");
}

static void sb_ranges(struct dg_sb *b, const struct dg_ranges *rs, bool cls)
{
	size_t i;

	dg_sb_printf(b, "[");
	for (i = 0; i < rs->n; i++) {
		dg_sb_printf(b, "%s[%" PRIu64 ",%" PRIu64, i ? "," : "",
			  rs->r[i].start, rs->r[i].end);
		if (cls)
			dg_sb_printf(b, ",\"%s\"", dg_class_name(rs->r[i].cls));
		dg_sb_printf(b, "]");
	}
	dg_sb_printf(b, "]");
}

/* Byte ranges [[start,end],...] of the pages set in v (a buffer's pages). */
static void sb_page_ranges(struct dg_sb *j, const unsigned char *v, size_t n,
			   size_t page)
{
	size_t i, e;
	bool first = true;

	dg_sb_printf(j, "[");
	for (i = 0; v && i < n; i++) {
		if (!v[i])
			continue;
		for (e = i; e < n && v[e]; e++)
			;
		dg_sb_printf(j, "%s[%zu,%zu]", first ? "" : ",", i * page, e * page);
		first = false;
		i = e;
	}
	dg_sb_printf(j, "]");
}

static const char *tristate_json(enum dg_tristate t)
{
	return t == DG_YES ? "true" : t == DG_NO ? "false" : "null";
}

static void sb_hex(struct dg_sb *b, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	dg_sb_printf(b, "\"");
	for (i = 0; i < n; i++)
		dg_sb_printf(b, "%c%c", hex[p[i] >> 4], hex[p[i] & 15]);
	dg_sb_printf(b, "\"");
}

static const char *extent_name(const struct dg_range *g)
{
	return g->extent == 0 ? "hole" : g->extent == 1 ? "extent" : "unknown";
}

static const char *kernel_release(void)
{
	static struct utsname u;
	static bool done;

	if (!done) {
		CHECK(uname(&u) == 0);
		done = true;
	}
	return u.release;
}

static void json_record(const struct dg_opts *o, const struct dg_buf *b,
			const struct dg_result *r)
{
	struct dg_sb j = { 0 };
	size_t i;
	int fd;

	dg_sb_printf(&j, "{\"repro\":");
	dg_sb_str(&j, o->rp ? o->rp->name : NULL);
	dg_sb_printf(&j, ",\"name\":");
	dg_sb_str(&j, r->name);
	dg_sb_printf(&j, ",\"verdict\":\"%s\",\"iteration\":%u,\"iterations\":%u",
		  dg_verdict_name(r->verdict), r->iteration, o->iterations);
	dg_sb_printf(&j, ",\"symptom\":");
	dg_sb_str(&j, r->verdict == DG_FAIL ? r->symptom : NULL);
	dg_sb_printf(&j, ",\"size\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"chunk\":%" PRIu64,
		  o->size, o->offset,
		  r->chunk_used ? r->chunk_used : o->chunk ? o->chunk : o->size);
	dg_sb_printf(&j, ",\"fault\":");
	dg_sb_str(&j, o->fault);
	if (dg_takes_param(o->rp, "buffer")) {
		char buf[PATH_MAX + 8];

		dg_sb_printf(&j, ",\"buffer\":");
		dg_sb_str(&j, dg_buf_arg(o, buf, sizeof(buf)));
	}
	dg_sb_printf(&j, ",\"engine\":");
	dg_sb_str(&j, o->engine);
	if (dg_takes_param(o->rp, "qd"))
		dg_sb_printf(&j, ",\"qd\":%u", o->qd);
	if (dg_takes_param(o->rp, "fixed_buffers"))
		dg_sb_printf(&j, ",\"fixed_buffers\":%s", o->fixed_buffers ? "true" : "false");
	if (dg_takes_param(o->rp, "async"))
		dg_sb_printf(&j, ",\"async\":%s", o->async ? "true" : "false");
	if (dg_takes_param(o->rp, "hang_timeout"))
		dg_sb_printf(&j, ",\"hang_timeout\":%g", o->hang_timeout);
	dg_sb_printf(&j, ",\"nocow\":%s,\"any_fs\":%s,\"seed\":%" PRIu64,
		  o->nocow ? "true" : "false", o->any_fs ? "true" : "false", o->seed);
	dg_sb_printf(&j, ",\"kernel\":");
	dg_sb_str(&j, kernel_release());
	dg_sb_printf(&j, ",\"fstype\":");
	dg_sb_str(&j, o->fstype);
	dg_sb_printf(&j, ",\"datasum\":");
	dg_sb_str(&j, o->datasum);
	dg_sb_printf(&j, ",\"alignment\":%u,\"alignment_source\":", o->dio_align);
	dg_sb_str(&j, o->align_source);
	dg_sb_printf(&j, ",\"residency\":{\"pages\":%zu,\"resident\":%zu,\"ranges\":[",
		  b ? b->npages : 0, r->resident_pages);
	for (i = 0; b && b->seen && i < b->npages; i++) {
		size_t e;

		if (!b->seen[i])
			continue;
		for (e = i; e < b->npages && b->seen[e]; e++)
			;
		dg_sb_printf(&j, "%s[%zu,%zu]", j.s[j.len - 1] == '[' ? "" : ",",
			  i * b->page, e * b->page);
		i = e;
	}
	dg_sb_printf(&j, "]},\"residency_source\":");
	dg_sb_str(&j, b && b->source ? b->source : NULL);
	dg_sb_printf(&j, ",\"want\":");
	sb_page_ranges(&j, b ? b->want : NULL, b ? b->npages : 0, b ? b->page : 0);
	dg_sb_printf(&j, ",\"seen\":");
	sb_page_ranges(&j, b ? b->seen : NULL, b ? b->npages : 0, b ? b->page : 0);
	dg_sb_printf(&j, ",\"precondition\":{\"met\":%s,\"why\":",
		     tristate_json(r->precondition));
	dg_sb_str(&j, r->precondition ? r->precondition_why : NULL);
	dg_sb_printf(&j, "},\"direct\":%s", tristate_json(r->direct));
	if (r->dirtied_set)
		dg_sb_printf(&j, ",\"dirtied_pages\":%" PRId64 ",\"writeback_pages\":%" PRId64
			     ",\"dirtied_base\":%" PRId64 ",\"dirtied_written\":%" PRId64,
			     r->dirtied_pages, r->writeback_pages, r->dirtied_base,
			     r->dirtied_written);
	else
		dg_sb_printf(&j, ",\"dirtied_pages\":null,\"writeback_pages\":null,"
			     "\"dirtied_base\":null,\"dirtied_written\":null");
	if (r->probe_set)
		dg_sb_printf(&j, ",\"direct_probe\":{\"pages\":%" PRId64 ",\"dirtied\":%" PRId64
			     ",\"written\":%" PRId64 "}",
			     r->probe_pages, r->probe_dirtied, r->probe_written);
	else
		dg_sb_printf(&j, ",\"direct_probe\":null");
	dg_sb_printf(&j, ",\"unverifiable\":");
	sb_ranges(&j, &r->unverifiable, false);
	dg_sb_printf(&j, ",\"buffer_note\":");
	dg_sb_str(&j, b ? b->note : NULL);
	dg_sb_printf(&j, ",\"gaps\":");
	sb_ranges(&j, &r->gaps, true);
	dg_sb_printf(&j, ",\"gap_extents\":[");
	for (i = 0; i < r->gaps.n; i++)
		dg_sb_printf(&j, "%s[%" PRIu64 ",%" PRIu64 ",\"%s\"]", i ? "," : "",
			  r->gaps.r[i].start, r->gaps.r[i].end,
			  r->gaps.r[i].cls == DG_ZERO ? extent_name(&r->gaps.r[i]) : "n/a");
	dg_sb_printf(&j, "],\"predicted\":");
	sb_ranges(&j, &r->predicted, false);
	/* null when nothing was lost: the prediction is what a buggy kernel
	 * would lose, there is nothing to compare it with */
	dg_sb_printf(&j, ",\"predicted_match\":%s", !r->gaps.n ? "null" :
		  dg_ranges_match(&r->gaps, &r->predicted) ? "true" : "false");
	dg_sb_printf(&j, ",\"size_expected\":%" PRIu64 ",\"size_seen\":%" PRIu64
		  ",\"write_us\":%" PRIu64 ",\"verify_us\":%" PRIu64,
		  r->size_expected, r->size_seen, r->write_us, r->verify_us);
	if (r->verdict == DG_FAIL && r->first_bad.set) {
		dg_sb_printf(&j, ",\"first_bad\":{\"offset\":%" PRIu64 ",\"class\":\"%s\",\"got\":",
			  r->first_bad.offset, dg_class_name(r->first_bad.cls));
		sb_hex(&j, r->first_bad.got, DG_SECTOR);
		dg_sb_printf(&j, ",\"want\":");
		sb_hex(&j, r->first_bad.want, DG_SECTOR);
		dg_sb_printf(&j, "}");
	}
	dg_sb_printf(&j, ",\"diag\":");
	dg_sb_str(&j, r->diag);
	if (getenv("DIOGAP_TEST_CORRUPT") && *getenv("DIOGAP_TEST_CORRUPT")) {
		dg_sb_printf(&j, ",\"test_corrupt\":");
		dg_sb_str(&j, getenv("DIOGAP_TEST_CORRUPT"));
	}
	dg_sb_printf(&j, ",\"rerun\":");
	dg_sb_str(&j, o->argv_line);
	if (r->extra_json && *r->extra_json)
		dg_sb_printf(&j, ",%s", r->extra_json);
	dg_sb_printf(&j, "}\n");

	fd = open(o->json_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, j.s, j.len) == (ssize_t)j.len); /* one write: one line */
	close(fd);
	free(j.s);
}

void dg_ktap_begin(unsigned ntests)
{
	ktap_n = n_pass = n_fail = n_skip = n_err = 0;
	merged = -1;
	printf("KTAP version 1\n1..%u\n", ntests);
	fflush(stdout);
}

static void print_ranges(const char *what, const struct dg_ranges *rs, bool ext)
{
	size_t i;

	for (i = 0; i < rs->n && i < MAX_LISTED; i++) {
		const struct dg_range *g = &rs->r[i];

		if (ext)
			printf("# %s [%" PRIu64 ", %" PRIu64 ") %s%s%s\n", what, g->start,
			       g->end, dg_class_name(g->cls),
			       g->cls == DG_ZERO ? " " : "",
			       g->cls == DG_ZERO ? extent_name(g) : "");
		else
			printf("# %s [%" PRIu64 ", %" PRIu64 ")\n", what, g->start, g->end);
	}
	if (rs->n > MAX_LISTED)
		printf("# ... %zu more %s ranges in the JSON record\n", rs->n - MAX_LISTED,
		       what);
}

void dg_ktap_result(const struct dg_opts *o, const struct dg_buf *b,
		    const struct dg_result *r)
{
	unsigned n = ++ktap_n;

	merged = merged < 0 ? r->verdict : dg_verdict_merge(merged, r->verdict);
	if (r->verdict == DG_FAIL)
		dg_note_fail(); /* sticky: a later setup error exits 1 */
	if (b && b->note)
		printf("# %s: buffer: %s\n", r->name, b->note);
	if (r->dirtied_set)
		printf("# %s: direct %s: nr_dirtied +%" PRId64 " nr_written +%" PRId64
		       " for %" PRId64 " pages written (device stack dirties %" PRId64 ")\n",
		       r->name, r->direct == DG_NO ? "no" : r->direct == DG_YES ? "yes" :
		       "unknown (counters not exact)", r->dirtied_pages, r->writeback_pages,
		       r->dirtied_written, r->dirtied_base);
	if (r->probe_set)
		printf("# %s: too few pages to tell from noise, so a probe of %" PRId64
		       " pages to a new file beside it judged: nr_dirtied +%" PRId64
		       " nr_written +%" PRId64 ": direct %s\n",
		       r->name, r->probe_pages, r->probe_dirtied, r->probe_written,
		       r->direct == DG_NO ? "no" : r->direct == DG_YES ? "yes" : "unknown");
	if (r->unverifiable.n) {
		uint64_t bytes = 0;
		size_t i;

		for (i = 0; i < r->unverifiable.n; i++)
			bytes += r->unverifiable.r[i].end - r->unverifiable.r[i].start;
		printf("# %s: unverifiable: %" PRIu64 " bytes in %zu ranges, first [%" PRIu64
		       ", %" PRIu64 "): anon pages never touched are zeros, and so is a hole\n",
		       r->name, bytes, r->unverifiable.n, r->unverifiable.r[0].start,
		       r->unverifiable.r[0].end);
	}
	if (r->verdict != DG_SKIP)
		printf("# %s: resident %zu/%zu pages (%s), write %" PRIu64 " us, verify %" PRIu64
		       " us, size %" PRIu64 "/%" PRIu64 "\n",
		       r->name, r->resident_pages, b ? b->npages : 0,
		       b && b->source ? b->source : "none", r->write_us, r->verify_us,
		       r->size_seen, r->size_expected);
	if (r->verdict == DG_FAIL) {
		/* lines only for what there is: a hang or a size-only FAIL has
		 * no gaps, a reproducer without residency predicts nothing;
		 * a comparison needs both */
		print_ranges("gap", &r->gaps, true);
		print_ranges("predicted", &r->predicted, false);
		if (r->gaps.n && r->predicted.n)
			printf("# gaps %s the prediction\n",
			       dg_ranges_match(&r->gaps, &r->predicted) ? "match" : "do not match");
	}
	if (r->diag && r->verdict != DG_PASS)
		printf("# %s: %s\n", dg_verdict_name(r->verdict), r->diag);
	if (r->verdict == DG_FAIL || r->verdict == DG_BROKEN)
		printf("# rerun: %s\n", o->argv_line);
	switch (r->verdict) {
	case DG_PASS:
		n_pass++;
		printf("ok %u %s\n", n, r->name);
		break;
	case DG_FAIL:
		n_fail++;
		printf("not ok %u %s\n", n, r->name);
		break;
	case DG_SKIP:
		n_skip++;
		printf("ok %u %s # SKIP %s\n", n, r->name, r->diag ? r->diag : "");
		break;
	default:
		n_err++;
		printf("not ok %u %s # ERROR\n", n, r->name);
		break;
	}
	fflush(stdout);
	if (o->json_path)
		json_record(o, b, r);
}

int dg_ktap_end(void)
{
	printf("# Totals: pass:%u fail:%u xfail:0 xpass:0 skip:%u error:%u\n", n_pass,
	       n_fail, n_skip, n_err);
	fflush(stdout);
	return merged < 0 ? DG_BROKEN : merged;
}
