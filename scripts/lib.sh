# shellcheck shell=bash disable=SC2034
# Common settings for the project's scripts; sourced, never run.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${DOCKHAND_STATE_DIR:-$REPO_ROOT/.state}
VENV=${DOCKHAND_VENV:-$REPO_ROOT/.venv}
ENGINE_ENV_FILE=$STATE_DIR/engine.env
# Unix socket paths are limited to 108 bytes, so the private engine's runtime
# folder lives under /run with a name derived from the checkout path.
RUN_DIR=/run/dockhand-$(printf '%s' "$REPO_ROOT" | sha256sum | cut -c1-10)
mkdir -p "$STATE_DIR"

log() { printf '[dockhand] %s\n' "$*" >&2; }
die() { printf '[dockhand] ERROR: %s\n' "$*" >&2; exit 1; }

# True when a Docker engine answers a ping at the DOCKER_HOST value $1 within 5 seconds.
engine_answers() {
  DOCKER_HOST=$1 "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
import os, sys, docker
try:
    docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="auto", timeout=5).ping()
except Exception:
    sys.exit(1)
PY
}

# prepare_venv VENV REQUIREMENTS...: a venv at VENV with the requirement files installed,
# pinned by tests/constraints.txt; pip runs only when one of those files changed.
prepare_venv() {
  local venv=$1; shift
  local constraints=$REPO_ROOT/tests/constraints.txt
  local stamp=$venv/.requirements.sha256 want file
  local args=()
  want=$(cat "$@" "$constraints" | sha256sum | cut -c1-64)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "venv at $venv is up to date"
    return 0
  fi
  log "preparing the venv at $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return 1
  for file in "$@"; do args+=(-r "$file"); done
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${args[@]}" -c "$constraints" || return 1
  echo "$want" > "$stamp"
}
