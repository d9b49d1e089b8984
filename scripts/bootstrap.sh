#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian/Ubuntu machine: system
# packages (only the missing ones, only as root) and the Python venv.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_packages=()
command -v dockerd >/dev/null 2>&1 || need_packages+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || need_packages+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need_packages+=(skopeo)
{ ldd /bin/busybox 2>&1 || true; } | grep -q 'not a dynamic' || need_packages+=(busybox-static)
command -v openssl >/dev/null 2>&1 || need_packages+=(openssl)
command -v shellcheck >/dev/null 2>&1 || need_packages+=(shellcheck)
[ -x /usr/bin/time ] || need_packages+=(time)
command -v redis-server >/dev/null 2>&1 || need_packages+=(redis-server)
[ -x /usr/sbin/nginx ] || need_packages+=(nginx)
if [ ${#need_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${need_packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
  else
    die "missing system packages (${need_packages[*]}); install them or run as root on Debian/Ubuntu"
  fi
fi

stamp=$VENV/.requirements.sha256
want=$(cat "$REPO_ROOT/requirements.txt" "$REPO_ROOT/tests/requirements-dev.txt" "$REPO_ROOT/tests/constraints.txt" | sha256sum | cut -c1-64)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "preparing the venv at $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -r "$REPO_ROOT/requirements.txt" -r "$REPO_ROOT/tests/requirements-dev.txt" \
    -c "$REPO_ROOT/tests/constraints.txt"
  echo "$want" > "$stamp"
else
  log "venv at $VENV is up to date"
fi
