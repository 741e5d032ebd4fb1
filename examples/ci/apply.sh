#!/usr/bin/env bash
# Main-branch job (copy to ci/apply.sh): plan again from the merged specs and the shared state,
# and apply that plan only if its digest is the reviewed one; otherwise orgform refuses, says
# both digests, prints the plan it would have applied, and creates nothing.
#
# The reviewed digest, in this order:
#   ORGFORM_REVIEWED_DIGEST   the digest itself (a person re-running the job by hand after
#                             reviewing the plan a refused run printed);
#   ORGFORM_REVIEWED_COMMENT  a file holding the pull request's plan comment, as plan.sh wrote it
#                             and the workflow fetched it back: its "Plan digest: `...`" line.
# Neither: nothing was reviewed, and nothing is applied. Extra arguments go to orgform.
set -euo pipefail
ORGFORM="${ORGFORM:-orgform}"
MAX_CREATES="${ORGFORM_MAX_CREATES:-50}"

# A file state would vanish with the runner: insist on the shared one (examples/ci/state.toml).
listed=$("$ORGFORM" secrets --format json)
grep -q '"\[state\] url"' <<<"$listed" || {
  echo "the specs keep no [state] table with a PostgreSQL url: copy examples/ci/state.toml to specs/state.toml" >&2
  exit 1
}

reviewed="${ORGFORM_REVIEWED_DIGEST:-}"
if [ -z "$reviewed" ] && [ -n "${ORGFORM_REVIEWED_COMMENT:-}" ]; then
  reviewed=$(sed -n 's/^Plan digest: `\([0-9a-f]\{64\}\)`.*/\1/p' "$ORGFORM_REVIEWED_COMMENT" | head -n 1)
fi
if [ -z "$reviewed" ]; then
  echo "no reviewed plan: set ORGFORM_REVIEWED_DIGEST, or ORGFORM_REVIEWED_COMMENT to a plan comment with its \"Plan digest\" line; nothing was applied" >&2
  exit 1
fi
echo "reviewed digest: $reviewed"
"$ORGFORM" apply --auto-approve --max-creates "$MAX_CREATES" --expect-digest "$reviewed" "$@"
