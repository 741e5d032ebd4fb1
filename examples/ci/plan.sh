#!/usr/bin/env bash
# Pull-request job: make the plan, save it, render it for the comment, print its digest.
# Extra arguments go to orgform (the test suite passes --sandbox).
# Writes: plan.json (the saved plan, applied later as is), plan.md (the comment body, which
# shows the plan's digest), plan.digest (the digest alone, for the apply job to hold to).
set -euo pipefail
ORGFORM="${ORGFORM:-orgform}"

set +e
"$ORGFORM" plan --out plan.json --format markdown --detailed-exitcode "$@" > plan.md 2> plan.log
status=$?
set -e
cat plan.log >&2
case "$status" in
  0) echo "No changes." ;;
  2) echo "Changes present: review plan.md." ;;
  *) echo "orgform plan failed (exit $status)" >&2; exit "$status" ;;
esac
# The digest is over what the plan says, not when it was made: the same plan made again on
# main after the merge has the same one, and the apply job refuses any other.
sed -n 's/^Saved the plan to .* (digest \([0-9a-f]*\)).*/\1/p' plan.log > plan.digest
echo "plan digest: $(cat plan.digest)"
