# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

from ansible_collections.dockhand.registry.plugins.module_utils.oci import OCI_MANIFEST, Manifest
from ansible_collections.dockhand.registry.plugins.module_utils.referrers import (
    apply_index_change,
    plan_add_referrer,
    referrers_tag,
)
from ansible_collections.dockhand.registry.plugins.modules import registry_repo_info
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake_oci import FakeDistribution2
from ansible_collections.dockhand.registry.tests.unit.plugins.modules.module_runner import run_module as run_module_main

REGISTRY = "127.0.0.1:5000"


class CatalogFake(FakeDistribution2):
    """The fake registry with a catalog, used as the module uses its client (a context manager)."""

    def catalog(self):
        self.calls.append(("catalog", None, None))
        return sorted(self.repos)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def run_module(monkeypatch, args, registry):
    monkeypatch.setattr(registry_repo_info.RegistryClient, "from_params",
                        staticmethod(lambda params, prefix="", **overrides: registry))
    return run_module_main(monkeypatch, registry_repo_info, dict(args, registry=REGISTRY))


def stored(registry, repository, digests):
    manifests = registry.repos[repository]["manifests"]
    return sum(len(manifests[digest][0]) if digest in manifests else len(registry.blobs[digest]) for digest in digests)


def own_blobs(registry, repository, digest):
    data = json.loads(registry.repos[repository]["manifests"][digest][0])
    return set([digest, data["config"]["digest"]] + [layer["digest"] for layer in data["layers"]])


def fixture():
    """app: two tags on images sharing a base layer, one signed (referrers tag); tool: app's first image and a
    multi-platform index of its own; empty: no tags."""
    registry = CatalogFake(REGISTRY)
    first = registry.add_image("app", ["v1"], marker="v1", layers=(b"base", b"v1"))
    second = registry.add_image("app", ["v2"], marker="v2", layers=(b"base", b"v2"))
    referrer, body = registry.add_referrer("app", first, artifact_type="application/spdx+json", payload=b"sbom")
    apply_index_change(registry, "app", plan_add_referrer(registry, "app", Manifest(referrer, OCI_MANIFEST, body)))
    # The very same image in tool: same bytes, same digests.
    tool = registry.repos.setdefault("tool", dict(tags={}, manifests={}, blobs=set()))
    tool["manifests"][first] = registry.repos["app"]["manifests"][first]
    tool["tags"]["copy"] = first
    amd64 = registry.add_image("tool", [], marker="amd64", layers=(b"base", b"amd64"))
    arm64 = registry.add_image("tool", [], marker="arm64", layers=(b"arm64",))
    multi = registry.add_index("tool", ["multi"], [amd64, arm64])
    registry.repos["empty"] = dict(tags={}, manifests={}, blobs=set())
    del registry.calls[:]
    return registry, dict(first=first, second=second, referrer=referrer, amd64=amd64, arm64=arm64, multi=multi,
                          referrers_tag=registry.tag_digest("app", referrers_tag(first)))


def test_storage_per_repository_shared_unique_and_the_total(monkeypatch):
    registry, digests = fixture()
    ok, result = run_module(monkeypatch, dict(storage=True), registry)
    assert ok and not result["changed"]
    app = (own_blobs(registry, "app", digests["first"]) | own_blobs(registry, "app", digests["second"])
           | own_blobs(registry, "app", digests["referrer"]) | {digests["referrers_tag"]})
    tool = (own_blobs(registry, "app", digests["first"]) | own_blobs(registry, "tool", digests["amd64"])
            | own_blobs(registry, "tool", digests["arm64"]) | {digests["multi"]})
    shared = app & tool  # the first image, and the base layer the amd64 platform also has
    assert shared == own_blobs(registry, "app", digests["first"])
    by_name = dict((entry["name"], entry["storage"]) for entry in result["repositories"])
    assert by_name["app"] == dict(blobs=len(app), bytes_total=stored(registry, "app", app),
                                  bytes_shared=stored(registry, "app", shared),
                                  bytes_unique=stored(registry, "app", app - shared), missing_manifests=[])
    assert by_name["tool"]["bytes_unique"] == stored(registry, "tool", tool - shared)
    assert by_name["tool"]["bytes_total"] == stored(registry, "tool", tool - shared) + stored(registry, "app", shared)
    assert by_name["empty"] == dict(blobs=0, bytes_total=0, bytes_unique=0, bytes_shared=0, missing_manifests=[])
    assert result["storage_total"] == dict(
        repositories=3, blobs=len(app | tool), bytes_shared=stored(registry, "app", shared),
        bytes_total=stored(registry, "app", app) + stored(registry, "tool", tool - shared))
    assert "manifests" not in result["repositories"][0]


def test_storage_reads_each_manifest_once_and_no_blob(monkeypatch):
    registry, _digests = fixture()
    ok, result = run_module(monkeypatch, dict(storage=True, details=True), registry)
    assert ok and result["repositories"][0]["manifests"]
    by_digest = [call for call in registry.calls if call[0] == "get_manifest" and call[2].startswith("sha256:")]
    by_tag = [call for call in registry.calls if call[0] == "get_manifest" and not call[2].startswith("sha256:")]
    assert len(by_digest) == len(set(call[2] for call in by_digest))
    # One GET per tag for both options together.
    assert len(by_tag) == sum(len(repo["tags"]) for repo in registry.repos.values())
    # Configs are read by details (creation times), never by storage: only image configs, each once.
    configs = [call for call in registry.calls if call[0] == "get_blob_json"]
    assert len(configs) == len(set(configs))
    ok, alone = run_module(monkeypatch, dict(storage=True), fixture()[0])
    assert ok and alone["storage_total"] == result["storage_total"]


def test_storage_names_a_platform_manifest_the_registry_lost(monkeypatch):
    registry, digests = fixture()
    del registry.repos["tool"]["manifests"][digests["arm64"]]
    ok, result = run_module(monkeypatch, dict(repository="tool", storage=True), registry)
    assert ok
    figures = result["repositories"][0]["storage"]
    assert figures["missing_manifests"] == [digests["arm64"]]
    # Alone in this run: nothing is shared.
    assert figures["bytes_shared"] == 0 and figures["bytes_unique"] == figures["bytes_total"]


def test_storage_needs_the_tag_lists(monkeypatch):
    ok, result = run_module(monkeypatch, dict(storage=True, list_tags=False), CatalogFake(REGISTRY))
    assert not ok and result["msg"] == "storage=true needs list_tags=true"
