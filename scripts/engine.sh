#!/usr/bin/env bash
# Makes sure a Docker engine answers and writes its DOCKER_HOST to .state/engine.env.
#   scripts/engine.sh        use DOCKER_HOST or the default socket if an engine answers there,
#                            otherwise start a private dockerd owned by this checkout
#   scripts/engine.sh stop   stop the private dockerd, and only if this checkout started it
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PRIVATE_SOCK=$RUN_DIR/docker.sock
PRIVATE_PID=$RUN_DIR/docker.pid
DATA_ROOT=$STATE_DIR/docker/data

if [ "${1:-}" = stop ]; then
  if [ -s "$PRIVATE_PID" ] && kill -0 "$(cat "$PRIVATE_PID")" 2>/dev/null; then
    pid=$(cat "$PRIVATE_PID")
    log "stopping the private dockerd (pid $pid) this checkout started"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  else
    log "no private dockerd of this checkout is running; nothing to stop"
  fi
  rm -f "$ENGINE_ENV_FILE"
  exit 0
fi

for candidate in "${DOCKER_HOST:-}" unix:///var/run/docker.sock "unix://$PRIVATE_SOCK"; do
  [ -n "$candidate" ] || continue
  if engine_answers "$candidate"; then
    log "using the Docker engine that answers at $candidate"
    echo "export DOCKER_HOST=$candidate" > "$ENGINE_ENV_FILE"
    exit 0
  fi
done

[ "$(id -u)" = 0 ] || die "no Docker engine answers and starting a private one needs root; set DOCKER_HOST"
command -v dockerd >/dev/null 2>&1 || die "dockerd is missing; run scripts/bootstrap.sh first"
mkdir -p "$RUN_DIR" "$DATA_ROOT"
log "no engine answers: starting a private dockerd (data $DATA_ROOT, socket $PRIVATE_SOCK, log $STATE_DIR/dockerd.log)"
setsid dockerd --data-root "$DATA_ROOT" --exec-root "$RUN_DIR/exec" \
  -H "unix://$PRIVATE_SOCK" --pidfile "$PRIVATE_PID" >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 1 120); do
  if engine_answers "unix://$PRIVATE_SOCK"; then
    log "private dockerd is up (pid $(cat "$PRIVATE_PID")); DOCKER_HOST=unix://$PRIVATE_SOCK"
    echo "export DOCKER_HOST=unix://$PRIVATE_SOCK" > "$ENGINE_ENV_FILE"
    exit 0
  fi
  sleep 0.5
done
tail -n 20 "$STATE_DIR/dockerd.log" >&2 || true
die "the private dockerd did not answer within 60 seconds"
