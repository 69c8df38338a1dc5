#!/usr/bin/env bash
# Lint: every shell script of the harness is clean under shellcheck, and
# every reproducer has the header block the harness parses.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"

lint_shell() {
	local f out
	while read -r f; do
		if out=$(cd "$DIOGAP_ROOT" && shellcheck -x "$f" 2>&1); then
			ok "shellcheck $f"
		else
			not_ok "shellcheck $f" "$(head -n 5 <<<"$out" | tr '\n' ' ')"
		fi
	done < <(cd "$DIOGAP_ROOT" && grep -rlE '^#!.*(ba)?sh|^# shellcheck shell=' harness .ci | sort)
}

lint_headers() {
	local src key
	for src in "$DIOGAP_ROOT"/repro/*.c; do
		for key in Fixes Params May-hang; do
			if grep -qE "^ \* $key: ." "$src"; then
				ok "$(basename "$src") has $key:"
			else
				not_ok "$(basename "$src") has $key:"
			fi
		done
	done
}

main() {
	ensure_pkgs shellcheck
	lint_shell
	lint_headers
	t_done
}

main "$@"
