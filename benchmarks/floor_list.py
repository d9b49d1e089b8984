#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Floor for registry listing: paged GETs and nothing else.

``--catalog``: every catalog page (n=1000, the server's maximum, following
Link), and with ``--tags`` each repository's tag list, fetched over 8
keep-alive connections while later catalog pages are still coming in.
``--repository NAME``: the tag list of one repository (all pages).
Plain http on loopback only; every request has a timeout.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import requests

CONNECTIONS = 8
PAGE_SIZE = 1000
TIMEOUT = 60
MAX_PAGES = 10000


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--registry", required=True, help="127.0.0.1:PORT (plain http)")
    parser.add_argument("--repository")
    parser.add_argument("--catalog", action="store_true")
    parser.add_argument("--tags", action="store_true", help="with --catalog: also list every repository's tags")
    parser.add_argument("--print", action="store_true", help="print the result as JSON")
    parser.add_argument("--import-ansible", action="store_true",
                        help="import ansible.module_utils.basic first, as every Ansible module must: "
                             "the least time any module doing this job can take")
    args = parser.parse_args()
    if args.import_ansible:
        import ansible.module_utils.basic  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    if not args.registry.startswith("127.0.0.1:"):
        parser.error("loopback registries only")
    base = "http://%s/v2/" % args.registry
    local = threading.local()

    def session():
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def paged(url, key):
        items = []
        for _page in range(MAX_PAGES):
            resp = session().get(url, timeout=TIMEOUT)
            resp.raise_for_status()
            page = resp.json().get(key) or []
            items.extend(page)
            yield page
            link = resp.headers.get("Link")
            if not link:
                return
            url = urljoin(url, link.split(";")[0].strip("<> "))
        raise RuntimeError("more than %d pages" % MAX_PAGES)

    def tag_list(repository):
        tags = []
        for page in paged("%s%s/tags/list?n=%d" % (base, repository, PAGE_SIZE), "tags"):
            tags.extend(page)
        return tags

    result = {}
    if args.repository:
        result[args.repository] = tag_list(args.repository)
    if args.catalog:
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            futures = {}
            for page in paged("%s_catalog?n=%d" % (base, PAGE_SIZE), "repositories"):
                for repository in page:
                    futures[repository] = pool.submit(tag_list, repository) if args.tags else None
            for repository, future in futures.items():
                result[repository] = future.result() if future else None
    if args.print:
        json.dump(result, sys.stdout)
    else:
        print("%d repositories, %d tags" % (len(result), sum(len(tags or []) for tags in result.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
