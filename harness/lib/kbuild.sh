# shellcheck shell=bash
# Kernel source handling for harness/build-kernel: resolve --source into an
# identity and a cached tree, patch that tree reversibly. Sourced after
# common.sh, never run.
#
# Cache layout (all under $DIOGAP_CACHE):
#   src/<slot>/tree      the tree we build from (never the user's own tree)
#   src/<slot>/tree/.diogap-o        the O= build directory, shared by every
#                        patch set; a direct child of the tree, so kbuild
#                        names sources by relative paths (srctree=..) and
#                        ccache hits across slots of the same code (the
#                        tarball and a git repo of it, say)
#   src/<slot>/tree/.diogap-kconfig  scratch O= directory for config runs
#   src/<slot>/tree/.diogap-o-arm64-64K, .diogap-kconfig-arm64-64K: the same
#                        for another architecture and page size (KB_OSUFFIX)
#   src/<slot>/state/    backups of files changed by patches (see kb_patch)
#   locks/<slot>.lock    flock: one build per slot at a time
#   src/tarball-ids      memo: "path size mtime sha256" of tarballs
#
# kb_resolve SRC sets:
#   KB_KIND   tar | git | dir
#   KB_PATH   absolute path of the tarball or tree
#   KB_ID     source identity, part of the cache key
#   KB_SLOT   name of the cached tree and build directory
#   KB_DESC   one line for humans (package version, commit subject ...)
#   KB_DIFF   git only: a patch file holding uncommitted changes, or ""

KB_KIND='' KB_PATH='' KB_ID='' KB_SLOT='' KB_DESC='' KB_DIFF=''
# Set by the caller for a build that must not share the x86_64 build and
# config directories (build-kernel --arch arm64: "-arm64-64K").
KB_OSUFFIX=${KB_OSUFFIX:-}

kb_sha() { sha256sum | cut -d' ' -f1; }

# kb_tarball_sha FILE: sha256 of FILE, remembered by (path, size, mtime).
kb_tarball_sha() {
	local f=$1 memo=$DIOGAP_CACHE/src/tarball-ids stamp sha
	stamp="$f $(stat -c '%s %Y' -- "$f") "
	if [[ -f $memo ]]; then
		sha=$(awk -v s="$stamp" 'index($0, s) == 1 { x = $NF } END { print x }' "$memo")
		[[ -n $sha ]] && { echo "$sha"; return; }
	fi
	log "hashing $f"
	sha=$(kb_sha <"$f")
	mkdir -p "${memo%/*}"
	echo "$stamp$sha" >>"$memo"
	echo "$sha"
}

kb_from_tarball() {
	KB_KIND=tar
	KB_PATH=$(realpath -- "$1")
	local sha
	sha=$(kb_tarball_sha "$KB_PATH")
	KB_ID="tarball sha256:$sha"
	KB_SLOT=tar-${sha:0:12}
	KB_DESC=${KB_DESC:-tarball $KB_PATH}
}

# A Debian linux-source-X.Y package: installed if missing, then its tarball.
kb_from_package() {
	local pkg=$1 tarball
	ensure_pkgs "$pkg"
	tarball=/usr/src/$pkg.tar.xz
	[[ -f $tarball ]] || die "$pkg is installed but $tarball is missing"
	KB_DESC="$pkg $(dpkg-query -W -f='${Version}' "$pkg")"
	kb_from_tarball "$tarball"
}

# A git work tree (at its top level): identity is the HEAD commit; tracked
# changes not committed become an extra patch (KB_DIFF) in the key.
kb_from_git() {
	local top=$1 head common status dirty
	# Read-only on the user's repository: no opportunistic index refresh.
	export GIT_OPTIONAL_LOCKS=0
	KB_KIND=git
	KB_PATH=$top
	head=$(git -C "$top" rev-parse --verify HEAD) || die "$top: no HEAD commit"
	common=$(cd "$top" && realpath -- "$(git rev-parse --git-common-dir)")
	KB_ID="git $head"
	KB_SLOT=git-$(printf %s "$common" | kb_sha | cut -c1-12)
	KB_DESC="git $top $(git -C "$top" log -1 --format='%h ("%s")' HEAD)"
	status=$(git -C "$top" status --porcelain)
	dirty=$(grep -v '^??' <<<"$status") || true
	if [[ -n $dirty ]]; then
		KB_DIFF=$(mktemp "${TMPDIR:-/tmp}/dg-worktree.XXXXXX.patch")
		on_exit rm -f -- "$KB_DIFF"
		git -C "$top" -c core.quotePath=false diff --no-ext-diff --no-color --no-renames \
			--src-prefix=a/ --dst-prefix=b/ HEAD >"$KB_DIFF"
		! grep -q '^Binary files ' "$KB_DIFF" ||
			die "$top: uncommitted changes to binary files; commit them or pass them as --patch"
		log "$top has uncommitted changes: building HEAD plus them ($(wc -l <<<"$dirty") files)"
	fi
	if grep -q '^??' <<<"$status"; then
		warn "$top: untracked files are not part of the build"
	fi
}

# An unpacked tree: identity is the listing (path, size, mtime) of its files.
kb_from_dir() {
	local dir=$1 built=''
	KB_KIND=dir
	KB_PATH=$dir
	if [[ -e $dir/.config || -d $dir/include/config || -d $dir/include/generated ]]; then
		built=yes
	elif find "$dir" -path "$dir/.git" -prune -o -name '*.o' -print -quit | grep -q .; then
		built=yes
	fi
	[[ -z $built ]] ||
		die "$dir holds in-tree build output (.config, include/config or *.o): run 'make mrproper' there, or pass a tarball or git tree"
	KB_ID="dir $(find "$dir" -path "$dir/.git" -prune -o -printf '%P\t%s\t%T@\n' | LC_ALL=C sort | kb_sha)"
	KB_SLOT=dir-$(printf %s "$dir" | kb_sha | cut -c1-12)
	KB_DESC="tree $dir"
}

kb_resolve() {
	local src=$1 top
	if [[ -d $src ]]; then
		src=$(realpath -- "$src")
		[[ -f $src/Makefile && -f $src/Kconfig ]] || die "$src: not a kernel source tree (no Makefile and Kconfig)"
		top=$(git -C "$src" rev-parse --show-toplevel 2>/dev/null) || top=''
		if [[ -n $top && $(realpath -- "$top") == "$src" ]]; then
			kb_from_git "$src"
		else
			kb_from_dir "$src"
		fi
	elif [[ -f $src ]]; then
		case $src in
		*.tar | *.tar.gz | *.tgz | *.tar.xz | *.txz | *.tar.bz2 | *.tar.zst) kb_from_tarball "$src" ;;
		*) die "$src: not a tarball (.tar, .tar.gz, .tar.xz, .tar.bz2, .tar.zst)" ;;
		esac
	elif [[ $src =~ ^linux-source-[0-9]+\.[0-9]+$ ]]; then
		kb_from_package "$src"
	else
		die "--source $src: no such file or directory, and not a linux-source-X.Y package name"
	fi
}

# --- the cached tree --------------------------------------------------------

kb_slot_dir() { echo "$DIOGAP_CACHE/src/$KB_SLOT"; }
kb_tree() { echo "$DIOGAP_CACHE/src/$KB_SLOT/tree"; }
kb_odir() { echo "$DIOGAP_CACHE/src/$KB_SLOT/tree/.diogap-o$KB_OSUFFIX"; }
kb_cfgdir() { echo "$DIOGAP_CACHE/src/$KB_SLOT/tree/.diogap-kconfig$KB_OSUFFIX"; }

# kb_lock: take the slot's lock for the rest of the process (children such as
# make inherit it, so an orphaned build still holds it).
kb_lock() {
	local f=$DIOGAP_CACHE/locks/$KB_SLOT.lock
	mkdir -p "${f%/*}"
	exec {kb_lock_fd}>"$f"
	if ! flock -n "$kb_lock_fd"; then
		log "waiting for another build of this source to finish (lock $f)"
		flock "$kb_lock_fd"
	fi
}

kb_prepare_tar() {
	local tree=$1
	[[ -f $tree/.diogap-unpacked ]] && return 0
	log "unpacking $KB_PATH into $tree"
	rm -rf -- "$tree" "$tree.tmp"
	mkdir -p -- "$tree.tmp"
	tar -xf "$KB_PATH" -C "$tree.tmp" --strip-components=1 ||
		die "cannot unpack $KB_PATH"
	touch "$tree.tmp/.diogap-unpacked"
	mv -T -- "$tree.tmp" "$tree"
}

# A private repository whose object store borrows the user's (alternates):
# nothing is written into the user's repository, and moving between commits
# rewrites only the files that differ, so bisect steps build incrementally.
kb_prepare_git() {
	local tree=$1 objects head
	objects=$(cd "$KB_PATH" && realpath -- "$(git rev-parse --git-path objects)")
	head=${KB_ID#git }
	if [[ ! -d $tree/.git ]]; then
		git init -q "$tree"
		git -C "$tree" config gc.auto 0
	fi
	echo "$objects" >"$tree/.git/objects/info/alternates"
	printf '%s\n' /.diogap-o/ /.diogap-kconfig/ '/.diogap-o-*/' '/.diogap-kconfig-*/' \
		>"$tree/.git/info/exclude"
	log "checking out $head in $tree"
	git -C "$tree" read-tree --reset -u "$head" || die "cannot check out $head in $tree"
	git -C "$tree" update-ref --no-deref HEAD "$head"
	git -C "$tree" clean -q -f -d
}

kb_prepare_dir() {
	local tree=$1
	ensure_pkgs rsync
	log "mirroring $KB_PATH into $tree"
	mkdir -p -- "$tree"
	rsync -a --delete --exclude=/.git --exclude=/.diogap-o/ --exclude=/.diogap-kconfig/ \
		--exclude='/.diogap-o-*/' --exclude='/.diogap-kconfig-*/' \
		"$KB_PATH/" "$tree/" || die "rsync of $KB_PATH failed"
}

# kb_prepare: bring the cached tree to the source's state (slot lock held).
kb_prepare() {
	local tree state
	tree=$(kb_tree)
	state=$(kb_slot_dir)/state
	kb_unpatch # a run killed with its patches applied
	case $KB_KIND in
	tar) kb_prepare_tar "$tree" ;;
	git) kb_prepare_git "$tree" ;;
	dir) kb_prepare_dir "$tree" ;;
	esac
	# Files a patch changed last time: a sync may have given them back an
	# old mtime, older than objects built from the patched text. Make them
	# newer so make rebuilds what depends on them.
	if [[ -f $state/touch ]]; then
		(cd "$tree" && xargs -d '\n' -r touch -c -- <"$state/touch")
		rm -f -- "$state/touch"
	fi
	[[ -f $tree/scripts/kconfig/merge_config.sh ]] ||
		die "$tree: not a kernel tree (no scripts/kconfig/merge_config.sh)"
}

# --- patches ----------------------------------------------------------------
# Before a patch touches a file, the file is saved in state/orig/ (or listed
# as absent), so kb_unpatch restores the tree exactly, also after a failed
# or half-applied patch, and also in the next run if this one was killed.

kb_patch_opts=(-p1 --batch --forward --fuzz=0 --no-backup-if-mismatch --reject-file=-)

# kb_patch PATCH LOG: apply PATCH to the cached tree, or die naming LOG.
kb_patch() {
	local p=$1 logf=$2 tree state files f
	tree=$(kb_tree)
	state=$(kb_slot_dir)/state
	mkdir -p -- "$state/orig"
	echo "== patch --dry-run $p" >>"$logf"
	if ! files=$(patch "${kb_patch_opts[@]}" --dry-run -d "$tree" -i "$p" 2>&1); then
		printf '%s\n' "$files" >>"$logf"
		die "patch does not apply: $p (to $KB_DESC); log: $logf"
	fi
	printf '%s\n' "$files" >>"$logf"
	while IFS= read -r f; do
		f=${f#checking file }
		grep -qxF -- "$f" "$state/manifest" 2>/dev/null && continue
		if [[ -e $tree/$f ]]; then
			mkdir -p -- "$state/orig/$(dirname -- "$f")"
			cp -p -- "$tree/$f" "$state/orig/$f"
		fi
		printf '%s\n' "$f" >>"$state/manifest"
	done < <(grep '^checking file ' <<<"$files")
	echo "== patch $p" >>"$logf"
	patch "${kb_patch_opts[@]}" -d "$tree" -i "$p" >>"$logf" 2>&1 ||
		die "patch failed after a clean dry run: $p; log: $logf"
}

# kb_unpatch: put back every file saved by kb_patch (slot lock held).
kb_unpatch() {
	local tree state f
	tree=$(kb_tree)
	state=$(kb_slot_dir)/state
	[[ -f $state/manifest ]] || return 0
	while IFS= read -r f; do
		if [[ -e $state/orig/$f ]]; then
			cp -- "$state/orig/$f" "$tree/$f"
		else
			rm -f -- "${tree:?}/$f"
		fi
		printf '%s\n' "$f" >>"$state/touch"
	done <"$state/manifest"
	rm -rf -- "$state/orig" "$state/manifest"
}
