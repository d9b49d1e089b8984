#!/usr/bin/env bash
# Builds the local images the demo and the tests use, since nothing can be pulled:
#   dockhand-test/busybox:latest  a busybox-static root filesystem
#   dockhand-test/registry:2      a registry:2-compatible image from Debian's docker-registry binary
# Images that already exist are left alone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# A DOCKER_HOST given by the caller (an engine of the matrix) wins over the host engine.
[ -z "${DOCKER_HOST:-}" ] && [ -f "$ENGINE_ENV_FILE" ] && . "$ENGINE_ENV_FILE"
export DOCKER_HOST

BUSYBOX_IMAGE=${DOCKHAND_BUSYBOX_IMAGE:-dockhand-test/busybox:latest}
REGISTRY_IMAGE=${DOCKHAND_REGISTRY_IMAGE:-dockhand-test/registry:2}

busybox_rootfs() {
  local root=$1
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root" "$root/var"
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh ls cat echo sleep mkdir touch rm cp mv date wget du find grep sed head tail test true false env id; do
    ln -sf busybox "$root/bin/$applet"
  done
  chmod 1777 "$root/tmp"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if image_exists "$BUSYBOX_IMAGE"; then
  log "$BUSYBOX_IMAGE already exists"
else
  busybox_rootfs "$work/busybox"
  tar -C "$work/busybox" -c . | docker import -c 'CMD ["sh"]' - "$BUSYBOX_IMAGE" >/dev/null
  log "built $BUSYBOX_IMAGE"
fi

if image_exists "$REGISTRY_IMAGE"; then
  log "$REGISTRY_IMAGE already exists"
else
  root=$work/registry
  busybox_rootfs "$root"
  cp /usr/bin/docker-registry "$root/bin/registry"
  # The binary is dynamically linked: carry its loader and libc along.
  for lib in $(ldd /usr/bin/docker-registry | grep -oE '/[^ ]+\.so[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  mkdir -p "$root/etc/docker/registry" "$root/var/lib/registry"
  cat > "$root/etc/docker/registry/config.yml" <<'YML'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YML
  tar -C "$root" -c . | docker import \
    -c 'ENTRYPOINT ["registry"]' -c 'CMD ["serve", "/etc/docker/registry/config.yml"]' \
    -c 'EXPOSE 5000' -c 'VOLUME ["/var/lib/registry"]' - "$REGISTRY_IMAGE" >/dev/null
  log "built $REGISTRY_IMAGE from $(docker-registry --version 2>/dev/null | head -n1)"
fi
