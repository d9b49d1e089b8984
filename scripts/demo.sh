#!/usr/bin/env bash
# `make demo`: the seed's whole story on the local Docker engine with playbooks/demo.yml.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$REPO_ROOT/scripts/bootstrap.sh"
"$REPO_ROOT/scripts/engine.sh"
. "$ENGINE_ENV_FILE"; export DOCKER_HOST
"$REPO_ROOT/scripts/build_images.sh"
collections=$("$REPO_ROOT/scripts/collections.sh")
cd "$REPO_ROOT"
ANSIBLE_COLLECTIONS_PATH=$collections PATH="$VENV/bin:$PATH" \
  "$VENV/bin/ansible-playbook" -i localhost, -c local playbooks/demo.yml "$@"
