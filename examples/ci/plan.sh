#!/usr/bin/env bash
# Pull-request job: make the plan, save it, render it for the comment, print its digest.
# Extra arguments go to orgform (the test suite passes --sandbox).
# Writes: plan.json (the saved plan, applied later as is), plan.md (the comment body).
set -euo pipefail
ORGFORM="${ORGFORM:-orgform}"

set +e
"$ORGFORM" plan --out plan.json --format markdown --detailed-exitcode "$@" > plan.md
status=$?
set -e
case "$status" in
  0) echo "No changes." ;;
  2) echo "Changes present: review plan.md." ;;
  *) echo "orgform plan failed (exit $status)" >&2; exit "$status" ;;
esac
# The digest names exactly this plan; the apply job prints it too, so a reviewer can match them.
digest=$(sha256sum plan.json | cut -c1-16)
echo "plan digest: $digest"
printf '\n<sub>plan digest `%s`</sub>\n' "$digest" >> plan.md
