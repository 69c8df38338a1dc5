// SPDX-License-Identifier: GPL-2.0
/*
 * enosys.c - run a command as on a kernel without some system calls.
 *
 *   build/enosys SYSCALL[,SYSCALL...] COMMAND [ARGS...]
 *
 * Installs a seccomp filter that fails the named system calls with ENOSYS
 * (what a kernel built without them, e.g. CONFIG_ADVISE_SYSCALLS=n for
 * madvise and fadvise64, returns) and execs COMMAND; the filter is
 * inherited by its children. Names: madvise, fadvise64, process_madvise.
 * A test helper (harness/tests/repro-local.sh), not part of the harness.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "enosys: add this architecture's AUDIT_ARCH"
#endif

#define MAX_CALLS 8

static long syscall_nr(const char *name)
{
	if (!strcmp(name, "madvise"))
		return __NR_madvise;
#ifdef __NR_fadvise64
	if (!strcmp(name, "fadvise64"))
		return __NR_fadvise64;
#endif
#ifdef __NR_process_madvise
	if (!strcmp(name, "process_madvise"))
		return __NR_process_madvise;
#endif
	return -1;
}

int main(int argc, char **argv)
{
	struct sock_filter f[4 + 2 * MAX_CALLS + 1];
	struct sock_fprog prog;
	char *list, *name, *save = NULL;
	unsigned n = 0, k = 0, i;
	long nrs[MAX_CALLS];

	if (argc < 3) {
		fprintf(stderr, "usage: %s SYSCALL[,SYSCALL...] COMMAND [ARGS...]\n", argv[0]);
		return 2;
	}
	list = strdup(argv[1]);
	for (name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		if (n == MAX_CALLS || (nrs[n] = syscall_nr(name)) < 0) {
			fprintf(stderr, "%s: unknown or too many system calls: %s\n", argv[0], name);
			return 2;
		}
		n++;
	}
	/* another architecture's calls: allowed (we only run native ones) */
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	for (i = 0; i < n; i++) {
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						      (unsigned)nrs[i], 0, 1);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						      SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
	}
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	prog.len = (unsigned short)k;
	prog.filter = f;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("enosys: seccomp");
		return 2;
	}
	execvp(argv[2], argv + 2);
	fprintf(stderr, "%s: exec %s: %s\n", argv[0], argv[2], strerror(errno));
	return 2;
}
