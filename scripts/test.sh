#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, venv, a Docker engine,
# the local images, the registry test bed, then ansible-test sanity, units and
# integration, and the benchmark smoke run. Stops only what it started.
#
# The engine matrix: the engine-module targets and the demo's engine round trip run on
# every engine, one engine at a time: the host's engine, then Debian 13's docker.io with the
# overlay2 graph driver and with the containerd image store (scripts/modern_engine.sh).
# The registry targets need no particular engine and run once, on the host's engine.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT" || exit 1

"$REPO_ROOT/scripts/bootstrap.sh" || die "bootstrap failed"
"$REPO_ROOT/scripts/engine.sh" || die "no Docker engine"
. "$ENGINE_ENV_FILE"; export DOCKER_HOST
"$REPO_ROOT/scripts/build_images.sh" || die "building the local images failed"

ENGINE_TARGETS=(image_archive image_commit)
MODERN_ENGINES=(debian13-overlay2 debian13-containerd)

cleanup() {
  "$VENV/bin/python" "$REPO_ROOT/tests/testbed/testbed.py" down || true
  [ -n "${DOCKHAND_KEEP_ENGINE:-}" ] || "$REPO_ROOT/scripts/modern_engine.sh" down all || true
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

# Runs "$@" with DOCKER_HOST set to the engine $1 of MODERN_ENGINES.
on_engine() {
  local engine=$1; shift
  [ -f "$STATE_DIR/engine-$engine.env" ] || { log "$engine is not running"; return 1; }
  # shellcheck source=/dev/null
  ( . "$STATE_DIR/engine-$engine.env"; export DOCKER_HOST; "$@" )
}

# The demo's commit/save/load/export/import round trip, without its registry (the modern
# engines have no container network to publish a port on).
demo_round_trip() {
  ANSIBLE_COLLECTIONS_PATH=$collections PATH="$VENV/bin:$PATH" "$VENV/bin/ansible-playbook" \
    -i localhost, -c local playbooks/demo.yml -e demo_registry=false
}

stage lint scripts/lint.sh
stage sanity scripts/ansible-test.sh sanity --python 3.11 --requirements --color no
stage units scripts/ansible-test.sh units --python 3.11 --requirements --color no
stage integration-host scripts/ansible-test.sh integration --python 3.11 --local --color no
collections=$("$REPO_ROOT/scripts/collections.sh")
stage demo-round-trip-host demo_round_trip
for engine in "${MODERN_ENGINES[@]}"; do
  stage "engine-$engine" "$REPO_ROOT/scripts/modern_engine.sh" up "${engine#debian13-}"
  stage "images-$engine" on_engine "$engine" "$REPO_ROOT/scripts/build_images.sh"
  stage "integration-$engine" on_engine "$engine" \
    scripts/ansible-test.sh integration --python 3.11 --local --color no --continue-on-error "${ENGINE_TARGETS[@]}"
  stage "demo-round-trip-$engine" on_engine "$engine" demo_round_trip
  # One engine at a time: this one's work is done.
  [ -n "${DOCKHAND_KEEP_ENGINE:-}" ] || "$REPO_ROOT/scripts/modern_engine.sh" down "${engine#debian13-}" || true
done
if [ -f benchmarks/run.py ]; then
  stage bench-smoke "$VENV/bin/python" benchmarks/run.py --smoke
fi

trap - EXIT
cleanup
# The summary comes last so that it is the run's closing line.
[ $failed -eq 0 ] || log "failed stages: ${failed_names[*]}"
echo "stages: $passed passed, $failed failed"
[ $failed -eq 0 ]
