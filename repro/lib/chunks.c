// SPDX-License-Identifier: GPL-2.0
/*
 * chunks.c - the filesystem's chunks from the chunk tree
 * (BTRFS_IOC_TREE_SEARCH_V2, root only): where each chunk's stripes live
 * on which device. dio-unstable-write reads every copy of the data with it,
 * dio-fsync-after-error makes the data chunks' sectors fail writes.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "diogap.h"

/* one chunk item into c (sh: its search header, item: its bytes) */
static void chunk_from_item(const struct btrfs_ioctl_search_header *sh, const char *item,
			    struct dg_chunk *c)
{
	struct btrfs_chunk ch;
	unsigned s;

	memcpy(&ch, item, sizeof(ch));
	memset(c, 0, sizeof(*c));
	c->logical = sh->offset;
	c->length = le64toh(ch.length);
	c->type = le64toh(ch.type);
	c->nstripes = le16toh(ch.num_stripes);
	c->sub_stripes = le16toh(ch.sub_stripes);
	c->stripe_len = le64toh(ch.stripe_len);
	if (!c->stripe_len)
		c->stripe_len = 64 * 1024;
	if (c->nstripes > DG_MAX_STRIPES)
		c->nstripes = DG_MAX_STRIPES;
	for (s = 0; s < c->nstripes; s++) {
		struct btrfs_stripe st;

		if (sizeof(ch) - sizeof(ch.stripe) + (s + 1) * sizeof(st) > sh->len)
			break;
		memcpy(&st, item + offsetof(struct btrfs_chunk, stripe) + s * sizeof(st),
		       sizeof(st));
		c->st[s].devid = le64toh(st.devid);
		c->st[s].offset = le64toh(st.offset);
	}
}

int dg_chunks_load(int fd, uint64_t type_mask, struct dg_chunk **out, size_t *n)
{
	size_t bufsz = 64 * 1024, cap = 0;
	struct btrfs_ioctl_search_args_v2 *a = dg_xmalloc(sizeof(*a) + bufsz);
	uint64_t next = 0;

	*out = NULL;
	*n = 0;
	for (;;) {
		size_t pos = 0;
		uint32_t i;

		memset(a, 0, sizeof(*a));
		a->key.tree_id = BTRFS_CHUNK_TREE_OBJECTID;
		a->key.min_objectid = a->key.max_objectid = BTRFS_FIRST_CHUNK_TREE_OBJECTID;
		a->key.min_type = a->key.max_type = BTRFS_CHUNK_ITEM_KEY;
		a->key.min_offset = next;
		a->key.max_offset = UINT64_MAX;
		a->key.max_transid = UINT64_MAX;
		a->key.nr_items = 4096;
		a->buf_size = bufsz;
		if (ioctl(fd, BTRFS_IOC_TREE_SEARCH_V2, a) < 0) {
			int err = errno;

			free(a);
			free(*out);
			*out = NULL;
			*n = 0;
			return -err;
		}
		if (!a->key.nr_items)
			break;
		for (i = 0; i < a->key.nr_items; i++) {
			struct btrfs_ioctl_search_header sh;
			uint64_t type;

			memcpy(&sh, a->buf + pos, sizeof(sh));
			pos += sizeof(sh);
			next = sh.offset + 1;
			if (sh.type == BTRFS_CHUNK_ITEM_KEY && sh.len >= sizeof(struct btrfs_chunk)) {
				memcpy(&type, a->buf + pos + offsetof(struct btrfs_chunk, type),
				       sizeof(type));
				if (le64toh(type) & type_mask) {
					if (*n == cap) {
						cap = cap ? cap * 2 : 16;
						*out = realloc(*out, cap * sizeof(**out));
						CHECK(*out);
					}
					chunk_from_item(&sh, (const char *)a->buf + pos, &(*out)[(*n)++]);
				}
			}
			pos += sh.len;
		}
		if (next == 0) /* wrapped past UINT64_MAX */
			break;
	}
	free(a);
	return 0;
}
