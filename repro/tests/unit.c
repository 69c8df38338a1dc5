// SPDX-License-Identifier: GPL-2.0
/*
 * unit.c - unit tests of the reproducer library on synthetic data: the
 * data pattern, fault patterns, sector classification, gap merging,
 * FIEMAP labelling, prediction and the residency machinery. The FAIL path
 * (gaps found, classified and matched against the prediction) is driven
 * here with buffers shaped like a buggy kernel's output, since the running
 * kernel has the fixes. Last line: "N passed, N failed"; exit 1 on any
 * failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diogap.h"

static unsigned n_pass, n_fail, checks_failed;

#define EXPECT(cond) \
	do { \
		if (!(cond)) { \
			printf("#   %s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
			checks_failed++; \
		} \
	} while (0)

#define EXPECT_EQ(a, b) \
	do { \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b); \
		if (a_ != b_) { \
			printf("#   %s:%d: %s == %" PRIu64 ", expected %" PRIu64 "\n", \
			       __FILE__, __LINE__, #a, a_, b_); \
			checks_failed++; \
		} \
	} while (0)

static void run_test(const char *name, void (*fn)(void))
{
	checks_failed = 0;
	fn();
	if (checks_failed) {
		n_fail++;
		printf("not ok %u %s\n", n_pass + n_fail, name);
	} else {
		n_pass++;
		printf("ok %u %s\n", n_pass + n_fail, name);
	}
}

#define RUN(fn) run_test(#fn, fn)

static const uint64_t RUN_ID = 0x1234567890abcdefULL;

/* Expect ranges exactly: n triples {start, end, class}. */
static void expect_ranges(const struct dg_ranges *rs, size_t n,
			  const uint64_t (*want)[3], int line)
{
	size_t i;

	if (rs->n != n) {
		printf("#   line %d: %zu ranges, expected %zu\n", line, rs->n, n);
		for (i = 0; i < rs->n; i++)
			printf("#     [%" PRIu64 ", %" PRIu64 ") %s\n", rs->r[i].start,
			       rs->r[i].end, dg_class_name(rs->r[i].cls));
		checks_failed++;
		return;
	}
	for (i = 0; i < n; i++) {
		if (rs->r[i].start != want[i][0] || rs->r[i].end != want[i][1] ||
		    rs->r[i].cls != (enum dg_class)want[i][2]) {
			printf("#   line %d: range %zu is [%" PRIu64 ", %" PRIu64 ") %s, expected [%" PRIu64
			       ", %" PRIu64 ") %s\n", line, i, rs->r[i].start, rs->r[i].end,
			       dg_class_name(rs->r[i].cls), want[i][0], want[i][1],
			       dg_class_name((enum dg_class)want[i][2]));
			checks_failed++;
		}
	}
}
#define EXPECT_RANGES(rs, ...) \
	do { \
		static const uint64_t w_[][3] = { __VA_ARGS__ }; \
		expect_ranges((rs), sizeof(w_) / sizeof(w_[0]), w_, __LINE__); \
	} while (0)
#define EXPECT_NO_RANGES(rs) expect_ranges((rs), 0, NULL, __LINE__)

/* ---- outcomes ---------------------------------------------------------- */
static void test_verdict_merge(void)
{
	EXPECT_EQ(dg_verdict_merge(DG_PASS, DG_FAIL), DG_FAIL);
	EXPECT_EQ(dg_verdict_merge(DG_BROKEN, DG_FAIL), DG_FAIL);
	EXPECT_EQ(dg_verdict_merge(DG_PASS, DG_BROKEN), DG_BROKEN);
	EXPECT_EQ(dg_verdict_merge(DG_SKIP, DG_PASS), DG_PASS);
	EXPECT_EQ(dg_verdict_merge(DG_SKIP, DG_SKIP), DG_SKIP);
	EXPECT_EQ(dg_verdict_merge(DG_PASS, 77), DG_BROKEN);
	EXPECT(!strcmp(dg_verdict_name(DG_FAIL), "FAIL"));
	EXPECT(!strcmp(dg_verdict_name(3), "BROKEN"));
}

/* ---- sizes --------------------------------------------------------------- */
static void test_parse_size(void)
{
	uint64_t v = 0;

	EXPECT(dg_parse_size("4096", &v) == 0 && v == 4096);
	EXPECT(dg_parse_size("64K", &v) == 0 && v == 65536);
	EXPECT(dg_parse_size("64k", &v) == 0 && v == 65536);
	EXPECT(dg_parse_size("1M", &v) == 0 && v == 1048576);
	EXPECT(dg_parse_size("16MiB", &v) == 0 && v == 16777216);
	EXPECT(dg_parse_size("2G", &v) == 0 && v == 2147483648ULL);
	EXPECT(dg_parse_size("0", &v) == 0 && v == 0);
	EXPECT(dg_parse_size("", &v) == -1);
	EXPECT(dg_parse_size("K", &v) == -1);
	EXPECT(dg_parse_size("-4096", &v) == -1);
	EXPECT(dg_parse_size("1T", &v) == -1);
	EXPECT(dg_parse_size("1.5M", &v) == -1);
	EXPECT(dg_parse_size("4096 ", &v) == -1);
	EXPECT(dg_parse_size("99999999999999999999", &v) == -1);
	EXPECT(dg_parse_size("17179869184G", &v) == -1); /* 2^64: overflow */
}

/* ---- data pattern -------------------------------------------------------- */
static void test_pattern_self_describing(void)
{
	char *buf = dg_xmalloc(8 * DG_SECTOR), *other = dg_xmalloc(8 * DG_SECTOR);
	struct dg_sector_hdr h;
	size_t s;

	dg_pattern_fill(buf, 8 * DG_SECTOR, 1 << 20, RUN_ID, 3);
	for (s = 0; s < 8; s++) {
		memcpy(&h, buf + s * DG_SECTOR, sizeof(h));
		EXPECT_EQ(h.magic, DG_MAGIC);
		EXPECT_EQ(h.offset, (1 << 20) + s * DG_SECTOR);
		EXPECT_EQ(h.run_id, RUN_ID);
		EXPECT_EQ(h.iteration, 3);
		EXPECT(dg_sector_valid(buf + s * DG_SECTOR));
	}
	/* filler differs between sectors, iterations and runs */
	EXPECT(memcmp(buf + 64, buf + DG_SECTOR + 64, DG_SECTOR - 64) != 0);
	dg_pattern_fill(other, 8 * DG_SECTOR, 1 << 20, RUN_ID, 4);
	EXPECT(memcmp(buf + 64, other + 64, DG_SECTOR - 64) != 0);
	dg_pattern_fill(other, 8 * DG_SECTOR, 1 << 20, RUN_ID + 1, 3);
	EXPECT(memcmp(buf + 64, other + 64, DG_SECTOR - 64) != 0);
	/* deterministic */
	dg_pattern_fill(other, 8 * DG_SECTOR, 1 << 20, RUN_ID, 3);
	EXPECT(memcmp(buf, other, 8 * DG_SECTOR) == 0);
	/* any single bit flip breaks the checksum, header or filler */
	buf[DG_SECTOR - 1] ^= 0x10;
	EXPECT(!dg_sector_valid(buf));
	buf[DG_SECTOR - 1] ^= 0x10;
	buf[9] ^= 1; /* offset field */
	EXPECT(!dg_sector_valid(buf));
	buf[9] ^= 1;
	buf[24] ^= 1; /* iteration field */
	EXPECT(!dg_sector_valid(buf));
	buf[24] ^= 1;
	EXPECT(dg_sector_valid(buf));
	free(buf);
	free(other);
}

/* ---- fault patterns ------------------------------------------------------ */
static size_t count(const unsigned char *w, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += w[i];
	return c;
}

static void test_fault_patterns(void)
{
	unsigned char w[256];
	char err[160];
	size_t i, P = 4096;

	EXPECT(dg_fault_want("first", 256 * P, P, 0, w, err, sizeof(err)) == 0);
	EXPECT(w[0] == 1 && count(w, 256) == 1);
	/* first = the first page of every write call */
	EXPECT(dg_fault_want("first", 256 * P, P, 16 * P, w, err, sizeof(err)) == 0);
	EXPECT_EQ(count(w, 256), 16);
	for (i = 0; i < 256; i++)
		EXPECT_EQ(w[i], i % 16 == 0);
	/* a call that starts mid-page makes that page wanted */
	EXPECT(dg_fault_want("first", 4 * P, P, 3 * P / 2, w, err, sizeof(err)) == 0);
	EXPECT(w[0] == 1 && w[1] == 1 && w[2] == 0 && w[3] == 1);
	EXPECT(dg_fault_want("none", 256 * P, P, 0, w, err, sizeof(err)) == 0);
	EXPECT_EQ(count(w, 256), 0);
	EXPECT(dg_fault_want("all", 256 * P, P, 0, w, err, sizeof(err)) == 0);
	EXPECT_EQ(count(w, 256), 256);
	EXPECT(dg_fault_want("stride:3", 10 * P, P, 0, w, err, sizeof(err)) == 0);
	EXPECT(w[0] && !w[1] && !w[2] && w[3] && w[6] && w[9] && count(w, 10) == 4);
	EXPECT(dg_fault_want("pages:0,3-5,9", 10 * P, P, 0, w, err, sizeof(err)) == 0);
	EXPECT(w[0] && w[3] && w[4] && w[5] && w[9] && count(w, 10) == 5);
	/* a ragged last page still counts as a page */
	EXPECT(dg_fault_want("pages:2", 2 * P + 512, P, 0, w, err, sizeof(err)) == 0);
	EXPECT(w[2] == 1);
}

static void test_fault_random(void)
{
	unsigned char a[4096], b[4096];
	char err[160];
	size_t P = 4096, c;

	EXPECT(dg_fault_want("random:7:50", 4096 * P, P, 0, a, err, sizeof(err)) == 0);
	EXPECT(dg_fault_want("random:7:50", 4096 * P, P, 0, b, err, sizeof(err)) == 0);
	EXPECT(memcmp(a, b, sizeof(a)) == 0); /* seeded: reproducible */
	c = count(a, 4096);
	EXPECT(c > 1800 && c < 2300);
	EXPECT(dg_fault_want("random:8:50", 4096 * P, P, 0, b, err, sizeof(err)) == 0);
	EXPECT(memcmp(a, b, sizeof(a)) != 0);
	EXPECT(dg_fault_want("random:0:0", 4096 * P, P, 0, a, err, sizeof(err)) == 0);
	EXPECT_EQ(count(a, 4096), 0);
	EXPECT(dg_fault_want("random:0:100", 4096 * P, P, 0, a, err, sizeof(err)) == 0);
	EXPECT_EQ(count(a, 4096), 4096);
}

static void test_fault_nonsense(void)
{
	static const char *const bad[] = {
		"", "First", "first ", "stride", "stride:", "stride:0", "stride:x",
		"stride:-1", "random", "random:1", "random:1:", "random:1:101",
		"random:x:5", "random:1:5:9", "pages:", "pages:1,", "pages:5-3",
		"pages:16", "pages:a", "pages:1--2", "pages:,1", "bogus",
	};
	unsigned char w[16];
	char err[160];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (dg_fault_want(bad[i], 16 * 4096, 4096, 0, w, err, sizeof(err)) != -1) {
			printf("#   pattern '%s' was accepted\n", bad[i]);
			checks_failed++;
		}
		EXPECT(err[0] != '\0');
	}
	EXPECT(dg_fault_want(NULL, 16 * 4096, 4096, 0, w, err, sizeof(err)) == -1);
}

/* ---- classification -------------------------------------------------------- */
static void test_classify(void)
{
	char want[DG_SECTOR], got[DG_SECTOR], tmp[2 * DG_SECTOR];
	const uint64_t off = 8192;

	dg_pattern_fill(want, DG_SECTOR, off, RUN_ID, 2);
	memcpy(got, want, DG_SECTOR);
	EXPECT_EQ(dg_classify(got, want, off, RUN_ID, 2), DG_OK);
	memset(got, 0, DG_SECTOR);
	EXPECT_EQ(dg_classify(got, want, off, RUN_ID, 2), DG_ZERO);
	dg_pattern_fill(got, DG_SECTOR, off, RUN_ID, 1); /* older iteration */
	EXPECT_EQ(dg_classify(got, want, off, RUN_ID, 2), DG_STALE);
	dg_pattern_fill(got, DG_SECTOR, off, RUN_ID ^ 1, 2); /* older run */
	EXPECT_EQ(dg_classify(got, want, off, RUN_ID, 2), DG_STALE);
	dg_pattern_fill(tmp, 2 * DG_SECTOR, off - DG_SECTOR, RUN_ID, 2);
	memcpy(got, tmp, DG_SECTOR); /* the sector that belongs one earlier */
	EXPECT_EQ(dg_classify(got, want, off, RUN_ID, 2), DG_MISPLACED);
	memset(got, 0xa5, DG_SECTOR);
	EXPECT_EQ(dg_classify(got, want, off, RUN_ID, 2), DG_GARBAGE);
	memcpy(got, want, DG_SECTOR);
	got[300] ^= 0xff; /* torn/bit-rotted: header fine, checksum not */
	EXPECT_EQ(dg_classify(got, want, off, RUN_ID, 2), DG_GARBAGE);
	memset(got, 0, DG_SECTOR);
	got[511] = 1; /* almost zero is not zero */
	EXPECT_EQ(dg_classify(got, want, off, RUN_ID, 2), DG_GARBAGE);
	/* an expected zero sector (untouched anon page) that is zero: ok */
	memset(want, 0, DG_SECTOR);
	memset(got, 0, DG_SECTOR);
	EXPECT_EQ(dg_classify(got, want, off, RUN_ID, 2), DG_OK);
	/* ... holding this very write's data instead: garbage */
	dg_pattern_fill(got, DG_SECTOR, off, RUN_ID, 2);
	EXPECT_EQ(dg_classify(got, want, off, RUN_ID, 2), DG_GARBAGE);
	EXPECT(!strcmp(dg_class_name(DG_MISPLACED), "misplaced"));
}

/* ---- verification and gap merging ------------------------------------------ */
#define NSEC 64
#define BASE 1048576ULL
#define S(n) (BASE + (uint64_t)(n) * DG_SECTOR)

struct synth {
	char *want, *got;
	size_t len;
};

static void synth_init(struct synth *s, size_t len)
{
	s->len = len;
	s->want = dg_xmalloc(len);
	s->got = dg_xmalloc(len);
	dg_pattern_fill(s->want, len, BASE, RUN_ID, 2);
	memcpy(s->got, s->want, len);
}

static void synth_free(struct synth *s)
{
	free(s->want);
	free(s->got);
}

static void test_verify_clean(void)
{
	struct dg_ranges g = { 0 };
	struct synth s;

	synth_init(&s, NSEC * DG_SECTOR);
	EXPECT_EQ(dg_verify(s.got, s.want, s.len, BASE, RUN_ID, 2, &g), 0);
	EXPECT_NO_RANGES(&g);
	dg_ranges_free(&g);
	synth_free(&s);
}

static void test_verify_mixed_gaps(void)
{
	struct dg_ranges g = { 0 };
	struct synth s;
	char *tmp;
	size_t i;

	synth_init(&s, NSEC * DG_SECTOR);
	memset(s.got, 0, 8 * DG_SECTOR); /* zero run from the first sector */
	tmp = dg_xmalloc(2 * DG_SECTOR);
	dg_pattern_fill(tmp, 2 * DG_SECTOR, S(10), RUN_ID, 1); /* stale 10-11 */
	memcpy(s.got + 10 * DG_SECTOR, tmp, 2 * DG_SECTOR);
	memcpy(s.got + 12 * DG_SECTOR, s.want + 30 * DG_SECTOR, DG_SECTOR); /* misplaced */
	for (i = 0; i < DG_SECTOR; i++) /* garbage at 30 */
		s.got[30 * DG_SECTOR + i] = (char)(i * 7 + 1);
	memset(s.got + 63 * DG_SECTOR, 0, DG_SECTOR); /* the last sector */
	EXPECT_EQ(dg_verify(s.got, s.want, s.len, BASE, RUN_ID, 2, &g), 8 + 2 + 1 + 1 + 1);
	EXPECT_RANGES(&g, { S(0), S(8), DG_ZERO }, { S(10), S(12), DG_STALE },
		      { S(12), S(13), DG_MISPLACED }, { S(30), S(31), DG_GARBAGE },
		      { S(63), S(64), DG_ZERO });
	dg_ranges_free(&g);
	free(tmp);
	synth_free(&s);
}

static void test_verify_whole_file_gap(void)
{
	struct dg_ranges g = { 0 };
	struct synth s;

	synth_init(&s, NSEC * DG_SECTOR);
	memset(s.got, 0, s.len);
	EXPECT_EQ(dg_verify(s.got, s.want, s.len, BASE, RUN_ID, 2, &g), NSEC);
	EXPECT_RANGES(&g, { S(0), S(NSEC), DG_ZERO });
	dg_ranges_free(&g);
	/* the whole range stale (a lost overwrite): one stale range */
	dg_pattern_fill(s.got, s.len, BASE, RUN_ID, 1);
	EXPECT_EQ(dg_verify(s.got, s.want, s.len, BASE, RUN_ID, 2, &g), NSEC);
	EXPECT_RANGES(&g, { S(0), S(NSEC), DG_STALE });
	dg_ranges_free(&g);
	synth_free(&s);
}

static void test_verify_ragged_edges(void)
{
	struct dg_ranges g = { 0 };
	struct synth s;
	size_t len = 4 * DG_SECTOR + 100;

	/* the gap starts and ends mid-sector: whole sectors are reported */
	synth_init(&s, NSEC * DG_SECTOR);
	memset(s.got + 2 * DG_SECTOR + 200, 0, 3 * DG_SECTOR);
	EXPECT_EQ(dg_verify(s.got, s.want, s.len, BASE, RUN_ID, 2, &g), 4);
	EXPECT_RANGES(&g, { S(2), S(3), DG_GARBAGE }, { S(3), S(5), DG_ZERO },
		      { S(5), S(6), DG_GARBAGE });
	dg_ranges_free(&g);
	synth_free(&s);
	/* a tail shorter than a sector: zero and garbage */
	synth_init(&s, len);
	memset(s.got + 4 * DG_SECTOR, 0, 100);
	EXPECT_EQ(dg_verify(s.got, s.want, len, BASE, RUN_ID, 2, &g), 1);
	EXPECT_RANGES(&g, { S(4), S(4) + 100, DG_ZERO });
	dg_ranges_free(&g);
	s.got[4 * DG_SECTOR + 50] = 9;
	EXPECT_EQ(dg_verify(s.got, s.want, len, BASE, RUN_ID, 2, &g), 1);
	EXPECT_RANGES(&g, { S(4), S(4) + 100, DG_GARBAGE });
	dg_ranges_free(&g);
	/* zero up to and including the tail: the zero run swallows it */
	memset(s.got + 3 * DG_SECTOR, 0, DG_SECTOR + 100);
	EXPECT_EQ(dg_verify(s.got, s.want, len, BASE, RUN_ID, 2, &g), 2);
	EXPECT_RANGES(&g, { S(3), S(4) + 100, DG_ZERO });
	dg_ranges_free(&g);
	synth_free(&s);
}

static void test_ranges_merge(void)
{
	struct dg_ranges g = { 0 };

	dg_ranges_add(&g, 0, 512, DG_ZERO);
	dg_ranges_add(&g, 512, 1024, DG_ZERO);   /* adjacent, same: merged */
	dg_ranges_add(&g, 1024, 1536, DG_STALE); /* adjacent, other class */
	dg_ranges_add(&g, 2048, 2560, DG_STALE); /* same class, not adjacent */
	dg_ranges_add(&g, 2560, 3072, DG_STALE);
	EXPECT_RANGES(&g, { 0, 1024, DG_ZERO }, { 1024, 1536, DG_STALE },
		      { 2048, 3072, DG_STALE });
	dg_ranges_free(&g);
	EXPECT(g.n == 0 && g.r == NULL);
}

/* ---- prediction ------------------------------------------------------------ */
static void test_predict(void)
{
	unsigned char seen[16] = { 0 };
	struct dg_ranges p = { 0 };
	const size_t P = 4096;

	/* generic/708: first page resident, one call */
	seen[0] = 1;
	dg_predict(seen, 16, P, 0, 0, 16 * P, &p);
	EXPECT_RANGES(&p, { 0, P, DG_ZERO });
	dg_ranges_free(&p);
	/* fault-around made 3 pages resident; file offset shifts the range */
	seen[1] = seen[2] = 1;
	dg_predict(seen, 16, P, 1 << 20, 0, 16 * P, &p);
	EXPECT_RANGES(&p, { (1 << 20), (1 << 20) + 3 * P, DG_ZERO });
	dg_ranges_free(&p);
	/* the first non-resident page decides, later resident pages do not */
	memset(seen, 0, sizeof(seen));
	seen[0] = seen[5] = seen[6] = 1;
	dg_predict(seen, 16, P, 0, 0, 16 * P, &p);
	EXPECT_RANGES(&p, { 0, P, DG_ZERO });
	dg_ranges_free(&p);
	/* first page not resident: nothing is submitted before the fault */
	memset(seen, 0, sizeof(seen));
	seen[1] = 1;
	dg_predict(seen, 16, P, 0, 0, 16 * P, &p);
	EXPECT_NO_RANGES(&p);
	/* everything resident: nothing faults */
	memset(seen, 1, sizeof(seen));
	dg_predict(seen, 16, P, 0, 0, 16 * P, &p);
	EXPECT_NO_RANGES(&p);
	/* per write call (chunk 4 pages): each call loses its own prefix */
	memset(seen, 0, sizeof(seen));
	seen[0] = seen[4] = seen[5] = seen[8] = 1;
	seen[12] = seen[13] = seen[14] = seen[15] = 1; /* last call all resident */
	dg_predict(seen, 16, P, 0, 4 * P, 16 * P, &p);
	EXPECT_RANGES(&p, { 0, P, DG_ZERO }, { 4 * P, 6 * P, DG_ZERO },
		      { 8 * P, 9 * P, DG_ZERO });
	dg_ranges_free(&p);
	/* a short last call (size not a multiple of chunk) */
	memset(seen, 0, sizeof(seen));
	seen[0] = seen[12] = 1;
	dg_predict(seen, 14, P, 0, 12 * P, 14 * P, &p);
	EXPECT_RANGES(&p, { 0, P, DG_ZERO }, { 12 * P, 13 * P, DG_ZERO });
	dg_ranges_free(&p);
	/* a one-page call cannot be partial */
	memset(seen, 0, sizeof(seen));
	seen[0] = 1;
	dg_predict(seen, 2, P, 0, P, 2 * P, &p);
	EXPECT_NO_RANGES(&p);
	/* calls that start mid-page (chunk 6 KiB): the call [6K, 12K) starts
	 * in resident page 1 and hits non-resident page 2 */
	memset(seen, 0, sizeof(seen));
	seen[0] = seen[1] = 1;
	dg_predict(seen, 3, P, 0, 6 * 1024, 12 * 1024, &p);
	EXPECT_RANGES(&p, { 6 * 1024, 2 * P, DG_ZERO });
	dg_ranges_free(&p);
}

static void test_ranges_match(void)
{
	struct dg_ranges g = { 0 }, p = { 0 };

	EXPECT(dg_ranges_match(&g, &p)); /* both empty */
	dg_ranges_add(&p, 0, 65536, DG_ZERO);
	EXPECT(!dg_ranges_match(&g, &p));
	/* FIEMAP split the gap into a hole and zeros-in-extent: still one run */
	dg_ranges_add(&g, 0, 4096, DG_ZERO);
	dg_ranges_add(&g, 4096, 65536, DG_STALE);
	EXPECT(dg_ranges_match(&g, &p));
	dg_ranges_add(&g, 131072, 135168, DG_ZERO); /* one more gap */
	EXPECT(!dg_ranges_match(&g, &p));
	dg_ranges_add(&p, 131072, 135168, DG_ZERO);
	EXPECT(dg_ranges_match(&g, &p));
	dg_ranges_free(&g);
	dg_ranges_add(&g, 0, 61440, DG_ZERO); /* shorter than predicted */
	dg_ranges_add(&g, 131072, 135168, DG_ZERO);
	EXPECT(!dg_ranges_match(&g, &p));
	dg_ranges_free(&g);
	dg_ranges_free(&p);
}

/* The FAIL path end to end on what a buggy kernel leaves behind: the
 * predicted prefixes read back as zeros (first write into a hole) or as
 * the previous iteration (lost overwrite); verify must find exactly those
 * ranges, classify them, and match the prediction. */
static void test_fail_path_buggy_shape(void)
{
	const size_t P = 4096, np = 64, len = np * P;
	unsigned char seen[64] = { 0 };
	struct dg_ranges g = { 0 }, p = { 0 };
	char *want = dg_xmalloc(len), *got = dg_xmalloc(len), *old = dg_xmalloc(len);
	size_t i, k;

	for (i = 0; i < np; i += 16) /* chunk 16 pages, fault-around 3 pages */
		seen[i] = seen[i + 1] = seen[i + 2] = 1;
	dg_predict(seen, np, P, BASE, 16 * P, len, &p);
	EXPECT_EQ(p.n, 4);
	dg_pattern_fill(want, len, BASE, RUN_ID, 2);
	dg_pattern_fill(old, len, BASE, RUN_ID, 1);
	memcpy(got, want, len);
	for (k = 0; k < p.n; k++) /* iteration 1 into holes: zeros */
		memset(got + (p.r[k].start - BASE), 0, p.r[k].end - p.r[k].start);
	EXPECT_EQ(dg_verify(got, want, len, BASE, RUN_ID, 2, &g), 4 * 3 * P / DG_SECTOR);
	EXPECT_RANGES(&g, { BASE, BASE + 3 * P, DG_ZERO },
		      { BASE + 16 * P, BASE + 19 * P, DG_ZERO },
		      { BASE + 32 * P, BASE + 35 * P, DG_ZERO },
		      { BASE + 48 * P, BASE + 51 * P, DG_ZERO });
	EXPECT(dg_ranges_match(&g, &p));
	dg_ranges_free(&g);
	memcpy(got, want, len);
	for (k = 0; k < p.n; k++) /* a lost overwrite keeps the old data */
		memcpy(got + (p.r[k].start - BASE), old + (p.r[k].start - BASE),
		       p.r[k].end - p.r[k].start);
	dg_verify(got, want, len, BASE, RUN_ID, 2, &g);
	EXPECT_EQ(g.n, 4);
	for (k = 0; k < g.n; k++)
		EXPECT_EQ(g.r[k].cls, DG_STALE);
	EXPECT(dg_ranges_match(&g, &p));
	dg_ranges_free(&g);
	/* data lost somewhere else: a FAIL that does not match */
	memcpy(got, want, len);
	memset(got + 5 * P, 0, P);
	dg_verify(got, want, len, BASE, RUN_ID, 2, &g);
	EXPECT_EQ(g.n, 1);
	EXPECT(!dg_ranges_match(&g, &p));
	dg_ranges_free(&g);
	dg_ranges_free(&p);
	free(want);
	free(got);
	free(old);
}

/* ---- FIEMAP labelling on a real sparse file -------------------------------- */
static void test_fiemap_hole_vs_extent(void)
{
	char path[] = "/var/tmp/diogap-unit.XXXXXX";
	struct dg_ranges g = { 0 };
	char *zeros = dg_xmalloc(4096);
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	unlink(path);
	/* [0,4K) zeros written (an extent), [4K,8K) a hole, [8K,12K) zeros */
	CHECK(pwrite(fd, zeros, 4096, 0) == 4096);
	CHECK(pwrite(fd, zeros, 4096, 8192) == 4096);
	CHECK(fsync(fd) == 0);
	dg_ranges_add(&g, 0, 12288, DG_ZERO);
	dg_ranges_add(&g, 12288, 12800, DG_STALE);
	dg_gaps_fiemap(fd, &g);
	if (g.n == 2 && g.r[0].extent == -1) {
		printf("# fiemap not supported on /var/tmp: labels stay unknown\n");
		EXPECT(g.r[0].start == 0 && g.r[0].end == 12288);
	} else {
		EXPECT_RANGES(&g, { 0, 4096, DG_ZERO }, { 4096, 8192, DG_ZERO },
			      { 8192, 12288, DG_ZERO }, { 12288, 12800, DG_STALE });
		if (g.n == 4) {
			EXPECT_EQ(g.r[0].extent, 1);
			EXPECT_EQ(g.r[1].extent, 0);
			EXPECT_EQ(g.r[2].extent, 1);
			EXPECT_EQ(g.r[3].extent, -1); /* not a zero range: not asked */
		}
	}
	dg_ranges_free(&g);
	free(zeros);
	close(fd);
}

/* ---- output: KTAP lines and JSON records ---------------------------------- */

/* Run dg_ktap_result(o, b, r) with stdout going to a file; return what it
 * printed (malloc'd, NUL terminated). */
static char *ktap_capture(const struct dg_opts *o, const struct dg_buf *b,
			  const struct dg_result *r)
{
	char path[] = "/tmp/diogap-unit-out.XXXXXX";
	int fd = mkstemp(path), saved;
	char *text;
	off_t n;

	CHECK(fd >= 0);
	fflush(stdout);
	saved = CHECK_SYS(dup(1));
	CHECK_SYS(dup2(fd, 1));
	dg_ktap_result(o, b, r);
	fflush(stdout);
	CHECK_SYS(dup2(saved, 1));
	close(saved);
	n = CHECK_SYS(lseek(fd, 0, SEEK_END));
	text = dg_xmalloc((size_t)n + 1);
	CHECK(pread(fd, text, (size_t)n, 0) == n);
	close(fd);
	unlink(path);
	return text;
}

/* The last line of a file (malloc'd), "" if empty. */
static char *last_line(const char *path)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, *last = dg_xmalloc(1);
	size_t cap = 0;

	CHECK(f);
	while (getline(&line, &cap, f) > 0) {
		free(last);
		last = strdup(line);
		CHECK(last);
	}
	free(line);
	fclose(f);
	return last;
}

static void hex_of(const void *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", ((const unsigned char *)p)[i]);
}

/* Options and a result for the output tests; json: a mkstemp template,
 * made into the --json FILE (the caller unlinks it). */
static void out_setup(struct dg_opts *o, struct dg_result *r, char *json,
		      const char *name)
{
	int fd = mkstemp(json);

	CHECK(fd >= 0);
	close(fd);
	memset(r, 0, sizeof(*r));
	r->name = name;
	memset(o, 0, sizeof(*o));
	o->size = NSEC * DG_SECTOR;
	o->offset = BASE;
	o->fault = "first";
	o->iterations = 1;
	o->json_path = json;
	snprintf(o->argv_line, sizeof(o->argv_line), "unit --size 32K");
}

/* first_bad is the lowest bad sector, with the bytes read back and the
 * bytes expected; a later buffer does not replace it; a gap outside the
 * buffer is not taken. */
static void test_first_bad_note(void)
{
	struct dg_result r;
	struct synth s;
	char *other;

	memset(&r, 0, sizeof(r));
	synth_init(&s, NSEC * DG_SECTOR);
	memset(s.got + 5 * DG_SECTOR, 0, 3 * DG_SECTOR);
	memcpy(s.got + 20 * DG_SECTOR, s.want + 21 * DG_SECTOR, DG_SECTOR);
	EXPECT_EQ(dg_verify(s.got, s.want, s.len, BASE, RUN_ID, 2, &r.gaps), 4);
	dg_first_bad_note(&r, s.got, s.want, 4 * DG_SECTOR, BASE); /* sectors 0-3: clean */
	EXPECT(!r.first_bad.set);
	dg_first_bad_note(&r, s.got, s.want, s.len, BASE);
	EXPECT(r.first_bad.set);
	EXPECT_EQ(r.first_bad.offset, S(5));
	EXPECT_EQ(r.first_bad.cls, DG_ZERO);
	EXPECT(memcmp(r.first_bad.want, s.want + 5 * DG_SECTOR, DG_SECTOR) == 0);
	EXPECT(memcmp(r.first_bad.got, s.got + 5 * DG_SECTOR, DG_SECTOR) == 0);
	/* a second buffer (another range of the file) keeps the first */
	other = dg_xmalloc(DG_SECTOR);
	dg_ranges_add(&r.gaps, S(100), S(101), DG_GARBAGE);
	dg_first_bad_note(&r, other, other, DG_SECTOR, S(100));
	EXPECT_EQ(r.first_bad.offset, S(5));
	/* the misplaced sector, when it is the first in the buffer given */
	memset(&r.first_bad, 0, sizeof(r.first_bad));
	dg_first_bad_note(&r, s.got + 16 * DG_SECTOR, s.want + 16 * DG_SECTOR,
			  8 * DG_SECTOR, S(16));
	EXPECT_EQ(r.first_bad.offset, S(20));
	EXPECT_EQ(r.first_bad.cls, DG_MISPLACED);
	EXPECT(memcmp(r.first_bad.got, s.want + 21 * DG_SECTOR, DG_SECTOR) == 0);
	free(other);
	dg_ranges_free(&r.gaps);
	synth_free(&s);
}

/* JSON: a FAIL with a bad sector carries first_bad {offset, class, got,
 * want} as 1024 hex digits each; a size-only FAIL and a PASS do not. */
static void test_json_first_bad(void)
{
	char json[] = "/tmp/diogap-unit-json.XXXXXX";
	char want_hex[2 * DG_SECTOR + 1], got_hex[2 * DG_SECTOR + 1], expect[2200];
	struct dg_result r;
	struct dg_opts o;
	struct synth s;
	char *line;

	out_setup(&o, &r, json, "unit.json");
	synth_init(&s, NSEC * DG_SECTOR);
	memset(s.got + 3 * DG_SECTOR, 0, DG_SECTOR);
	dg_verify(s.got, s.want, s.len, BASE, RUN_ID, 2, &r.gaps);
	dg_first_bad_note(&r, s.got, s.want, s.len, BASE);
	r.verdict = DG_FAIL;
	free(ktap_capture(&o, NULL, &r));
	line = last_line(json);
	hex_of(s.want + 3 * DG_SECTOR, DG_SECTOR, want_hex);
	hex_of(s.got + 3 * DG_SECTOR, DG_SECTOR, got_hex);
	snprintf(expect, sizeof(expect),
		 "\"first_bad\":{\"offset\":%" PRIu64 ",\"class\":\"zero\",\"got\":\"%s\",\"want\":\"%s\"}",
		 (uint64_t)S(3), got_hex, want_hex);
	EXPECT(strstr(line, expect) != NULL);
	EXPECT(strspn(got_hex, "0") == 2 * DG_SECTOR);
	EXPECT(strncmp(want_hex, "64676f6964676170", 16) == 0); /* DG_MAGIC, little endian */
	free(line);
	/* size-only FAIL: no bad sector recorded, no member */
	memset(&r.first_bad, 0, sizeof(r.first_bad));
	dg_ranges_free(&r.gaps);
	free(ktap_capture(&o, NULL, &r));
	line = last_line(json);
	EXPECT(strstr(line, "\"verdict\":\"FAIL\"") && !strstr(line, "\"first_bad\""));
	free(line);
	/* PASS: never */
	dg_first_bad_note(&r, s.got, s.want, s.len, BASE);
	r.verdict = DG_PASS;
	free(ktap_capture(&o, NULL, &r));
	line = last_line(json);
	EXPECT(strstr(line, "\"verdict\":\"PASS\"") && !strstr(line, "\"first_bad\""));
	free(line);
	unlink(json);
	synth_free(&s);
}

/* KTAP: gap, predicted and "gaps (do not) match" lines only for what there
 * is; a hang-like FAIL (nothing lost, nothing predicted) prints none. */
static void test_ktap_fail_lines(void)
{
	char json[] = "/tmp/diogap-unit-json.XXXXXX";
	struct dg_result r;
	struct dg_opts o;
	char *out;

	out_setup(&o, &r, json, "unit.ktap");
	r.verdict = DG_FAIL;
	r.diag = "hang: the O_DIRECT write did not return";
	out = ktap_capture(&o, NULL, &r);
	EXPECT(!strstr(out, "# gap") && !strstr(out, "predict"));
	EXPECT(strstr(out, "# FAIL: hang: ") != NULL);
	free(out);
	/* gaps, nothing predicted: the gap lines, no comparison */
	dg_ranges_add(&r.gaps, 0, 4096, DG_ZERO);
	r.gaps.r[0].extent = 0;
	out = ktap_capture(&o, NULL, &r);
	EXPECT(strstr(out, "# gap [0, 4096) zero hole\n") != NULL);
	EXPECT(!strstr(out, "predict"));
	free(out);
	/* both: the comparison */
	dg_ranges_add(&r.predicted, 0, 4096, DG_OK);
	out = ktap_capture(&o, NULL, &r);
	EXPECT(strstr(out, "# predicted [0, 4096)\n# gaps match the prediction\n") != NULL);
	free(out);
	dg_ranges_add(&r.predicted, 8192, 12288, DG_OK);
	out = ktap_capture(&o, NULL, &r);
	EXPECT(strstr(out, "# gaps do not match the prediction\n") != NULL);
	free(out);
	/* predicted only (a size-only FAIL): the predicted lines */
	dg_ranges_free(&r.gaps);
	out = ktap_capture(&o, NULL, &r);
	EXPECT(strstr(out, "# predicted [8192, 12288)\n") && !strstr(out, "match"));
	free(out);
	dg_ranges_free(&r.predicted);
	unlink(json);
}

/* Params decide what a record and the rerun line carry: no "buffer" for a
 * reproducer without the key; "chunk" is the chunk really used. */
static void test_json_params(void)
{
	static const struct dg_repro nobuf = { .name = "unit-nobuf",
		.describe = "unit\nParams: size fault chunk offset\n" };
	static const struct dg_repro withbuf = { .name = "unit-buf",
		.describe = "unit\nParams: size fault buffer qd\nMay-hang: no\n" };
	char json[] = "/tmp/diogap-unit-json.XXXXXX";
	struct dg_result r;
	struct dg_opts o;
	char *line;

	out_setup(&o, &r, json, "unit.params");
	EXPECT(dg_takes_param(&withbuf, "buffer") && dg_takes_param(&withbuf, "qd"));
	EXPECT(!dg_takes_param(&nobuf, "buffer") && !dg_takes_param(&nobuf, "qd"));
	EXPECT(!dg_takes_param(&withbuf, "buf") && !dg_takes_param(&withbuf, "no"));
	EXPECT(!dg_takes_param(NULL, "size"));
	r.verdict = DG_PASS;
	o.rp = &nobuf;
	free(ktap_capture(&o, NULL, &r));
	line = last_line(json);
	EXPECT(!strstr(line, "\"buffer\"") && !strstr(line, "\"qd\""));
	EXPECT(strstr(line, "\"chunk\":32768,") != NULL); /* no --chunk: size */
	free(line);
	o.rp = &withbuf;
	o.qd = 4;
	r.chunk_used = 8192;
	free(ktap_capture(&o, NULL, &r));
	line = last_line(json);
	EXPECT(strstr(line, "\"buffer\":\"memfd\"") && strstr(line, "\"qd\":4"));
	EXPECT(strstr(line, "\"chunk\":8192,") != NULL);
	free(line);
	unlink(json);
}

/* ---- verdicts that cannot lie ---------------------------------------------- */

/* Run fn in a child with stdout and stderr to /dev/null; its exit code. */
static int child_exit(void (*fn)(void))
{
	int st, fd;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		fn();
		_exit(99);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void report(int verdict)
{
	static struct dg_opts o;
	struct dg_result r;

	memset(&r, 0, sizeof(r));
	r.name = "unit.sticky";
	r.verdict = verdict;
	r.diag = "unit";
	snprintf(o.argv_line, sizeof(o.argv_line), "unit");
	dg_ktap_begin(2);
	dg_ktap_result(&o, NULL, &r);
}

static void die_plain(void) { dg_die_at("unit.c", 1, "setup", EINVAL); }
static void die_after_fail(void) { report(DG_FAIL); dg_die_at("unit.c", 1, "setup", EINVAL); }
static void usage_after_fail(void) { report(DG_FAIL); dg_usage_error("bad %s", "input"); }
static void die_after_pass(void) { report(DG_PASS); CHECK(0 == 1); }

/* FAIL is sticky: a setup error after a FAIL exits 1, not 2. (Runs first:
 * the children must not inherit a FAIL of another test.) */
static void test_sticky_fail(void)
{
	EXPECT(!dg_fail_seen());
	EXPECT_EQ(child_exit(die_plain), DG_BROKEN);
	EXPECT_EQ(child_exit(die_after_pass), DG_BROKEN);
	EXPECT_EQ(child_exit(die_after_fail), DG_FAIL);
	EXPECT_EQ(child_exit(usage_after_fail), DG_FAIL);
}

/* EIO on read-back is FAIL eio-read, on a write FAIL eio-write; a full or
 * read-only filesystem and other errors stay BROKEN without a symptom. */
static void test_eio_verdicts(void)
{
	struct dg_result r;

	memset(&r, 0, sizeof(r));
	EXPECT_EQ(dg_read_failed(-EIO, 4096, 65536, &r), DG_FAIL);
	EXPECT(r.verdict == DG_FAIL && r.symptom && !strcmp(r.symptom, "eio-read"));
	EXPECT(r.diag && strstr(r.diag, "read back [4096,+65536): Input/output error (checksum failure? see the kernel log)"));
	memset(&r, 0, sizeof(r));
	EXPECT_EQ(dg_read_failed(-EINVAL, 0, 4096, &r), DG_BROKEN);
	EXPECT(!r.symptom);
	memset(&r, 0, sizeof(r));
	EXPECT_EQ(dg_write_failed(EIO, 8192, &r), DG_FAIL);
	EXPECT(r.symptom && !strcmp(r.symptom, "eio-write"));
	memset(&r, 0, sizeof(r));
	EXPECT_EQ(dg_write_failed(ENOSPC, 0, &r), DG_BROKEN);
	EXPECT(!r.symptom && strstr(r.diag, "full"));
	memset(&r, 0, sizeof(r));
	EXPECT_EQ(dg_write_failed(EDQUOT, 0, &r), DG_BROKEN);
	memset(&r, 0, sizeof(r));
	EXPECT_EQ(dg_write_failed(EROFS, 0, &r), DG_BROKEN);
	EXPECT(!r.symptom && strstr(r.diag, "read-only"));
}

/* A buffer of np pages (real page size) with want/seen from strings of
 * '0'/'1'. */
static void synth_buf(struct dg_buf *b, const char *want, const char *seen)
{
	size_t i;

	memset(b, 0, sizeof(*b));
	b->page = (size_t)sysconf(_SC_PAGESIZE);
	b->npages = strlen(want);
	b->len = b->npages * b->page;
	b->want = dg_xmalloc(b->npages);
	b->seen = dg_xmalloc(b->npages);
	for (i = 0; i < b->npages; i++) {
		b->want[i] = want[i] == '1';
		b->seen[i] = seen[i] == '1';
	}
	b->source = "pagemap";
	b->fd = -1;
}

static int pre(const char *fault, const char *want, const char *seen,
	       bool shared_mincore, char *why, size_t n)
{
	struct dg_opts o;
	struct dg_result r;
	struct dg_buf b;

	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	synth_buf(&b, want, seen);
	o.fault = fault;
	o.size = b.len;
	if (shared_mincore) {
		b.shared = true;
		b.source = "mincore";
	}
	dg_precondition(&o, &b, 0, &r);
	snprintf(why, n, "%s", r.precondition_why);
	free(b.want);
	free(b.seen);
	return r.precondition;
}

static void test_precondition(void)
{
	char why[160];

	/* first: the first page resident, a later one missing */
	EXPECT_EQ(pre("first", "10000000", "10000000", false, why, sizeof(why)), DG_YES);
	EXPECT_EQ(pre("first", "10000000", "11110000", false, why, sizeof(why)), DG_YES);
	/* everything resident (a huge folio, fault-around): nothing to lose */
	EXPECT_EQ(pre("first", "10000000", "11111111", false, why, sizeof(why)), DG_NO);
	EXPECT(!strcmp(why, "8/8 pages resident (wanted 1)"));
	/* nothing resident: the write faults before it submits anything */
	EXPECT_EQ(pre("stride:4", "10001000", "00000000", false, why, sizeof(why)), DG_NO);
	EXPECT(!strcmp(why, "0/8 pages resident (wanted 2)"));
	EXPECT_EQ(pre("stride:4", "10001000", "10001000", false, why, sizeof(why)), DG_YES);
	/* controls */
	EXPECT_EQ(pre("all", "1111", "1111", false, why, sizeof(why)), DG_YES);
	EXPECT_EQ(pre("all", "1111", "1101", false, why, sizeof(why)), DG_NO);
	EXPECT_EQ(pre("none", "0000", "0000", false, why, sizeof(why)), DG_YES);
	EXPECT_EQ(pre("none", "0000", "0100", false, why, sizeof(why)), DG_NO);
	/* a pattern that needs no transition (stride:1 = all) */
	EXPECT_EQ(pre("stride:1", "1111", "1111", false, why, sizeof(why)), DG_YES);
	/* mincore on a shared mapping is the page cache: not truthful */
	EXPECT_EQ(pre("first", "10000000", "10000000", true, why, sizeof(why)), DG_NO);
	EXPECT(strstr(why, "cannot be measured without /proc/self/pagemap (CONFIG_PROC_PAGE_MONITOR)"));
}

/* dg_judge: only a PASS becomes SKIP, buffered first, then precondition. */
static void test_judge(void)
{
	struct dg_result r;

	memset(&r, 0, sizeof(r));
	r.verdict = DG_PASS;
	r.precondition = DG_NO;
	snprintf(r.precondition_why, sizeof(r.precondition_why), "8/8 pages resident (wanted 1)");
	EXPECT_EQ(dg_judge(&r), DG_SKIP);
	EXPECT(!strcmp(r.diag, "precondition not met: 8/8 pages resident (wanted 1)"));
	r.verdict = DG_PASS;
	r.direct = DG_NO;
	EXPECT_EQ(dg_judge(&r), DG_SKIP);
	EXPECT(!strncmp(r.diag, "write went buffered (", 21) &&
	       strstr(r.diag, "since 968f19c5b1b7") && strstr(r.diag, "since 7c2830f00c3e"));
	r.verdict = DG_FAIL;
	r.diag = "lost";
	EXPECT_EQ(dg_judge(&r), DG_FAIL);
	EXPECT(!strcmp(r.diag, "lost"));
	r.verdict = DG_BROKEN;
	EXPECT_EQ(dg_judge(&r), DG_BROKEN);
	memset(&r, 0, sizeof(r));
	r.verdict = DG_PASS;
	r.precondition = DG_YES;
	r.direct = DG_YES;
	EXPECT_EQ(dg_judge(&r), DG_PASS);
	r.direct = DG_NULL; /* could not tell: no SKIP on a guess */
	EXPECT_EQ(dg_judge(&r), DG_PASS);
}

/* The direct-path rule on figures measured on 6.18 (1M, loop device
 * without direct I/O: 256 pages of its own). */
static void test_direct_judge(void)
{
	EXPECT_EQ(dg_direct_judge(562, 256, 256, 256), DG_NO);  /* datasum */
	EXPECT_EQ(dg_direct_judge(274, 0, 256, 256), DG_YES);   /* nodatasum */
	EXPECT_EQ(dg_direct_judge(16, 0, 16, 0), DG_YES);       /* no loop: metadata only */
	EXPECT_EQ(dg_direct_judge(6, 1, 1, 1), DG_NO);          /* datasum 4K */
	/* metadata alone (dirtied, nothing written back): direct */
	EXPECT_EQ(dg_direct_judge(90, 0, 16, 16), DG_YES);
	/* noise only ever says buffered: both deltas grown */
	EXPECT_EQ(dg_direct_judge(300, 200, 16, 16), DG_NO);
	EXPECT_EQ(dg_direct_judge(-1, 0, 16, 0), DG_NULL);
	EXPECT_EQ(dg_direct_judge(10, -1, 16, 0), DG_NULL);
	/* a real read of the counters */
	{
		int64_t d, w;

		EXPECT(dg_vm_counts(&d, &w) >= 0 && d > 0 && w >= 0);
	}
}

/* The record carries symptom, want, seen, precondition, direct with the
 * raw deltas, unverifiable; null where unset. */
static void test_json_verdict_fields(void)
{
	char json[] = "/tmp/diogap-unit-json.XXXXXX", expect[256];
	struct dg_result r;
	struct dg_opts o;
	struct dg_buf b;
	size_t P;
	char *line;

	out_setup(&o, &r, json, "unit.fields");
	synth_buf(&b, "1100", "1000");
	P = b.page;
	r.verdict = DG_PASS;
	free(ktap_capture(&o, &b, &r));
	line = last_line(json);
	EXPECT(strstr(line, "\"symptom\":null"));
	EXPECT(strstr(line, "\"precondition\":{\"met\":null,\"why\":null}"));
	EXPECT(strstr(line, "\"direct\":null,\"dirtied_pages\":null"));
	EXPECT(strstr(line, "\"unverifiable\":[]"));
	snprintf(expect, sizeof(expect), "\"want\":[[0,%zu]],\"seen\":[[0,%zu]]", 2 * P, P);
	EXPECT(strstr(line, expect));
	free(line);
	r.verdict = DG_FAIL;
	r.symptom = "eio-read";
	r.precondition = DG_YES;
	snprintf(r.precondition_why, sizeof(r.precondition_why), "1/4 pages resident (wanted 2)");
	r.direct = DG_NO;
	r.dirtied_set = true;
	r.dirtied_pages = 562;
	r.writeback_pages = 256;
	r.dirtied_base = 256;
	r.dirtied_written = 256;
	dg_ranges_add(&r.unverifiable, BASE + P, BASE + 4 * P, DG_ZERO);
	free(ktap_capture(&o, &b, &r));
	line = last_line(json);
	EXPECT(strstr(line, "\"symptom\":\"eio-read\""));
	EXPECT(strstr(line, "\"precondition\":{\"met\":true,\"why\":\"1/4 pages resident (wanted 2)\"}"));
	EXPECT(strstr(line, "\"direct\":false,\"dirtied_pages\":562,\"writeback_pages\":256,\"dirtied_base\":256,\"dirtied_written\":256"));
	snprintf(expect, sizeof(expect), "\"unverifiable\":[[%" PRIu64 ",%" PRIu64 "]]",
		 (uint64_t)BASE + P, (uint64_t)BASE + 4 * P);
	EXPECT(strstr(line, expect));
	free(line);
	dg_ranges_free(&r.unverifiable);
	free(b.want);
	free(b.seen);
	unlink(json);
}

/* anon: the pages never touched are unverifiable file ranges, with a KTAP
 * line; memfd: none. */
static void test_unverifiable(void)
{
	char json[] = "/tmp/diogap-unit-json.XXXXXX", expect[160];
	struct dg_result r;
	struct dg_opts o;
	struct dg_buf b;
	size_t P = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char want[8] = { 1, 0, 0, 0, 1, 0, 0, 0 };
	char *data = dg_xmalloc(8 * P), *out;

	out_setup(&o, &r, json, "unit.unverifiable");
	o.buf = DG_BUF_ANON;
	o.size = 8 * P;
	o.offset = 16 * P;
	dg_buf_prepare(&b, &o, data, 8 * P, want);
	dg_unverifiable(&o, &b, &r);
	EXPECT_EQ(r.unverifiable.n, 2);
	EXPECT(r.unverifiable.n == 2 && r.unverifiable.r[0].start == 17 * P &&
	       r.unverifiable.r[0].end == 20 * P && r.unverifiable.r[1].start == 21 * P &&
	       r.unverifiable.r[1].end == 24 * P);
	r.verdict = DG_PASS;
	out = ktap_capture(&o, &b, &r);
	snprintf(expect, sizeof(expect), "# unit.unverifiable: unverifiable: %zu bytes in 2 ranges, first [%zu, %zu)",
		 6 * P, 17 * P, 20 * P);
	EXPECT(strstr(out, expect));
	free(out);
	dg_ranges_free(&r.unverifiable);
	dg_buf_release(&b);
	data = dg_xmalloc(8 * P);
	o.buf = DG_BUF_MEMFD;
	dg_buf_prepare(&b, &o, data, 8 * P, want);
	dg_unverifiable(&o, &b, &r);
	EXPECT_EQ(r.unverifiable.n, 0);
	dg_buf_release(&b);
	unlink(json);
}

/* ---- dg_main: a run() that abandons the file ------------------------------ */
static char ab_file[4096]; /* the target file dg_main made (parent side) */

static int ab_run(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
		  struct dg_result *r, struct dg_buf *b)
{
	(void)run_id;
	(void)b;
	printf("# unit run() iteration %u on %s\n", iteration, o->file);
	if (getenv("DG_UNIT_ABANDON"))
		dg_abandon_file("a test says so");
	r->diag = "unit";
	return r->verdict = DG_FAIL;
}

/* dg_main in a child, stdout to out; returns the exit status. */
static int ab_main(const char *dir, const char *out, bool abandon)
{
	static const struct dg_repro rp = { .name = "unit-abandon",
		.describe = "unit\nParams: size fault offset\n", .run = ab_run };
	char *argv[] = { "unit-abandon", "--any-fs", "--size", "4K", "--iterations", "3",
			 "--seed", "7", (char *)dir, NULL };
	int status;
	pid_t pid;

	fflush(NULL);
	pid = CHECK_SYS(fork());
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(99);
		if (abandon)
			setenv("DG_UNIT_ABANDON", "1", 1);
		optind = 0;
		exit(dg_main(&rp, (int)(sizeof(argv) / sizeof(argv[0])) - 1, argv));
	}
	CHECK_SYS(waitpid(pid, &status, 0));
	snprintf(ab_file, sizeof(ab_file), "%s/diogap-unit-abandon-%d.dat", dir, (int)pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *text = dg_xmalloc(1 << 16);
	size_t n;

	CHECK(f);
	n = fread(text, 1, (1 << 16) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* After dg_abandon_file: run() is not called again, iterations 2..3 are
 * SKIP "not run", the totals add up, exit 1, and the file is still there
 * (no unlink at exit); without it every iteration runs and the file goes. */
static void test_abandon_file(void)
{
	char dir[] = "/var/tmp/diogap-unit.XXXXXX", out[4200], kept[4400], *text;
	int rc;

	CHECK(mkdtemp(dir));
	snprintf(out, sizeof(out), "%s.out", dir);
	rc = ab_main(dir, out, true);
	text = slurp(out);
	EXPECT_EQ(rc, DG_FAIL);
	if (strstr(text, "# SKIP O_DIRECT is not supported")) {
		printf("# %s has no O_DIRECT: dg_main SKIPs, nothing to check\n", dir);
		free(text);
		unlink(out);
		rmdir(dir);
		return;
	}
	EXPECT(strstr(text, "# unit run() iteration 1 on ") && !strstr(text, "iteration 2 on"));
	EXPECT(strstr(text, "\nnot ok 1 unit-abandon.4K.first.i1\n") != NULL);
	snprintf(kept, sizeof(kept), "# file kept: %s (a test says so)\n", ab_file);
	EXPECT(strstr(text, kept) != NULL);
	EXPECT(strstr(text, "\nok 2 unit-abandon.4K.first.i2 # SKIP not run: a test says so\n"));
	EXPECT(strstr(text, "\nok 3 unit-abandon.4K.first.i3 # SKIP not run: a test says so\n"));
	EXPECT(strstr(text, "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:2 error:0\n"));
	EXPECT(ab_file[0] && access(ab_file, F_OK) == 0);
	free(text);
	unlink(ab_file);
	/* control: no abandon, three runs, the file removed */
	rc = ab_main(dir, out, false);
	text = slurp(out);
	EXPECT_EQ(rc, DG_FAIL);
	EXPECT(strstr(text, "iteration 3 on ") && !strstr(text, "file kept"));
	EXPECT(strstr(text, "# Totals: pass:0 fail:3 xfail:0 xpass:0 skip:0 error:0\n"));
	EXPECT(access(ab_file, F_OK) != 0);
	free(text);
	unlink(out);
	EXPECT(rmdir(dir) == 0);
}

/* ---- buffers: residency truth ---------------------------------------------- */
static void prepare(struct dg_buf *b, enum dg_buf_kind kind, const char *path,
		    const char *pattern, size_t len, char **data)
{
	struct dg_opts o;
	size_t P = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *want = dg_xmalloc(len / P + 1);
	char err[160], *copy;

	memset(&o, 0, sizeof(o));
	o.buf = kind;
	o.buf_path = path;
	*data = dg_xmalloc(len);
	dg_pattern_fill(*data, len, 0, RUN_ID, 1);
	CHECK(dg_fault_want(pattern, len, P, 0, want, err, sizeof(err)) == 0);
	copy = dg_xmalloc(len); /* the buffer takes it as its expected copy */
	memcpy(copy, *data, len);
	dg_buf_prepare(b, &o, copy, len, want);
	free(want);
}

static void test_buffer_memfd(void)
{
	struct dg_buf b;
	char *data;
	size_t n, P = (size_t)sysconf(_SC_PAGESIZE);

	/* A write touch maps one small folio; a system with shmem large
	 * folios maps more. Residency is truth, not intent: every wanted page
	 * must be resident, more may be, and with small folios (the default)
	 * exactly the wanted ones are. */
	prepare(&b, DG_BUF_MEMFD, NULL, "pages:0,5,6,31", 32 * P, &data);
	n = dg_buf_measure(&b);
	EXPECT(!strcmp(b.source, "pagemap"));
	EXPECT(b.seen[0] && b.seen[5] && b.seen[6] && b.seen[31]);
	EXPECT(n >= 4 && n < 32);
	printf("# memfd pages:0,5,6,31 -> %zu resident pages\n", n);
	/* the expected data is the data (memfd keeps it all) */
	EXPECT(memcmp(dg_buf_expected(&b), data, 32 * P) == 0);
	/* reading the mapping faults pages in; the content is intact */
	EXPECT(memcmp(b.map, data, 32 * P) == 0);
	EXPECT_EQ(dg_buf_measure_range(&b, 8, 4), 4);
	dg_buf_release(&b);
	free(data);
}

static void test_buffer_anon_zeros(void)
{
	struct dg_buf b;
	const char *exp;
	char *data;
	size_t i, P = (size_t)sysconf(_SC_PAGESIZE);

	prepare(&b, DG_BUF_ANON, NULL, "first", 16 * P, &data);
	EXPECT_EQ(dg_buf_measure(&b), 1);
	EXPECT(b.seen[0] == 1 && b.seen[1] == 0);
	exp = dg_buf_expected(&b);
	EXPECT(memcmp(exp, data, P) == 0);
	for (i = P; i < 16 * P; i++)
		if (exp[i]) {
			printf("#   expected byte %zu of an untouched anon page is not 0\n", i);
			checks_failed++;
			break;
		}
	dg_buf_release(&b);
	free(data);
}

static void test_buffer_file(void)
{
	char dir[] = "/var/tmp/diogap-unit.XXXXXX";
	struct dg_buf b;
	char *data;
	size_t n, P = (size_t)sysconf(_SC_PAGESIZE);

	CHECK(mkdtemp(dir));
	prepare(&b, DG_BUF_FILE, dir, "stride:4", 16 * P, &data);
	EXPECT(b.tmp_path != NULL);
	/* the store is filled a page per write(), so no large folios: a
	 * touch maps exactly its page (a 64K write made one 64K folio here,
	 * and touching 4 pages mapped all 16) */
	n = dg_buf_measure(&b);
	EXPECT_EQ(n, 4);
	EXPECT(b.seen[0] && b.seen[4] && b.seen[8] && b.seen[12]);
	printf("# file stride:4 -> %zu of 16 pages resident\n", n);
	EXPECT(memcmp(b.map, data, 16 * P) == 0);
	dg_buf_release(&b);
	EXPECT(rmdir(dir) == 0); /* the temporary backing file is gone */
	free(data);
}

int main(void)
{
	printf("KTAP version 1\n");
	RUN(test_sticky_fail); /* first: no FAIL reported in this process yet */
	RUN(test_verdict_merge);
	RUN(test_parse_size);
	RUN(test_pattern_self_describing);
	RUN(test_fault_patterns);
	RUN(test_fault_random);
	RUN(test_fault_nonsense);
	RUN(test_classify);
	RUN(test_verify_clean);
	RUN(test_verify_mixed_gaps);
	RUN(test_verify_whole_file_gap);
	RUN(test_verify_ragged_edges);
	RUN(test_ranges_merge);
	RUN(test_predict);
	RUN(test_ranges_match);
	RUN(test_fail_path_buggy_shape);
	RUN(test_fiemap_hole_vs_extent);
	RUN(test_first_bad_note);
	RUN(test_json_first_bad);
	RUN(test_ktap_fail_lines);
	RUN(test_json_params);
	RUN(test_abandon_file);
	RUN(test_buffer_memfd);
	RUN(test_buffer_anon_zeros);
	RUN(test_buffer_file);
	RUN(test_eio_verdicts);
	RUN(test_precondition);
	RUN(test_judge);
	RUN(test_direct_judge);
	RUN(test_json_verdict_fields);
	RUN(test_unverifiable);
	printf("%u passed, %u failed\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}
