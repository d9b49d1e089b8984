#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Floor for registry retention: the fewest HTTP requests that do the job safely.

GET the tag list, HEAD every tag's manifest (a tag may only go when no kept
tag shares its digest, so every digest must be known), then DELETE each
doomed digest once. HEADs and DELETEs run over 8 keep-alive connections.

With --untag, for a registry that deletes single tags (OCI tag delete,
distribution v3): GET the tag list, then DELETE each doomed tag by name. No
HEAD is needed, since a tag delete takes nothing but that tag.
Plain http on loopback only; every request has a timeout.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import requests

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
CONNECTIONS = 8
TIMEOUT = 60
MAX_PAGES = 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--registry", required=True, help="127.0.0.1:PORT (plain http)")
    parser.add_argument("--repository", required=True)
    parser.add_argument("--keep", action="append", default=[], help="regex of tags to keep (repeatable)")
    parser.add_argument("--keep-last", type=int, default=None,
                        help="keep the N newest tags by image creation time (GETs manifests and configs)")
    parser.add_argument("--untag", action="store_true",
                        help="DELETE the doomed tags by name (a registry with tag delete) instead of their digests")
    args = parser.parse_args()
    if args.untag and args.keep_last is not None:
        parser.error("--untag goes with --keep only")
    if not args.registry.startswith("127.0.0.1:"):
        parser.error("loopback registries only")
    base = "http://%s/v2/%s" % (args.registry, args.repository)
    local = threading.local()

    def session():
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    tags = []
    url = base + "/tags/list?n=1000"
    for _page in range(MAX_PAGES):
        resp = session().get(url, timeout=TIMEOUT)
        resp.raise_for_status()
        tags.extend(resp.json().get("tags") or [])
        link = resp.headers.get("Link")
        if not link:
            break
        url = urljoin(url, link.split(";")[0].strip("<> "))

    def head(tag):
        resp = session().head("%s/manifests/%s" % (base, tag), headers={"Accept": ACCEPT}, timeout=TIMEOUT)
        resp.raise_for_status()
        return resp.headers["Docker-Content-Digest"]

    def created(tag):
        resp = session().get("%s/manifests/%s" % (base, tag), headers={"Accept": ACCEPT}, timeout=TIMEOUT)
        resp.raise_for_status()
        manifest = resp.json()
        config = session().get("%s/blobs/%s" % (base, manifest["config"]["digest"]), timeout=TIMEOUT)
        config.raise_for_status()
        return resp.headers["Docker-Content-Digest"], config.json().get("created", "")

    keep_patterns = [re.compile(pattern) for pattern in args.keep]
    if args.untag:
        doomed_tags = [tag for tag in tags if not any(p.search(tag) for p in keep_patterns)]

        def untag(tag):
            resp = session().delete("%s/manifests/%s" % (base, tag), timeout=TIMEOUT)
            resp.raise_for_status()

        with ThreadPoolExecutor(CONNECTIONS) as pool:
            list(pool.map(untag, doomed_tags))
        print("deleted %d tags, kept %d tags" % (len(doomed_tags), len(tags) - len(doomed_tags)))
        return 0
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        if args.keep_last is None:
            digests = dict(zip(tags, pool.map(head, tags)))
            kept = {tag for tag in tags if any(p.search(tag) for p in keep_patterns)}
        else:
            info = dict(zip(tags, pool.map(created, tags)))
            digests = {tag: value[0] for tag, value in info.items()}
            newest = sorted(tags, key=lambda tag: info[tag][1], reverse=True)[:args.keep_last]
            kept = set(newest) | {tag for tag in tags if any(p.search(tag) for p in keep_patterns)}
        kept_digests = {digests[tag] for tag in kept}
        doomed = sorted({digests[tag] for tag in tags if tag not in kept} - kept_digests)

        def delete(digest):
            resp = session().delete("%s/manifests/%s" % (base, digest), timeout=TIMEOUT)
            resp.raise_for_status()

        list(pool.map(delete, doomed))
    print("deleted %d manifests, kept %d tags" % (len(doomed), len(kept)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
