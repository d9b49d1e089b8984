#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which listed tags of a repository resolve, on a test bed registry (plain http on 127.0.0.1).

  tag_health.py --registry 127.0.0.1:PORT --repository REPO
      prints {"tags": [...], "dangling": [...], "throwaway": [...]}: every listed tag, those
      whose HEAD answers 404, and those on a throw-away manifest of dockhand.registry.
  tag_health.py ... --half-delete TAG [TAG ...] --storage DIR
      leaves TAGs dangling the way distribution 2.x does when a manifest DELETE fails half way
      (the manifest's revision link is gone, the tags are not): removes the revision folders of
      their digests from the registry's filesystem storage DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import requests

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
THROWAWAY_ANNOTATION = "io.github.dockhand.registry.throwaway"
TIMEOUT = 30
MAX_PAGES = 100


def listed_tags(base, repository):
    tags = []
    url = "%s/v2/%s/tags/list?n=1000" % (base, repository)
    for _page in range(MAX_PAGES):
        answer = requests.get(url, timeout=TIMEOUT)
        if answer.status_code == 404:
            return tags
        answer.raise_for_status()
        tags.extend(answer.json().get("tags") or [])
        link = answer.headers.get("Link")
        if not link:
            return tags
        url = base + link.split(";")[0].strip("<> ")
    raise SystemExit("more than %d pages of tags" % MAX_PAGES)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--repository", required=True)
    parser.add_argument("--half-delete", nargs="*", default=[])
    parser.add_argument("--storage")
    args = parser.parse_args()
    if not args.registry.startswith("127.0.0.1:"):
        parser.error("test bed registries on 127.0.0.1 only")
    base = "http://" + args.registry
    manifests = "%s/v2/%s/manifests/" % (base, args.repository)
    for tag in args.half_delete:
        answer = requests.head(manifests + tag, headers={"Accept": ACCEPT}, timeout=TIMEOUT)
        answer.raise_for_status()
        algorithm, hexdigest = answer.headers["Docker-Content-Digest"].split(":", 1)
        folder = os.path.join(args.storage, "docker", "registry", "v2", "repositories", args.repository,
                              "_manifests", "revisions", algorithm, hexdigest)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
    tags = sorted(listed_tags(base, args.repository))
    dangling = []
    throwaway = []
    for tag in tags:
        answer = requests.get(manifests + tag, headers={"Accept": ACCEPT}, timeout=TIMEOUT)
        if answer.status_code == 404:
            dangling.append(tag)
            continue
        answer.raise_for_status()
        if THROWAWAY_ANNOTATION in (answer.json().get("annotations") or {}):
            throwaway.append(tag)
    json.dump({"tags": tags, "dangling": dangling, "throwaway": throwaway}, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
