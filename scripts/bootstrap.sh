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
# For the Debian 13 engines of the test matrix (scripts/modern_engine.sh).
command -v debootstrap >/dev/null 2>&1 || need_packages+=(debootstrap)
command -v ip >/dev/null 2>&1 || need_packages+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need_packages+=(util-linux)
command -v redis-server >/dev/null 2>&1 || need_packages+=(redis-server)
[ -x /usr/sbin/nginx ] || need_packages+=(nginx)
if [ ${#need_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${need_packages[*]}"
    # redis-server and nginx are started by the tests on 127.0.0.1 only: keep apt from starting
    # the system services (port 80, 6379 on every address) unless the machine already has a policy.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\n# written by dockhand.registry scripts/bootstrap.sh for one apt-get run\nexit 101\n' > "$policy"
      chmod 755 "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
  else
    die "missing system packages (${need_packages[*]}); install them or run as root on Debian/Ubuntu"
  fi
fi

prepare_venv "$VENV" "$REPO_ROOT/requirements.txt" "$REPO_ROOT/tests/requirements-dev.txt"
