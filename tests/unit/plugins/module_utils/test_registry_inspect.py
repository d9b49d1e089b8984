# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import json

from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    Manifest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_inspect import (
    ManifestInspector,
    config_summary,
    newest_created,
)


def test_newest_created_compares_times_not_strings():
    assert newest_created(["2023-05-06T07:08:09.9Z", "2023-05-06T08:00:00+01:00", None]) == "2023-05-06T07:08:09.9Z"
    assert newest_created([None, "garbage"]) is None


def test_config_summary():
    config = {"created": "2020-01-01T00:00:00Z", "os": "linux", "architecture": "arm", "variant": "v7",
              "config": {"Labels": {"a": "b"}}}
    assert config_summary(config) == dict(created="2020-01-01T00:00:00Z", os="linux", architecture="arm",
                                          variant="v7", labels={"a": "b"})
    assert config_summary({"config": {"Labels": None}})["labels"] == {}
    assert config_summary(None) is None


def digest_of(body):
    return "sha256:" + hashlib.sha256(body).hexdigest()


def image(created, shared_layer, own_layer_size, architecture):
    config = json.dumps({"created": created, "architecture": architecture, "os": "linux"}).encode()
    body = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "x", "size": len(config), "digest": digest_of(config)},
        "layers": [{"mediaType": "x", "size": 100, "digest": shared_layer},
                   {"mediaType": "x", "size": own_layer_size, "digest": digest_of(architecture.encode())}],
    }).encode()
    return Manifest(digest_of(body), DOCKER_MANIFEST, body), config


class FakeClient:
    """Serves manifests and configs from dicts, counting fetches; map_bounded runs inline."""

    def __init__(self, manifests, configs):
        self.manifests = manifests
        self.configs = configs
        self.fetches = []

    def get_manifest(self, repository, reference):
        self.fetches.append(("manifest", reference))
        return self.manifests.get(reference)

    def get_blob_json(self, repository, digest):
        self.fetches.append(("config", digest))
        return json.loads(self.configs[digest])

    def map_bounded(self, func, items):
        return [func(item) for item in items]


def test_index_summary_counts_shared_blobs_once_and_fetches_each_digest_once():
    shared = "sha256:" + "5" * 64
    amd, amd_config = image("2021-01-01T00:00:00Z", shared, 10, "amd64")
    arm, arm_config = image("2022-01-01T00:00:00Z", shared, 20, "arm64")
    index_body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "size": amd.size, "digest": amd.digest, "platform": {"architecture": "amd64"}},
        {"mediaType": DOCKER_MANIFEST, "size": arm.size, "digest": arm.digest, "platform": {"architecture": "arm64"}},
    ]}).encode()
    index = Manifest(digest_of(index_body), OCI_INDEX, index_body)
    client = FakeClient(
        {"v1": index, "latest": index, "amd": amd, amd.digest: amd, arm.digest: arm},
        {amd.config_descriptor["digest"]: amd_config, arm.config_descriptor["digest"]: arm_config},
    )
    summaries = ManifestInspector(client).summarize_many([("r", "v1"), ("r", "latest"), ("r", "amd"), ("r", "gone")])
    expected_index_size = index.size + amd.size + arm.size + len(amd_config) + len(arm_config) + 100 + 10 + 20
    assert summaries[0] == dict(digest=index.digest, media_type=OCI_INDEX, created="2022-01-01T00:00:00Z",
                                size=expected_index_size)
    assert summaries[1] == summaries[0]
    assert summaries[2] == dict(digest=amd.digest, media_type=DOCKER_MANIFEST, created="2021-01-01T00:00:00Z",
                                size=amd.size + len(amd_config) + 110)
    assert summaries[3] is None
    configs = [f for f in client.fetches if f[0] == "config"]
    assert len(configs) == 2
    # The amd64 image was already fetched by its tag, so only arm64 is fetched by digest.
    assert ("manifest", arm.digest) in client.fetches and ("manifest", amd.digest) not in client.fetches


class PerRepositoryClient(FakeClient):
    """FakeClient whose manifests are per repository: ``manifests`` maps (repository, reference)."""

    def get_manifest(self, repository, reference):
        self.fetches.append(("manifest", repository, reference))
        return self.manifests.get((repository, reference))


def two_platform_index():
    shared = "sha256:" + "5" * 64
    amd, _amd_config = image("2021-01-01T00:00:00Z", shared, 10, "amd64")
    arm, _arm_config = image("2022-01-01T00:00:00Z", shared, 20, "arm64")
    index_body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "size": amd.size, "digest": amd.digest},
        {"mediaType": DOCKER_MANIFEST, "size": arm.size, "digest": arm.digest},
    ]}).encode()
    return Manifest(digest_of(index_body), OCI_INDEX, index_body), amd, arm


def test_a_child_missing_in_one_repository_is_not_missing_in_another():
    index, amd, arm = two_platform_index()
    # Repository "full" has both platforms; "partial" lost the arm64 one.
    manifests = {("full", index.digest): index, ("full", amd.digest): amd, ("full", arm.digest): arm,
                 ("partial", index.digest): index, ("partial", amd.digest): amd}
    for order in (["partial", "full"], ["full", "partial"]):
        inspector = ManifestInspector(PerRepositoryClient(manifests, {}))
        inspector.load_descendants([(name, index) for name in order])
        assert inspector.known("full")[arm.digest] is arm
        assert inspector.known("partial")[arm.digest] is None
        assert inspector.known("partial")[amd.digest] is amd
        assert inspector.cached("partial", arm.digest) is None and inspector.cached("full", arm.digest) is arm
        # Asked again: answered from the cache, per repository.
        fetched = len(inspector.client.fetches)
        assert inspector.manifest("partial", arm.digest) is None and inspector.manifest("full", arm.digest) is arm
        assert len(inspector.client.fetches) == fetched
