#!/usr/bin/env bash
# Main-branch job: apply exactly the plan that was reviewed (plan.json), or refuse it if the
# specs or the state moved on since. Extra arguments go to orgform.
set -euo pipefail
ORGFORM="${ORGFORM:-orgform}"
MAX_CREATES="${ORGFORM_MAX_CREATES:-50}"

test -f plan.json || { echo "plan.json is missing: run plan.sh first" >&2; exit 1; }
echo "plan digest: $(sha256sum plan.json | cut -c1-16)"
"$ORGFORM" apply plan.json --auto-approve --max-creates "$MAX_CREATES" "$@"
