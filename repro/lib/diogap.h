/* SPDX-License-Identifier: GPL-2.0 */
/*
 * diogap.h - the shared API of the reproducers (repro/lib/).
 *
 * A reproducer is one .c file in repro/ that fills a struct dg_repro and
 * calls dg_main(). The library does options, buffers with exact page
 * residency, the self-describing data pattern, read-back verification with
 * gap classification, prediction, and KTAP / JSON Lines output.
 */
#ifndef DIOGAP_H
#define DIOGAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

/* Outcomes, the same numbers in C and in the harness (harness/lib/common.sh). */
enum dg_verdict { DG_PASS = 0, DG_FAIL = 1, DG_BROKEN = 2, DG_SKIP = 4 };
const char *dg_verdict_name(int v);
/* Worst of two outcomes: FAIL > BROKEN > PASS > SKIP. */
int dg_verdict_merge(int a, int b);

/* ---- checked calls (check.c) --------------------------------------------
 * A failing call prints "file:line: expr: strerror" to stderr and exits
 * DG_BROKEN: a setup error is never a FAIL. FAIL is sticky: once an
 * iteration was reported FAIL (dg_ktap_result), dg_die_at and
 * dg_usage_error say so and exit DG_FAIL instead, so a later setup error
 * cannot hide the corruption already seen (its record is written). */
void dg_die_at(const char *file, int line, const char *what, int err)
	__attribute__((noreturn));
#define CHECK(expr) \
	do { \
		if (!(expr)) \
			dg_die_at(__FILE__, __LINE__, #expr, errno); \
	} while (0)
/* CHECK_SYS(call): call returns -1 and sets errno on error. */
#define CHECK_SYS(call) \
	({ \
		__typeof__(call) dg_r_ = (call); \
		if (dg_r_ == -1) \
			dg_die_at(__FILE__, __LINE__, #call, errno); \
		dg_r_; \
	})
/* A FAIL was reported in this process (set by dg_ktap_result). */
bool dg_fail_seen(void);
void dg_note_fail(void);
/* Program name used in messages (set by dg_main from argv[0]). */
extern const char *dg_prog;
uint64_t dg_now_us(void);             /* CLOCK_MONOTONIC, microseconds */
void *dg_xmalloc(size_t n);           /* zeroed, never NULL */
void *dg_xaligned(size_t align, size_t n); /* zeroed, never NULL */
/* An I/O target: aligned, every page mapped, contents undefined. */
void *dg_xbuffer(size_t align, size_t n);
/* Map the pages of [p, p+n) now, in one system call (see check.c). */
void dg_prefault(void *p, size_t n);
/* Bad input: one line "repro: msg" on stderr, exit DG_BROKEN. */
void dg_usage_error(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* ---- options (opts.c) ---------------------------------------------------- */
enum dg_buf_kind { DG_BUF_MEMFD, DG_BUF_ANON, DG_BUF_FILE };

struct dg_opts {
	uint64_t size;         /* --size, bytes written per iteration */
	uint64_t offset;       /* --offset, file offset of the first byte */
	uint64_t chunk;        /* --chunk, bytes per write call; 0 = size */
	const char *fault;     /* --fault PATTERN, default "first" */
	enum dg_buf_kind buf;  /* --buffer memfd|anon|file:PATH */
	const char *buf_path;  /* PATH of file:PATH; NULL for "file" (in target) */
	const char *engine;    /* --engine, reproducer-specific, may be NULL */
	const char *layout;    /* --layout, the file's extents (rp->layouts), may be NULL */
	unsigned qd;           /* --qd, io_uring writes in flight */
	bool fixed_buffers;    /* --fixed-buffers */
	bool async;            /* --async (IOSQE_ASYNC) */
	double hang_timeout;   /* --hang-timeout S (may-hang reproducers) */
	unsigned iterations;   /* --iterations N, default 1 */
	uint64_t seed;         /* --seed N, default from time; always printed */
	bool seed_set;         /* --seed was given */
	const char *json_path; /* --json FILE, append JSON Lines */
	bool keep;             /* --keep the target file on FAIL */
	bool any_fs;           /* --any-fs: do not insist on btrfs */
	bool nocow;            /* --nocow: chattr +C the new target file */
	bool overwrite;        /* --overwrite: iterations >= 2 keep the old data */
	const char *target;    /* positional TARGET directory */
	/* Filled by the library after validation: */
	const struct dg_repro *rp; /* the reproducer being run */
	unsigned dio_align;    /* offset/size alignment the kernel asks for */
	unsigned mem_align;    /* buffer alignment */
	const char *align_source; /* "statx", "blkdev" or "st_blksize" */
	const char *fstype;    /* "btrfs", "ext4", "tmpfs", ... */
	const char *datasum;   /* btrfs data checksums on the file: yes|no|n/a */
	char file[4096];       /* the target file dg_main created in TARGET */
	char argv_line[1024];  /* canonical command line incl. --seed (rerun) */
};
/* Parse "4096", "64K", "1M", "2G" (binary units). -1 on nonsense/overflow. */
int dg_parse_size(const char *s, uint64_t *out);
/* Parse options into o (exits 2 on bad input, 0 after --describe/--help),
 * then validate the target and fill the library fields. */
struct dg_repro;
void dg_opts_parse(const struct dg_repro *rp, int argc, char **argv,
		   struct dg_opts *o);
/* Once o->file exists (open fd): DIO alignment (statx STATX_DIOALIGN on the
 * file, else btrfs sectorsize, else the device's logical block size, else
 * st_blksize) and checks of size/offset/chunk against it; datasum. */
void dg_opts_file(struct dg_opts *o, int fd);
/* Is key (e.g. "qd", "buffer") in rp->params? (A reproducer takes the
 * option --KEY, and its record and rerun line carry it, only then.) */
bool dg_takes_param(const struct dg_repro *rp, const char *key);
/* "memfd", "anon" or "file:" (followed by buf_path where printed). */
const char *dg_buf_kind_name(enum dg_buf_kind k);
/* The --buffer argument that gives this buffer again: "memfd", "anon",
 * "file" (a new file in the target directory) or "file:PATH" (in out). */
const char *dg_buf_arg(const struct dg_opts *o, char *out, size_t n);

/* ---- fault patterns and residency (fault.c, buffer.c) --------------------
 * PATTERN: first | none | all | stride:N | random:SEED:PCT | pages:LIST
 * (LIST: comma separated page numbers or ranges a-b). dg_fault_want()
 * sets want[i] = 1 for each page of a len-byte buffer (ceil(len/page)
 * pages) that the pattern asks to be resident. `first` is the first page of
 * every write call: calls are chunk bytes each (chunk 0 = one call), so
 * with chunk = len it is the first page of the buffer (generic/708).
 * Returns 0, or -1 with a message in err. */
int dg_fault_want(const char *pattern, uint64_t len, size_t page,
		  uint64_t chunk, unsigned char *want, char *err, size_t errlen);

struct dg_buf {
	char *map;             /* the mapping the write reads from */
	size_t len;            /* bytes, a multiple of page */
	size_t page;           /* page size */
	size_t npages;
	int fd;                /* memfd / file backing store, -1 for anon */
	unsigned char *want;   /* what the pattern asked for, per page */
	unsigned char *seen;   /* residency measured right before the write */
	const char *source;    /* "pagemap" or "mincore": how seen was measured */
	bool shared;           /* a MAP_SHARED mapping (memfd/file): mincore
				* reports the page cache there, not the PTEs */
	const char *note;      /* what had to be done differently, or NULL
				* ("no madvise: ...", "memfd -> anon: ...") */
	/* internal */
	char *expect;          /* what a correct write stores (len bytes) */
	char *tmp_path;        /* file:DIR backing file we created, or NULL */
};
/* Fill the backing store with data (through write(), never the mapping, for
 * memfd/file; for anon, only wanted pages are written, the rest stay
 * untouched and read as zeros), map fresh, zap, make exactly the wanted
 * pages resident. data (len bytes from malloc) becomes the buffer's
 * expected copy: dg_buf_release frees it (no second copy of a large
 * buffer: under TCG each copy costs page faults and milliseconds). */
void dg_buf_prepare(struct dg_buf *b, const struct dg_opts *o,
		    char *data, size_t len, const unsigned char *want);
/* Measure residency now (pagemap present bit; mincore if pagemap is not
 * available). Returns the number of resident pages. */
size_t dg_buf_measure(struct dg_buf *b);
/* Re-measure pages [first, first+n) only (right before one write call);
 * returns how many of them are resident. */
size_t dg_buf_measure_range(struct dg_buf *b, size_t first, size_t n);
/* Resident pages in seen[]. */
size_t dg_buf_resident(const struct dg_buf *b);
/* What the buffer holds = what a correct write stores (anon: zeros on
 * pages that were never touched). Points into an internal copy. */
const void *dg_buf_expected(const struct dg_buf *b);
void dg_buf_release(struct dg_buf *b);

/* ---- data pattern (pattern.c) --------------------------------------------
 * Every 512-byte sector starts with a header; the rest is filler derived
 * from the header, so a sector names its own offset, run and iteration. */
#define DG_SECTOR 512
struct dg_sector_hdr {
	uint64_t magic;        /* DG_MAGIC */
	uint64_t offset;       /* file offset of this sector */
	uint64_t run_id;       /* random per process run (from --seed) */
	uint32_t iteration;
	uint32_t csum;         /* over the whole sector with csum = 0 */
};
#define DG_MAGIC 0x70616764696f6764ULL /* "dgoidgap" */
void dg_pattern_fill(void *buf, size_t len, uint64_t file_offset,
		     uint64_t run_id, uint32_t iteration);
/* Checksum of one sector as stored in its header (csum field taken as 0). */
uint32_t dg_sector_csum(const void *sector);
/* The sector carries a well-formed header (magic and checksum right). */
bool dg_sector_valid(const void *sector);

/* ---- verification (verify.c) -------------------------------------------- */
enum dg_class { DG_OK, DG_ZERO, DG_STALE, DG_MISPLACED, DG_GARBAGE };
const char *dg_class_name(enum dg_class c); /* ok zero stale misplaced garbage */
/* Classify one sector read at file_offset against the expected sector. */
enum dg_class dg_classify(const void *got, const void *want,
			  uint64_t file_offset, uint64_t run_id,
			  uint32_t iteration);

struct dg_range {
	uint64_t start, end;   /* [start, end) in file offsets */
	enum dg_class cls;
	int extent;            /* zero ranges: 1 inside an extent, 0 a hole, -1 unknown */
};
struct dg_ranges {
	struct dg_range *r;
	size_t n, cap;
};
void dg_ranges_add(struct dg_ranges *rs, uint64_t start, uint64_t end,
		   enum dg_class cls); /* merges with the last range if adjacent and same class */
void dg_ranges_free(struct dg_ranges *rs);

/* Compare got[] (read back from file_offset) with want[], sector by sector;
 * append bad ranges (merged) to gaps. Returns the number of bad sectors. */
size_t dg_verify(const void *got, const void *want, size_t len,
		 uint64_t file_offset, uint64_t run_id, uint32_t iteration,
		 struct dg_ranges *gaps);
/* Read [off, off+len) of fd with O_DIRECT (fd must be O_DIRECT) into buf.
 * Returns the bytes read (short at EOF; the rest of buf is zeroed), or
 * -errno. */
ssize_t dg_read_back(int fd, void *buf, size_t len, uint64_t off);
/* Mark each zero gap as hole or zeros-in-extent with FIEMAP (extent = -1
 * where FIEMAP is not supported). */
void dg_gaps_fiemap(int fd, struct dg_ranges *gaps);

/* ---- prediction (predict.c) ----------------------------------------------
 * For each write call covering buffer bytes [c, c+chunk) at file offset
 * file_off + c: if the call's first page is resident and a later page is
 * not, a buggy kernel loses the resident run before the first non-resident
 * page. Appends those file ranges to pred. */
void dg_predict(const unsigned char *seen, size_t npages, size_t page,
		uint64_t file_off, uint64_t chunk, uint64_t len,
		struct dg_ranges *pred);
/* True when gaps and pred hold exactly the same [start, end) ranges. */
bool dg_ranges_match(const struct dg_ranges *gaps, const struct dg_ranges *pred);

/* ---- one test's record and output (output.c) ---------------------------- */
struct dg_result {
	int verdict;
	/* On FAIL: data | size | eio-read | eio-write | hang | copies; NULL
	 * otherwise (JSON "symptom"). */
	const char *symptom;
	/* Did the fault shape the pattern needs happen (JSON "precondition")?
	 * Zero (a memset result) is null: this reproducer has none. */
	enum dg_tristate { DG_NULL = 0, DG_YES, DG_NO } precondition;
	char precondition_why[160];
	/* Did the write take the O_DIRECT path (JSON "direct")? DG_NULL could
	 * not tell, DG_NO buffered (SKIP). dirtied_pages / writeback_pages:
	 * the raw nr_dirtied / nr_written deltas over the writes (with
	 * dirtied_set), dirtied_base what a direct write dirties anyway (a
	 * loop device's own page cache), dirtied_written the pages written. */
	enum dg_tristate direct;
	bool dirtied_set, dirtied_started, vm_exact;
	int64_t dirtied_pages, writeback_pages, dirtied_base, dirtied_written;
	int64_t dirtied_start, written_start; /* internal: counters at the start */
	/* A write too small to tell from noise that looked buffered is judged
	 * by a probe instead (dg_direct_probe; JSON "direct_probe"): its pages
	 * written and deltas, probe_set when it ran. */
	bool probe_set;
	int64_t probe_pages, probe_dirtied, probe_written;
	/* File ranges whose right content is zeros anyway (anon pages never
	 * touched): a hole there cannot be told from the data. */
	struct dg_ranges unverifiable;
	const char *name;       /* KTAP test name, no spaces */
	unsigned iteration;
	struct dg_ranges gaps, predicted;
	size_t resident_pages;
	uint64_t size_expected, size_seen;
	uint64_t write_us, verify_us;
	const char *diag;       /* one line reason for FAIL/BROKEN/SKIP, or NULL */
	char diag_buf[256];     /* storage diag may point to */
	const char *extra_json; /* reproducer-specific members ("\"k\":v,..."), or NULL */
	uint64_t chunk_used;    /* bytes per write call really used (JSON "chunk"); 0 = --chunk, else size */
	/* The first bad sector of this iteration (JSON "first_bad" on a FAIL). */
	struct dg_first_bad {
		bool set;
		uint64_t offset;        /* file offset of the sector */
		enum dg_class cls;
		unsigned char got[DG_SECTOR], want[DG_SECTOR];
	} first_bad;
};
/* Record r->first_bad (unless already set) from a buffer got[] read back
 * at file_offset and the want[] it should hold (len bytes each): the
 * sector at the lowest start of r->gaps inside [file_offset, +len). Call
 * after the gaps of that buffer are in r->gaps. */
void dg_first_bad_note(struct dg_result *r, const void *got, const void *want,
		       size_t len, uint64_t file_offset);
/* KTAP: header once, one line per test, totals at the end. A FAIL also
 * prints "# rerun: <the exact command line for this case>". */
void dg_ktap_begin(unsigned ntests);
void dg_ktap_result(const struct dg_opts *o, const struct dg_buf *b,
		    const struct dg_result *r);
int dg_ktap_end(void); /* prints totals, returns the merged verdict */

/* ---- one iteration's common steps (iter.c) -------------------------------
 * run() = dg_iter_prepare; open o->file O_DIRECT; dg_buf_measure[_range]
 * right before writing; time the writes into r->write_us; on a write error
 * return dg_write_failed(); else return dg_iter_verify(). */
void dg_iter_prepare(const struct dg_opts *o, unsigned iteration,
		     uint64_t run_id, struct dg_buf *b);
/* A write call failed with err at file offset off: BROKEN (ENOSPC and
 * EDQUOT are named as a full scratch filesystem, EROFS as a read-only
 * one), except EIO, which on a healthy scratch device is FAIL eio-write. */
int dg_write_failed(int err, uint64_t off, struct dg_result *r);
/* One synchronous write call: write p[0, n) at file offset off (an
 * O_APPEND writer ignores off); returns what write(2) returns. */
typedef ssize_t (*dg_write_fn)(const struct dg_opts *o, int fd, char *p,
			       size_t n, uint64_t off);
struct dg_write_count {
	unsigned calls, shorts;
};
/* Write buffer bytes [c, c+n) (file offset o->offset + c) by calling fn
 * until all are written: residency of those pages measured right before,
 * EINTR retried, a short write counted and continued, the calls' time
 * added to r->write_us. 0, or dg_write_failed()'s verdict (fd left open). */
int dg_write_range(const struct dg_opts *o, struct dg_buf *b, int fd,
		   uint64_t c, size_t n, dg_write_fn fn,
		   struct dg_write_count *wc, struct dg_result *r);
/* Predict from b->seen, read back, classify, FIEMAP, st_size against
 * r->size_expected (0: offset + size), set verdict, symptom, diag,
 * verify_us; a PASS becomes SKIP when the write went buffered or the fault
 * shape the pattern needs did not happen (dg_judge). */
int dg_iter_verify(const struct dg_opts *o, int fd, struct dg_buf *b,
		   uint64_t run_id, unsigned iteration, struct dg_result *r);
/* The DIOGAP_TEST_CORRUPT test hook (dg_iter_verify calls it between the
 * writes and the read-back; a reproducer that verifies by itself calls it
 * there too). fd: the target, O_RDWR (O_DIRECT fine). punch: holes over
 * r->predicted, or over the first alignment unit at --offset when nothing
 * is predicted; stale: iteration-1 data written back over r->predicted
 * (says so when there is nothing to damage); grow: the file one alignment
 * unit longer; eio: nothing here, the read-back sees -EIO
 * (dg_test_read_eio). Prints "# test hook: ..."; no-op when the variable
 * is unset. The value is checked by dg_opts_parse (punch|stale|grow|eio,
 * else exit 2). */
void dg_test_corrupt(const struct dg_opts *o, int fd, uint64_t run_id,
		     unsigned iteration, struct dg_result *r);

/* A read-back failed with -n (n < 0) over [off, off+len): EIO is FAIL
 * eio-read (a checksum failure is the usual cause), anything else BROKEN.
 * Sets r's verdict, symptom and diag; returns the verdict. */
int dg_read_failed(ssize_t n, uint64_t off, size_t len, struct dg_result *r);
/* The DIOGAP_TEST_CORRUPT=eio hook: true (and a "# test hook" line) when
 * the read-back is to see -EIO. */
bool dg_test_read_eio(void);

/* ---- chunks (chunks.c) ----------------------------------------------------
 * A chunk of the chunk tree: its logical range, type (BTRFS_BLOCK_GROUP_*:
 * data/metadata/system and the profile) and where its stripes live. */
#define DG_MAX_STRIPES 16
struct dg_chunk {
	uint64_t logical, length, type, stripe_len;
	unsigned nstripes, sub_stripes;
	struct { uint64_t devid, offset; } st[DG_MAX_STRIPES];
};
/* The chunks whose type has a bit of type_mask (BTRFS_BLOCK_GROUP_DATA...)
 * into a malloc'ed array *out of *n, in logical order: 0, or -errno
 * (EPERM: not root; the search needs CAP_SYS_ADMIN). */
int dg_chunks_load(int fd, uint64_t type_mask, struct dg_chunk **out, size_t *n);

/* ---- was the write direct? (direct.c) ------------------------------------
 * nr_dirtied and nr_written of /proc/vmstat before and after an
 * iteration's writes (see direct.c for why both and the noise). */
/* Both counters (per-CPU parts folded first where possible): 1 exact, 0
 * approximate, -1 unreadable. */
int dg_vm_counts(int64_t *dirtied, int64_t *written);
/* Pages a direct write of one page dirties anyway on the device stack of
 * fd's filesystem: 1 when a device is a loop device without direct I/O
 * (its backing file's page cache), else 0. */
unsigned dg_dirty_per_page(int fd);
/* Start (first call wins) and end the measurement (once); end sets
 * r->direct and r->dirtied_* from the bytes written and per_page. */
void dg_direct_begin(struct dg_result *r);
void dg_direct_end(struct dg_result *r, uint64_t bytes, size_t page,
		   unsigned per_page);
/* Pages below which a write's own measure is too small to tell from noise,
 * and the size of the probe that judges it instead. */
#define DG_PROBE_PAGES 64
/* r->direct is DG_NO from a write of fewer than DG_PROBE_PAGES pages: a
 * few pages of anyone's writeback in the window (btrfs's own metadata from
 * the last commit, another writer) make it look buffered. Judge instead
 * by DG_PROBE_PAGES pages written with O_DIRECT to a new file in dir, with
 * like_fd's inode flags (NOCOW, compression): btrfs decides buffered or
 * direct per inode and filesystem (968f19c5b1b7, 7c2830f00c3e), so the
 * probe goes where the write went. Sets r->direct from the probe when it
 * could tell, and r->probe_*; nothing when r->direct is not DG_NO or the
 * write was large enough. */
void dg_direct_probe(const char *dir, int like_fd, size_t page, unsigned per_page,
		     struct dg_result *r);
/* The DIOGAP_TEST_NOISE=N hook: N pages of buffered writeback in dir (a
 * file written, fdatasync'd, removed), as another writer would make while
 * a write is measured. */
void dg_test_noise(const char *dir);
/* Judge from the deltas alone; a delta < 0: unread (DG_NULL). */
enum dg_tristate dg_direct_judge(int64_t dirtied, int64_t wback, int64_t pages,
				 int64_t base);

/* ---- preconditions (precond.c) -------------------------------------------
 * Did the fault shape the pattern needs happen? Sets r->precondition and
 * r->precondition_why from b->want, b->seen (per page), the write calls'
 * size chunk and the measurement's source. */
void dg_precondition(const struct dg_opts *o, const struct dg_buf *b,
		     uint64_t chunk, struct dg_result *r);
/* A PASS becomes SKIP when the write went buffered (r->direct == 0) or
 * the precondition was not met; a FAIL or BROKEN stays. Returns the
 * verdict (also in r->verdict). */
int dg_judge(struct dg_result *r);
/* r's verdict v, symptom (NULL unless FAIL) and one-line diag from fmt:
 * returns v. */
int dg_set_diag(struct dg_result *r, int v, const char *symptom, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The iteration is SKIP "precondition not met: WHY" (WHY from fmt): sets
 * r's verdict, diag, precondition (DG_NO) and precondition_why; returns
 * DG_SKIP. */
int dg_precondition_skip(struct dg_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* anon buffers: the file ranges of pages never touched (zeros wanted,
 * zeros read) into r->unverifiable. */
void dg_unverifiable(const struct dg_opts *o, const struct dg_buf *b,
		     struct dg_result *r);

/* A growing string (output.c), for JSON the reproducers build. */
struct dg_sb {
	char *s;               /* NUL terminated once anything was printed */
	size_t len, cap;
};
void dg_sb_printf(struct dg_sb *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* s as a JSON string (escaped, quoted), or null when s is NULL. */
void dg_sb_str(struct dg_sb *b, const char *s);

/* ---- the reproducer's skeleton (main.c) ----------------------------------- */
/* A commit: 12 hex digits and its subject line. */
struct dg_commit {
	const char *sha, *subject;
};
#define DG_MAX_FIXES 4
/* One reproducer. Its metadata is data here, in one place: --describe
 * prints it (--describe --json as one JSON object), the harness reads it
 * from the binary (sweep parameters, may-hang, the bug report's fix hints,
 * the standalone program's header). */
struct dg_repro {
	const char *name;      /* binary name, e.g. "dio-partial-write" */
	const char *summary;   /* one line: what it does */
	/* the fixes whose absence it catches ({NULL} when none is merged) */
	struct dg_commit fixes[DG_MAX_FIXES];
	struct dg_commit introduced_by; /* the commit that brought the bug, or {NULL} */
	const char *fstests;   /* space separated fstests tests ("generic/708"), or NULL */
	const char *params;    /* space separated per-reproducer options (sweep keys) */
	bool may_hang;         /* a kernel with the bug may never return */
	const char *note;      /* one line more (e.g. "no fix merged upstream"), or NULL */
	const char *engines;   /* "psync|pwritev", or NULL */
	/* --layout values ("plain|compressed"), the first the default, or
	 * NULL; the sweep key is `layout` (params) */
	const char *layouts;
	/* --size when none is given, in pages of the running kernel's page
	 * size; 0: 1M */
	unsigned default_pages;
	/* what the harness must set up for it, space separated, or NULL:
	 * "dm-flakey" = the scratch disk under dm-flakey (a power cut) */
	const char *needs;
	/* Run one iteration: prepare, write, verify, fill r. Returns a verdict. */
	int (*run)(const struct dg_opts *o, unsigned iteration, uint64_t run_id,
		   struct dg_result *r, struct dg_buf *b);
};
/* Print rp's metadata: text (Fixes:, Introduced-by:, fstests:, Params:,
 * May-hang: lines) or one JSON object (describe.c). */
void dg_describe(const struct dg_repro *rp, bool json);
/* Parse options, validate the target (btrfs unless --any-fs, writable,
 * DIO alignment from statx STATX_DIOALIGN or the logical block size),
 * create o->file (O_DIRECT unsupported: SKIP), run every iteration, print
 * KTAP and JSON, remove the file (kept on FAIL with --keep), return the
 * exit code. Per-reproducer options are accepted when their key is on the
 * describe block's `Params:` line. */
int dg_main(const struct dg_repro *rp, int argc, char **argv);
/* Called by run() when a child is stuck in the kernel holding o->file (its
 * inode lock): once run() returns, dg_main prints "# file kept: PATH
 * (why)", reports the remaining iterations as "SKIP not run: why" (KTAP
 * and JSON), prints the totals and returns the exit code without
 * unlinking, opening or stat'ing o->file again (also at exit). */
void dg_abandon_file(const char *why);

/* ---- unstable buffers (scribble.c) ---------------------------------------
 * A thread that keeps rewriting a buffer while the main thread does O_DIRECT
 * I/O from (writes) or into (reads) it. FLIP: byte `byte` of every `stride`
 * bytes XOR 0xff, again and again (each such byte holds one of two values,
 * everything else stays as it was); MEMSET: the whole buffer 0x00, then
 * 0xff, ... (len a multiple of 8). */
#include <pthread.h>
enum dg_scribble_mode { DG_SCRIBBLE_FLIP, DG_SCRIBBLE_MEMSET };
struct dg_scribble {
	void *buf;
	size_t len;
	enum dg_scribble_mode mode;
	size_t stride, byte;   /* FLIP only */
	uint64_t passes;       /* whole passes over buf, valid after stop */
	/* internal */
	pthread_t tid;
	int stop;
	bool running;
};
void dg_scribble_start(struct dg_scribble *s);
/* Stop and join the thread; returns passes. No-op when not running. */
uint64_t dg_scribble_stop(struct dg_scribble *s);
/* Pages of the file range [off, off+len) in the page cache (mincore on a
 * fresh mapping), or -1 when it cannot tell. */
long dg_cached_pages(int fd, uint64_t off, uint64_t len);
/* fsync fd, then drop the range's pages from the page cache:
 * POSIX_FADV_DONTNEED, or /proc/sys/vm/drop_caches when fadvise is ENOSYS
 * or left pages behind. Returns "fadvise" or "drop_caches"; a failure is
 * BROKEN (exit 2). */
const char *dg_drop_cache(int fd, uint64_t off, uint64_t len);
/* Does the btrfs inode of fd carry data checksums? 1 yes, 0 no (its inode
 * item has NODATASUM: `chattr +C`, or created under a nodatasum mount), -1
 * cannot tell (BTRFS_IOC_TREE_SEARCH_V2 needs root). The mount options are
 * not enough: a file keeps what it was created with. */
int dg_inode_datasum(int fd);
/* The target file's data checksums, "yes" or "no", from its inode item
 * (dg_inode_datasum), else o->datasum (the mount's); *csum gets
 * dg_inode_datasum's answer (-1: the mount's was taken). */
const char *dg_file_datasum(const struct dg_opts *o, int fd, int *csum);

#endif
