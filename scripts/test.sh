#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, venv, a Docker engine,
# the local images, the registry test bed, then ansible-test sanity, units and
# integration, and the benchmark smoke run. Stops only what it started.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT" || exit 1

"$REPO_ROOT/scripts/bootstrap.sh" || die "bootstrap failed"
"$REPO_ROOT/scripts/engine.sh" || die "no Docker engine"
. "$ENGINE_ENV_FILE"; export DOCKER_HOST
"$REPO_ROOT/scripts/build_images.sh" || die "building the local images failed"

cleanup() {
  "$VENV/bin/python" "$REPO_ROOT/tests/testbed/testbed.py" down || true
  [ -n "${DOCKHAND_KEEP_ENGINE:-}" ] || "$REPO_ROOT/scripts/engine.sh" stop || true
}
trap cleanup EXIT
"$VENV/bin/python" "$REPO_ROOT/tests/testbed/testbed.py" up || die "the registry test bed did not start"

passed=0
failed=0
failed_names=()
stage() {
  local name=$1; shift
  log "=== $name: $*"
  local started=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); log "=== $name passed in $((SECONDS - started))s"
  else
    failed=$((failed + 1)); failed_names+=("$name"); log "=== $name FAILED after $((SECONDS - started))s"
  fi
}

stage lint scripts/lint.sh
stage sanity scripts/ansible-test.sh sanity --python 3.11 --requirements --color no
stage units scripts/ansible-test.sh units --python 3.11 --requirements --color no
stage integration scripts/ansible-test.sh integration --python 3.11 --local --color no
if [ -f benchmarks/run.py ]; then
  stage bench-smoke "$VENV/bin/python" benchmarks/run.py --smoke
fi

trap - EXIT
cleanup
# The summary comes last so that it is the run's closing line.
[ $failed -eq 0 ] || log "failed stages: ${failed_names[*]}"
echo "stages: $passed passed, $failed failed"
[ $failed -eq 0 ]
