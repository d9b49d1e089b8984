# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.oci import OCI_MANIFEST, Manifest
from ansible_collections.dockhand.registry.plugins.module_utils.referrers import (
    apply_index_change,
    cosign_tag,
    discover_referrers,
    plan_add_referrer,
    referrers_tag,
)
from ansible_collections.dockhand.registry.plugins.modules import registry_manifest
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake import FakeRegistry
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake_oci import (
    FakeDistribution2,
    FakeDistribution3,
)
from ansible_collections.dockhand.registry.tests.unit.plugins.modules.module_runner import run_module as run_module_main

REGISTRY = "127.0.0.1:5000"


def run_module(monkeypatch, args, registries=None):
    """Run main(); ``registries`` maps a registry host to the FakeRegistry the client talks to."""
    def from_params(params, prefix="", **overrides):
        host = overrides.get("registry") or params[prefix + "registry"]
        return registries[host]

    monkeypatch.setattr(registry_manifest.RegistryClient, "from_params", staticmethod(from_params))
    return run_module_main(monkeypatch, registry_manifest, args)


@pytest.mark.parametrize("args, message", [
    (dict(repository="Team/App", tag="x", state="absent"), "invalid repository name"),
    (dict(repository="team/app", tag="-x", state="absent"), "invalid tag"),
    (dict(repository="team/app", digest="sha256:abc", state="absent"), "invalid digest"),
    (dict(repository="team/app", tag="x", source="Bad Source"), "invalid reference"),
])
def test_bad_input_is_one_line_and_touches_nothing(monkeypatch, args, message):
    registry = FakeRegistry(REGISTRY)
    ok, result = run_module(monkeypatch, dict(args, registry=REGISTRY), {REGISTRY: registry})
    assert not ok
    assert message in result["msg"] and "\n" not in result["msg"]
    assert registry.calls == []


def test_same_host():
    assert registry_manifest.same_host("http://127.0.0.1:5000/", "127.0.0.1:5000")
    assert registry_manifest.same_host("Registry.Example.com", "https://registry.example.com")
    assert not registry_manifest.same_host("127.0.0.1:5000", "127.0.0.1:5001")


def test_absent_shared_tag_check_mode_then_real_with_diff(monkeypatch):
    registry = FakeRegistry(REGISTRY)
    digest = registry.add_image("app", ["a", "b", "c"])
    args = dict(registry=REGISTRY, repository="app", tag="b", state="absent",
                _ansible_check_mode=True, _ansible_diff=True)
    ok, result = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and result["changed"] and result["method"] == "untag"
    assert result["sharing_tags"] == ["a", "c"]
    assert result["diff"]["before"] == {"digest": digest} and result["diff"]["after"] == {"digest": None}
    assert registry.tag_digest("app", "b") == digest

    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and result["changed"] and result["deleted_tags"] == ["b"]
    assert registry.repos["app"]["tags"] == {"a": digest, "c": digest}

    ok, result = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and not result["changed"]


@pytest.mark.parametrize("fake, method, how", [
    (FakeDistribution2, "throwaway", "through a throw-away manifest;"),
    (FakeDistribution3, "untag", "through a throw-away manifest and the registry's tag delete;"),
])
def test_absent_shared_tag_says_how_the_registry_removed_it(monkeypatch, fake, method, how):
    registry = fake(REGISTRY)
    digest = registry.add_image("app", ["a", "b"])
    args = dict(registry=REGISTRY, repository="app", tag="b", state="absent",
                _ansible_check_mode=True, _ansible_diff=True)
    ok, plan = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and plan["delete_method"] == "undecided" and "through a throw-away manifest;" in plan["msg"]
    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and result["changed"] and result["delete_method"] == method and how in result["msg"]
    assert result["diff"] == plan["diff"] and result["deleted_tags"] == plan["deleted_tags"] == ["b"]
    assert registry.repos["app"]["tags"] == {"a": digest}
    ok, again = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and not again["changed"]


def test_absent_digest_lists_every_tag(monkeypatch):
    registry = FakeRegistry(REGISTRY)
    digest = registry.add_image("app", ["a", "b"])
    other = registry.add_image("app", ["c"], marker="other")
    args = dict(registry=REGISTRY, repository="app", digest=digest, state="absent")
    ok, result = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and result["changed"] and result["deleted_tags"] == ["a", "b"]
    assert registry.repos["app"]["tags"] == {"c": other}
    ok, result = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and not result["changed"] and result["deleted_tags"] == []


def test_present_copies_across_registries_then_is_idempotent(monkeypatch):
    source = FakeRegistry("127.0.0.1:5001")
    target = FakeRegistry(REGISTRY)
    digest = source.add_image("app", ["v1"], layers=(b"x", b"y"))
    registries = {REGISTRY: target, "127.0.0.1:5001": source}
    args = dict(registry=REGISTRY, repository="mirror/app", tag="v1", source="127.0.0.1:5001/app:v1",
                _ansible_check_mode=True)
    ok, result = run_module(monkeypatch, args, registries)
    assert ok and result["changed"] and result["method"] == "copy" and result["digest"] == digest
    assert "mirror/app" not in target.repos

    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, registries)
    assert ok and result["changed"] and len(result["transfer"]["blobs_copied"]) == 3
    assert target.tag_digest("mirror/app", "v1") == digest

    ok, result = run_module(monkeypatch, args, registries)
    assert ok and not result["changed"] and result["previous_digest"] == digest


def test_present_same_registry_without_registry_part_mounts(monkeypatch):
    registry = FakeRegistry(REGISTRY)
    digest = registry.add_image("app", ["v1"])
    args = dict(registry=REGISTRY, repository="other", tag="v1", source="app:v1")
    ok, result = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and result["method"] == "mount" and len(result["transfer"]["blobs_mounted"]) == 2
    assert registry.tag_digest("other", "v1") == digest


def test_present_missing_source_and_digest_mismatch(monkeypatch):
    registry = FakeRegistry(REGISTRY)
    digest = registry.add_image("app", ["v1"])
    ok, result = run_module(monkeypatch, dict(registry=REGISTRY, repository="app", tag="x", source="app:nope"),
                            {REGISTRY: registry})
    assert not ok and "not found" in result["msg"]
    wrong = "sha256:" + "1" * 64
    ok, result = run_module(monkeypatch, dict(registry=REGISTRY, repository="app", digest=wrong, source="app:v1"),
                            {REGISTRY: registry})
    assert not ok and digest in result["msg"] and wrong in result["msg"]


def test_decide_present():
    manager = registry_manifest.ManifestManager.__new__(registry_manifest.ManifestManager)
    manager.reference = "v1"
    assert manager.decide_present("sha256:a", "sha256:a") is None
    assert "does not exist" in manager.decide_present(None, "sha256:a")
    assert "points at sha256:b" in manager.decide_present("sha256:b", "sha256:a")


def test_absent_on_a_dangling_tag_removes_it(monkeypatch):
    registry = FakeRegistry(REGISTRY)
    digest = registry.add_image("team/app", ["keep"])
    registry.repos["team/app"]["tags"]["gone"] = "sha256:" + "e" * 64  # listed, but answers 404
    args = dict(registry=REGISTRY, repository="team/app", tag="gone", state="absent")
    ok, result = run_module(monkeypatch, dict(args, _ansible_check_mode=True), {REGISTRY: registry})
    assert ok and result["changed"] and result["method"] == "dangling"
    assert "gone" in registry.repos["team/app"]["tags"]
    ok, result = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and result["changed"] and result["method"] == "dangling" and result["deleted_tags"] == ["gone"]
    assert registry.repos["team/app"]["tags"] == {"keep": digest}
    ok, result = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and not result["changed"] and "does not exist" in result["msg"]


def signed_image_in(registry, repository="app"):
    """An image with an SBOM in its referrers tag and a cosign-style signature; returns (image, sbom, signature)."""
    digest = registry.add_image(repository, ["v1"])
    sbom, body = registry.add_referrer(repository, digest, artifact_type="application/spdx+json")
    apply_index_change(registry, repository, plan_add_referrer(registry, repository,
                                                               Manifest(sbom, OCI_MANIFEST, body)))
    signature = registry.add_image(repository, [cosign_tag(digest, "sig")], marker="signature")
    return digest, sbom, signature


def signed_image(registry):
    return signed_image_in(registry)


@pytest.mark.parametrize("fake", [FakeDistribution2, FakeDistribution3])
def test_absent_digest_deletes_its_referrers_by_default(monkeypatch, fake):
    registry = fake(REGISTRY)
    digest, sbom, signature = signed_image(registry)
    args = dict(registry=REGISTRY, repository="app", digest=digest, state="absent", _ansible_check_mode=True)
    ok, plan = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and plan["deleted_tags"] == sorted(["v1", referrers_tag(digest), cosign_tag(digest, "sig")])
    assert len(registry.repos["app"]["tags"]) == 3
    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and result["deleted_tags"] == plan["deleted_tags"] and result["deleted_referrers"] == plan["deleted_referrers"]
    assert registry.repos["app"]["tags"] == {}
    assert not set(registry.repos["app"]["manifests"]) & {digest, sbom, signature}
    ok, again = run_module(monkeypatch, args, {REGISTRY: registry})
    assert ok and not again["changed"]


def test_absent_digest_refuses_with_referrers_when_asked_to(monkeypatch):
    registry = FakeDistribution2(REGISTRY)
    digest, _sbom, _signature = signed_image(registry)
    before = dict(registry.repos["app"]["tags"])
    ok, result = run_module(monkeypatch, dict(registry=REGISTRY, repository="app", digest=digest, state="absent",
                                              delete_referrers=False), {REGISTRY: registry})
    assert not ok and "has 3 referrers and referrer tags" in result["msg"] and "nothing was deleted" in result["msg"]
    assert REGISTRY in result["msg"] and "\n" not in result["msg"]
    assert registry.repos["app"]["tags"] == before


@pytest.mark.parametrize("target_fake", [FakeDistribution2, lambda host: FakeDistribution3(host, referrers_api=True)])
def test_present_copy_carries_referrers_and_converges(monkeypatch, target_fake):
    source = FakeDistribution2("127.0.0.1:5001")
    target = target_fake(REGISTRY)
    registries = {REGISTRY: target, "127.0.0.1:5001": source}
    digest, sbom, signature = signed_image_in(source, "app")
    args = dict(registry=REGISTRY, repository="mirror/app", tag="v1", source="127.0.0.1:5001/app:v1",
                _ansible_check_mode=True)
    ok, plan = run_module(monkeypatch, args, registries)
    assert ok, plan["msg"]
    assert plan["changed"] and sorted(r["digest"] for r in plan["copied_referrers"]) == sorted([sbom, signature])
    assert "mirror/app" not in target.repos
    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, registries)
    assert ok and result["changed"]
    tags = target.repos["mirror/app"]["tags"]
    assert tags[cosign_tag(digest, "sig")] == signature and sbom in target.repos["mirror/app"]["manifests"]
    # the referrers tag only where the target has no referrers API
    assert (referrers_tag(digest) in tags) is not getattr(target, "referrers_api", False)
    found = discover_referrers(target, "mirror/app", digest, verify=True).referrers
    assert sorted(r.digest for r in found) == sorted([sbom, signature])
    ok, again = run_module(monkeypatch, args, registries)
    assert ok and not again["changed"] and again["copied_referrers"] == []


def test_present_copy_without_referrers_when_asked(monkeypatch):
    source = FakeDistribution2("127.0.0.1:5001")
    target = FakeDistribution2(REGISTRY)
    digest, _sbom, _signature = signed_image_in(source, "app")
    args = dict(registry=REGISTRY, repository="mirror/app", tag="v1", source="127.0.0.1:5001/app:v1",
                copy_referrers=False)
    ok, result = run_module(monkeypatch, args, {REGISTRY: target, "127.0.0.1:5001": source})
    assert ok and result["changed"] and "copied_referrers" not in result
    assert target.repos["mirror/app"]["tags"] == {"v1": digest}
