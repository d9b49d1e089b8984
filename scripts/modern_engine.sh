#!/usr/bin/env bash
# Debian 13's dockerd (docker.io 26.1) next to the host's engine, for the engine matrix:
#   scripts/modern_engine.sh root                      build (or reuse) the cached trixie root
#   scripts/modern_engine.sh up   [overlay2|containerd|all]   start the engine(s); default all
#   scripts/modern_engine.sh down [overlay2|containerd|all]   stop the engine(s) this checkout started
# Each engine writes `export DOCKER_HOST=...` to .state/engine-debian13-STORE.env.
#
# The root is a debootstrap'd trixie, cached outside the clone and shared read-only by every
# checkout and both stores: whatever an engine writes (data, runtime folder, /tmp) is bound in
# from this checkout, so two engines (or two checkouts) never share state and a CI run never
# changes the cache. Each engine runs after pivot_root (a chroot would let `docker exec` land in
# the host's root) in its own mount namespace and its own network namespace, with no bridge and
# no iptables, so it cannot touch the host engine's network or data. Everything it mounts lives
# in its private mount namespace and goes away with its processes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CACHE_DIR=${DOCKHAND_CACHE_DIR:-/var/cache/dockhand}
SUITE=trixie
VARIANT=minbase
PACKAGES=docker.io,containerd,runc,iptables,busybox-static,ca-certificates
STORES=(overlay2 containerd)
# Keyed by what goes into it, so changing the package list builds a new root.
ROOT_KEY=$(printf '%s\n' "$SUITE" "$VARIANT" "$PACKAGES" "$(uname -m)" | sha256sum | cut -c1-10)
ROOT=$CACHE_DIR/$SUITE-root-$ROOT_KEY
# The name of the netns and of the cgroup parent: unique per checkout and store.
NAME_PREFIX=$(basename "$RUN_DIR")-d13

# The first Debian archive in the machine's own apt sources (deb822 or one-line), else deb.debian.org.
apt_mirror() {
  local uri
  uri=$( {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }'
  } | grep -E '/debian/?$' | head -n 1 || true)
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# Unmounts whatever a killed debootstrap left mounted under $1, then removes it without
# ever crossing into another file system.
remove_partial() {
  local dir=$1 target
  { findmnt -rn -o TARGET | grep -F "$dir/" || true; } | sort -r | while read -r target; do
    umount -l "$target" || true
  done
  rm -rf --one-file-system "$dir"
}

build_root() {
  [ -x "$ROOT/usr/sbin/dockerd" ] && return 0
  [ "$(id -u)" = 0 ] || die "building the $SUITE root needs root"
  mkdir -p "$CACHE_DIR"
  exec 9>"$CACHE_DIR/.build.lock"
  flock -w 900 9 || die "another build of the $SUITE root holds $CACHE_DIR/.build.lock"
  [ -x "$ROOT/usr/sbin/dockerd" ] && return 0
  command -v debootstrap >/dev/null 2>&1 || "$REPO_ROOT/scripts/bootstrap.sh"
  local partial mirror
  # Leftovers of a killed build: with the lock held, no other build is using them.
  for partial in "$CACHE_DIR/.$SUITE-root-$ROOT_KEY".partial.*; do
    if [ -d "$partial" ]; then remove_partial "$partial"; else rm -f "$partial"; fi
  done
  partial=$(mktemp -d "$CACHE_DIR/.$SUITE-root-$ROOT_KEY.partial.XXXXXX")
  mirror=$(apt_mirror)
  log "building the $SUITE root from $mirror into $ROOT (about 600 MB, once per machine)"
  if ! debootstrap --variant="$VARIANT" --include="$PACKAGES" "$SUITE" "$partial" "$mirror" \
      >"$partial.log" 2>&1; then
    tail -n 20 "$partial.log" >&2
    remove_partial "$partial"
    die "debootstrap of $SUITE failed (log above)"
  fi
  [ -x "$partial/usr/sbin/dockerd" ] || die "the $SUITE root has no dockerd"
  mkdir -p "$partial/var/lib/docker"
  chmod 755 "$partial"   # mktemp made it private; it is a root file system
  rm -f "$partial.log"
  # Complete or absent: the rename is the only step that makes the cache visible.
  mv -T "$partial" "$ROOT"
  log "the $SUITE root is ready: $("$ROOT/usr/sbin/dockerd" --version 2>/dev/null || echo docker.io)"
}

engine_dirs() {
  local store=$1
  ENGINE_NAME=debian13-$store
  ENGINE_RUN=$RUN_DIR/d13-$store
  ENGINE_DATA=$STATE_DIR/modern/$store/data
  ENGINE_LOG=$STATE_DIR/modern/$store/dockerd.log
  ENGINE_NETNS=$NAME_PREFIX-$store
  ENGINE_SOCK=$ENGINE_RUN/docker.sock
  ENGINE_PID=$ENGINE_RUN/docker.pid
  ENGINE_ENV=$STATE_DIR/engine-$ENGINE_NAME.env
}

# Runs inside the new mount namespace and the engine's netns; becomes dockerd.
launch() {
  local store=$1
  engine_dirs "$store"
  mount --bind "$ROOT" "$ROOT"
  mount --rbind /proc "$ROOT/proc"
  mount --rbind /sys "$ROOT/sys"
  mount --make-rslave "$ROOT/sys"
  mount --rbind /dev "$ROOT/dev"
  mount --make-rslave "$ROOT/dev"
  mount --bind "$ENGINE_RUN" "$ROOT/run"
  mount --bind "$ENGINE_DATA" "$ROOT/var/lib/docker"
  mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp"
  cd "$ROOT"
  pivot_root . .
  umount -l .
  cd /
  export PATH=/usr/sbin:/usr/bin:/sbin:/bin
  exec dockerd --config-file /run/daemon.json --host unix:///run/docker.sock \
    --pidfile /run/docker.pid --exec-root /run/docker --data-root /var/lib/docker \
    --bridge=none --iptables=false --ip6tables=false --cgroup-parent="$ENGINE_NETNS"
}

up() {
  local store=$1 _
  engine_dirs "$store"
  if [ -s "$ENGINE_PID" ] && engine_answers "unix://$ENGINE_SOCK"; then
    log "$ENGINE_NAME is already up; DOCKER_HOST=unix://$ENGINE_SOCK"
    echo "export DOCKER_HOST=unix://$ENGINE_SOCK" > "$ENGINE_ENV"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "starting $ENGINE_NAME needs root"
  build_root
  down "$store" quiet
  mkdir -p "$ENGINE_RUN" "$ENGINE_DATA"
  if [ "$store" = containerd ]; then
    echo '{"features": {"containerd-snapshotter": true}}' > "$ENGINE_RUN/daemon.json"
  else
    echo '{"storage-driver": "overlay2"}' > "$ENGINE_RUN/daemon.json"
  fi
  ip netns add "$ENGINE_NETNS"
  ip -n "$ENGINE_NETNS" link set lo up
  log "starting $ENGINE_NAME (docker.io from $ROOT, data $ENGINE_DATA, log $ENGINE_LOG)"
  setsid nsenter --net="/run/netns/$ENGINE_NETNS" \
    unshare --mount --propagation private "$BASH" "$0" launch "$store" \
    >"$ENGINE_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if engine_answers "unix://$ENGINE_SOCK"; then
      echo "export DOCKER_HOST=unix://$ENGINE_SOCK" > "$ENGINE_ENV"
      log "$ENGINE_NAME is up (pid $(cat "$ENGINE_PID")); DOCKER_HOST=unix://$ENGINE_SOCK"
      return 0
    fi
    sleep 0.5
  done
  tail -n 20 "$ENGINE_LOG" >&2 || true
  down "$store" quiet
  die "$ENGINE_NAME did not answer within 60 seconds"
}

# PIDs of processes that are ours: in the engine's netns (dockerd, its containerd, the shims)
# or in its cgroup parent (the containers).
our_pids() {
  ip netns pids "$ENGINE_NETNS" 2>/dev/null || true
  cat /sys/fs/cgroup/*/"$ENGINE_NETNS"/*/cgroup.procs /sys/fs/cgroup/"$ENGINE_NETNS"/*/cgroup.procs 2>/dev/null || true
}

down() {
  local store=$1 quiet=${2:-} pid _ pids
  engine_dirs "$store"
  rm -f "$ENGINE_ENV"
  if [ ! -e "/run/netns/$ENGINE_NETNS" ]; then
    [ -n "$quiet" ] || log "$ENGINE_NAME of this checkout is not running; nothing to stop"
    return 0
  fi
  # dockerd stops its containers and its containerd when asked; only then is the rest killed.
  pid=$(cat "$ENGINE_PID" 2>/dev/null || true)
  if [ -n "$pid" ] && our_pids | grep -qx "$pid"; then
    log "stopping $ENGINE_NAME (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  for signal in TERM KILL; do
    pids=$(our_pids | sort -u)
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086 # one argument per PID
    kill -s "$signal" $pids 2>/dev/null || true
    for _ in $(seq 1 20); do [ -z "$(our_pids)" ] && break; sleep 0.5; done
  done
  ip netns del "$ENGINE_NETNS"
  rmdir /sys/fs/cgroup/*/"$ENGINE_NETNS" /sys/fs/cgroup/"$ENGINE_NETNS" 2>/dev/null || true
  # Its mounts died with its mount namespace, so this removes only files.
  rm -rf --one-file-system "$ENGINE_RUN"
}

stores() {
  case "${1:-all}" in
    all) printf '%s\n' "${STORES[@]}" ;;
    overlay2|containerd) printf '%s\n' "$1" ;;
    *) die "unknown store '$1' (overlay2, containerd or all)" ;;
  esac
}

case "${1:-}" in
  root) build_root; echo "$ROOT" ;;
  up|down) for store in $(stores "${2:-all}"); do "$1" "$store"; done ;;
  launch) launch "$2" ;;
  *) die "usage: $0 root | up [overlay2|containerd|all] | down [overlay2|containerd|all]" ;;
esac
