#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the collection's referrers code (module_utils/referrers.py) against real registries.

The parts no module drives yet: keeping a referrers tag when a referrer is pushed or removed,
and untag detection on the throw-away path. Prints one JSON object of what the registries then
hold, read back over plain HTTP; the target's tasks assert on it. The collection must be
importable (the task sets PYTHONPATH to the folder holding ansible_collections).

  library_on_real_registry.py REGISTRY REPOSITORY SUBJECT NODELETE_REGISTRY NODELETE_REPOSITORY NODELETE_SUBJECT
"""

from __future__ import annotations

import json
import sys

import requests

from ansible_collections.dockhand.registry.plugins.module_utils import referrers
from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    sha256_digest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_client import RegistryClient
from ansible_collections.dockhand.registry.plugins.module_utils.registry_delete import (
    THROWAWAY_CONFIG,
    throwaway_manifest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryError
from ansible_collections.dockhand.registry.plugins.module_utils.registry_options import RegistrySettings

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SBOM = "application/spdx+json"
PROBE_TAG = "untag-probe"


def raw_index(registry, repository, tag):
    response = requests.get("http://%s/v2/%s/manifests/%s" % (registry, repository, tag),
                            headers={"Accept": OCI_INDEX}, timeout=30)
    return json.loads(response.content) if response.status_code == 200 else None


def upload(client, repository, data):
    digest = sha256_digest(data)
    if not client.blob_exists(repository, digest):
        client.upload_blob(repository, digest, iter([data]), len(data))
    return dict(digest=digest, size=len(data))


def referrer_body(client, repository, subject):
    """An SBOM artifact manifest with ``subject``, its blobs uploaded (empty config, one layer)."""
    head = client.head_manifest(repository, subject)
    document = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SBOM,
        "config": dict(upload(client, repository, b"{}"), mediaType=OCI_EMPTY),
        "layers": [dict(upload(client, repository, b'{"spdxVersion": "SPDX-2.3"}'), mediaType=SBOM)],
        "subject": {"mediaType": head.media_type, "digest": subject, "size": head.size},
        "annotations": {"org.example.made-by": "dockhand.registry"},
    }
    return json.dumps(document, sort_keys=True).encode()


def untag_probe(client, repository, original_digest):
    """The throw-away path with a UntagSupport: re-point PROBE_TAG at a throw-away, then remove it."""
    upload(client, repository, THROWAWAY_CONFIG)
    throwaway = client.put_manifest(repository, PROBE_TAG, throwaway_manifest(repository, PROBE_TAG), OCI_MANIFEST)
    support = referrers.UntagSupport()
    try:
        how = support.remove_repointed_tag(client, repository, PROBE_TAG, throwaway)
    except RegistryError as exc:
        how = "error: %s" % exc
        original = client.get_manifest(repository, original_digest)
        client.put_manifest(repository, PROBE_TAG, original.body, original.media_type)
    head = client.head_manifest(repository, PROBE_TAG)
    return dict(how=how, supported=support.supported, reason=support.reason,
                tag_now=head.digest if head else None, tags=sorted(client.list_tags(repository)),
                original_kept=client.head_manifest(repository, original_digest) is not None)


def main():
    registry, repository, subject, nodelete, nodelete_repository, nodelete_subject = sys.argv[1:7]
    result = {}
    with RegistryClient(RegistrySettings(registry)) as client:
        body = referrer_body(client, repository, subject)
        referrer = sha256_digest(body)
        first = referrers.push_referrer(client, repository, body, OCI_MANIFEST)
        again = referrers.push_referrer(client, repository, body, OCI_MANIFEST)
        result["push"] = dict(changed=first.changed, again_changed=again.changed, tag=first.tag, referrer=referrer,
                              index=raw_index(registry, repository, first.tag))
        found = referrers.discover_referrers(client, repository, subject, verify=True)
        result["discovered"] = [item.to_result() for item in found.referrers]
        result["referrers_api"] = found.referrers_api
        removal = referrers.plan_remove_referrer(client, repository, subject, referrer)
        result["remove"] = dict(
            changed=referrers.apply_index_change(client, repository, removal),
            index=raw_index(registry, repository, first.tag),
            again_changed=referrers.plan_remove_referrer(client, repository, subject, referrer).changed)
        result["untag"] = untag_probe(client, repository, subject)
    with RegistryClient(RegistrySettings(nodelete)) as client:
        result["untag_nodelete"] = untag_probe(client, nodelete_repository, nodelete_subject)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
