#!/usr/bin/env bash
# Lint: every shell script of the harness is clean under shellcheck, and
# every reproducer has the header block the harness parses.
set -euo pipefail

# shellcheck source=harness/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=harness/tests/lib.sh
. "$DIOGAP_ROOT/harness/tests/lib.sh"
# shellcheck source=harness/lib/repro-meta.sh
. "$DIOGAP_ROOT/harness/lib/repro-meta.sh"

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

# lint_headers: every reproducer's metadata table names what a bug report
# and the sweeps need: a fix (or a note why there is none), its parameters.
lint_headers() {
	local src r meta
	for src in "$DIOGAP_ROOT"/repro/*.c; do
		r=$(basename "$src" .c)
		if ! meta=$(repro_meta "$r" 2>&1); then
			not_ok "$r --describe --json" "$meta"
			continue
		fi
		check "$r --describe --json: a fix, or a note why none" \
			jq -e '(.fixes | length > 0) or (.note | type == "string")' <<<"$meta"
		check "$r --describe --json: parameters, may_hang" \
			jq -e '(.params | length > 0) and (.may_hang | type == "boolean")' <<<"$meta"
		check "$r --describe --json: every fix is 12 hex digits and a subject" \
			jq -e 'all(.fixes[]; (.sha | test("^[0-9a-f]{12}$")) and (.subject | length > 0))' <<<"$meta"
	done
}

main() {
	ensure_pkgs shellcheck
	lint_shell
	lint_headers
	t_done
}

main "$@"
