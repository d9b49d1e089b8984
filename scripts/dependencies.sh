#!/usr/bin/env bash
# Puts the collection's dependencies (community.docker and the collection it depends on,
# community.library_inventory_filtering_v1) into COLLECTIONS_ROOT.
# Galaxy cannot be reached here, but the 'ansible' package on PyPI bundles community.docker:
# its wheel is downloaded once into .state/cache and the collection extracted from it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
collections_root=$1
version=${2:-12.3.0}
wheel=$STATE_DIR/cache/ansible-$version-py3-none-any.whl
if [ ! -s "$wheel" ]; then
  log "downloading the ansible $version wheel (for community.docker)"
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps "ansible==$version" -d "$STATE_DIR/cache"
fi
[ -f "$collections_root/ansible_collections/community/docker/MANIFEST.json" ] && \
  [ -f "$collections_root/ansible_collections/community/library_inventory_filtering_v1/MANIFEST.json" ] && exit 0
"$VENV/bin/python" - "$wheel" "$collections_root" <<'PY'
import sys
import zipfile

wheel, root = sys.argv[1:3]
prefixes = (
    "ansible_collections/community/docker/",
    "ansible_collections/community/library_inventory_filtering_v1/",
)
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(prefixes):
            archive.extract(name, root)
PY
