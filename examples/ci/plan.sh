#!/usr/bin/env bash
# Pull-request job (copy to ci/plan.sh): make the plan against the shared state and the real
# providers, save it, and render it as the pull request's comment, which shows its digest.
# Extra arguments go to orgform. Run from the repository's root, which holds specs/.
# Writes: plan.md (the comment body: the plan and "Plan digest: `...`"), plan.json (the saved
# plan, kept as the job's artifact for the record), plan.digest (the digest alone).
set -euo pipefail
ORGFORM="${ORGFORM:-orgform}"

# A file state would vanish with the runner: insist on the shared one (examples/ci/state.toml).
listed=$("$ORGFORM" secrets --format json)
grep -q '"\[state\] url"' <<<"$listed" || {
  echo "the specs keep no [state] table with a PostgreSQL url: copy examples/ci/state.toml to specs/state.toml" >&2
  exit 1
}

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
# The digest is over what the plan says, not when it was made: the plan made again on main
# after the merge has the same one exactly when it would do the same, and apply.sh refuses any
# other.
sed -n 's/^Saved the plan to .* (digest \([0-9a-f]*\)).*/\1/p' plan.log > plan.digest
echo "plan digest: $(cat plan.digest)"
