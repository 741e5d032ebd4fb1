#!/usr/bin/env bash
# Main-branch job: apply exactly the plan that was reviewed (plan.json), or refuse it if the
# specs or the state moved on since, or if its digest is not the reviewed one
# (ORGFORM_REVIEWED_DIGEST, as the pull request's comment shows it; default: plan.digest).
# Extra arguments go to orgform.
set -euo pipefail
ORGFORM="${ORGFORM:-orgform}"
MAX_CREATES="${ORGFORM_MAX_CREATES:-50}"

test -f plan.json || { echo "plan.json is missing: run plan.sh first" >&2; exit 1; }
reviewed="${ORGFORM_REVIEWED_DIGEST:-$(cat plan.digest)}"
echo "plan digest: $reviewed"
"$ORGFORM" apply plan.json --auto-approve --max-creates "$MAX_CREATES" --expect-digest "$reviewed" "$@"
