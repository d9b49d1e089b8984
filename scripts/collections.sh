#!/usr/bin/env bash
# Prepares .state/collections: this checkout linked in as dockhand.registry, and
# community.docker beside it, so ansible-playbook finds both. Prints the path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$STATE_DIR/collections
mkdir -p "$root/ansible_collections/dockhand"
ln -sfn "$REPO_ROOT" "$root/ansible_collections/dockhand/registry"
"$REPO_ROOT/scripts/dependencies.sh" "$root" >&2
echo "$root"
