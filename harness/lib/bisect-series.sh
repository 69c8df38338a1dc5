# shellcheck shell=bash
# A kernel git tree with a known history, for testing and timing the bisect
# tools (harness/tests/bisect.sh, harness/bench-bisect). Sourced after
# common.sh, never run.
#
# The base: linux-source-6.1 (Debian's 6.1.192) as one git commit, made once
# and kept in $DIOGAP_CACHE/bisect/linux-6.1 (a full tree: git add + commit
# take minutes). It is remade when absent or when the tarball changed.
# On top of it, bs_series writes a branch of small commits: harmless ones,
# the partial-dio-hole patch, a commit that does not build, a revert.

BS_TREE=$DIOGAP_CACHE/bisect/linux-6.1
BS_TARBALL=/usr/src/linux-source-6.1.tar.xz
BS_PLANT_PATCH=$DIOGAP_ROOT/configs/patches/6.1/partial-dio-hole.patch

# Every commit is made by the same fixed identity: the same series gives the
# same shas in every run, unless BS_DATE is changed (bench-bisect does).
BS_DATE=${BS_DATE:-2024-01-01T00:00:00Z}

bs_git() {
	GIT_AUTHOR_NAME=diogap GIT_AUTHOR_EMAIL=diogap@localhost \
		GIT_COMMITTER_NAME=diogap GIT_COMMITTER_EMAIL=diogap@localhost \
		GIT_AUTHOR_DATE=$BS_DATE GIT_COMMITTER_DATE=$BS_DATE \
		git -C "$BS_TREE" -c core.excludesFile=/dev/null -c commit.gpgSign=false \
		-c core.autocrlf=false -c gc.auto=0 "$@"
}

bs_tarball_stamp() {
	stat -c '%n %s %Y' -- "$BS_TARBALL"
}

# bs_lock: the tree is shared by every test and bench run on this machine:
# one at a time (held until the process exits).
bs_lock() {
	local f=$DIOGAP_CACHE/locks/bisect-test-tree.lock
	mkdir -p "${f%/*}"
	exec {bs_lock_fd}>"$f"
	if ! flock -n "$bs_lock_fd"; then
		log "waiting for another test or bench using $BS_TREE (lock $f)"
		flock "$bs_lock_fd"
	fi
}

# bs_base: make the base repository when it is missing or stale.
bs_base() {
	local stamp tmp t0=$SECONDS
	bs_lock
	ensure_pkgs linux-source-6.1 git xz-utils
	stamp=$(bs_tarball_stamp)
	if [[ -f $BS_TREE/.git/diogap-base && $(<"$BS_TREE/.git/diogap-base") == "$stamp" ]] &&
		git -C "$BS_TREE" rev-parse -q --verify refs/tags/diogap-base >/dev/null; then
		return 0
	fi
	log "making the git base from $BS_TARBALL in $BS_TREE (once; takes minutes)"
	tmp=$BS_TREE.tmp
	rm -rf -- "$tmp" "$BS_TREE"
	mkdir -p -- "$tmp"
	tar -xJf "$BS_TARBALL" -C "$tmp" --strip-components=1 || die "cannot unpack $BS_TARBALL"
	mv -T -- "$tmp" "$BS_TREE"
	git init -q -b diogap-base-branch "$BS_TREE"
	bs_git add -A -f . || die "git add in $BS_TREE failed"
	bs_git commit -q -m "linux-source-6.1 $(dpkg-query -W -f='${Version}' linux-source-6.1)" ||
		die "git commit in $BS_TREE failed"
	bs_git tag diogap-base
	echo "$stamp" >"$BS_TREE/.git/diogap-base"
	log "git base ready in $((SECONDS - t0)) s: $(git -C "$BS_TREE" rev-parse --short HEAD)"
}

# bs_reset: no bisect in progress, clean tree at the base.
bs_reset() {
	git -C "$BS_TREE" bisect reset >/dev/null 2>&1 || true
	bs_git checkout -q -f diogap-base-branch || die "cannot check out the base in $BS_TREE"
	bs_git reset -q --hard diogap-base
	bs_git clean -q -f -d
}

# bs_commit SUBJECT: commit everything changed, print the new sha.
bs_commit() {
	bs_git add -A . && bs_git commit -q -m "$1" && git -C "$BS_TREE" rev-parse HEAD
}

# bs_note FILE TEXT: a harmless change (a comment line at the end of FILE;
# files under Documentation/ are not built at all).
bs_note() {
	local f=$BS_TREE/$1
	case $f in
	*.c | *.h) printf '/* diogap bisect test: %s */\n' "$2" >>"$f" ;;
	*) printf '\n%s\n' "diogap bisect test: $2" >>"$f" ;;
	esac
}

# A file that every kernel config builds: the commit that breaks the build
# breaks this one (unrelated to btrfs).
readonly BS_BUILT_FILE=fs/read_write.c

# bs_series NAME KIND: branch NAME from the base with these commits, one
# sha a line in BS_SHAS[1..], the role of each in BS_ROLES[1..]:
#   bug:   doc, comment, doc, BROKEN, unbroken, PLANT, doc, comment
#   fixed: PLANT, doc, comment, BROKEN, unbroken, REVERT, doc, comment
# (0 is the base.) BS_PLANT / BS_REVERT / BS_BROKEN: the index of each.
# BROKEN (does not build) sits where git bisect looks first (commit 4 of 8),
# so every run of the test meets it.
# shellcheck disable=SC2034 # BS_* are read by the scripts that source this
bs_series() {
	local name=$1 kind=$2 role i=0
	local -a roles
	case $kind in
	bug) roles=(doc comment doc broken unbroken plant doc comment) ;;
	fixed) roles=(plant doc comment broken unbroken revert doc comment) ;;
	*) die "bs_series: unknown kind $kind" ;;
	esac
	bs_reset
	bs_git checkout -q -B "$name" diogap-base
	BS_BRANCH=$name
	BS_SHAS=("$(git -C "$BS_TREE" rev-parse diogap-base)") BS_ROLES=(base)
	for role in "${roles[@]}"; do
		i=$((i + 1))
		BS_SHAS[i]=$(bs_series_commit "$role" "$i") || die "series $name: commit $i ($role) failed"
		BS_ROLES[i]=$role
		case $role in
		plant) BS_PLANT=$i ;;
		revert) BS_REVERT=$i ;;
		broken) BS_BROKEN=$i ;;
		esac
	done
}

# bs_series_commit ROLE I: make commit I of the series; print its sha.
bs_series_commit() {
	local role=$1 i=$2
	case $role in
	doc)
		bs_note Documentation/filesystems/btrfs.rst "note $i"
		bs_commit "Documentation: btrfs: diogap bisect test note $i" ;;
	comment)
		bs_note fs/btrfs/ctree.c "comment $i"
		bs_commit "btrfs: diogap bisect test comment $i" ;;
	broken)
		printf 'diogap_bisect_test_syntax_error(\n' >>"$BS_TREE/$BS_BUILT_FILE"
		bs_commit "fs: diogap bisect test: a commit that does not build" ;;
	unbroken)
		sed -i '/^diogap_bisect_test_syntax_error($/d' "$BS_TREE/$BS_BUILT_FILE"
		bs_commit "fs: diogap bisect test: build again" ;;
	plant)
		patch -s -p1 --batch --fuzz=0 -d "$BS_TREE" -i "$BS_PLANT_PATCH" >&2 || return 1
		bs_commit "btrfs: diogap bisect test: bring back the partial DIO write hole" ;;
	revert)
		patch -s -R -p1 --batch --fuzz=0 -d "$BS_TREE" -i "$BS_PLANT_PATCH" >&2 || return 1
		bs_commit "btrfs: diogap bisect test: fix the partial DIO write hole again" ;;
	esac
}
