#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The blobs a distribution registry's filesystem storage holds, read from disk.

  blob_files.py --storage DIR
      prints {"DIGEST": {"size": BYTES, "throwaway": BOOL}, ...} for every blob data file under the
      registry's rootdirectory DIR. "throwaway" marks the throw-away manifests dockhand.registry
      pushes to remove a tag safely, and their shared config, so that a test can tell them from
      the images it pushed.
"""

from __future__ import annotations

import argparse
import json
import os

BLOBS = os.path.join("docker", "registry", "v2", "blobs")
# registry_delete.THROWAWAY_ANNOTATION and THROWAWAY_CONFIG of the collection.
THROWAWAY_ANNOTATION = b"io.github.dockhand.registry.throwaway"
THROWAWAY_CONFIG = b'{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}'


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", required=True, help="the registry's storage rootdirectory")
    args = parser.parse_args()
    found = {}
    root = os.path.join(args.storage, BLOBS)
    for folder, _subfolders, files in os.walk(root):
        if "data" not in files:
            continue
        algorithm = os.path.relpath(folder, root).split(os.sep)[0]
        path = os.path.join(folder, "data")
        with open(path, "rb") as handle:
            content = handle.read()
        found["%s:%s" % (algorithm, os.path.basename(folder))] = dict(
            size=len(content), throwaway=THROWAWAY_ANNOTATION in content or content == THROWAWAY_CONFIG)
    print(json.dumps(found, sort_keys=True))


if __name__ == "__main__":
    main()
