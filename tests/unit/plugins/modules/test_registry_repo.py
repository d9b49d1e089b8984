# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.referrers import (
    apply_index_change,
    cosign_tag,
    discover_referrers,
    plan_add_referrer,
    referrers_tag,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import OCI_INDEX, Manifest
from ansible_collections.dockhand.registry.plugins.module_utils.registry_delete import (
    THROWAWAY_ANNOTATION,
    THROWAWAY_CONFIG,
    throwaway_manifest,
)
from ansible_collections.dockhand.registry.plugins.modules import registry_repo
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake import FakeRegistry
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake_oci import (
    FakeDistribution2,
    FakeDistribution3,
    FakeResponse,
)
from ansible_collections.dockhand.registry.tests.unit.plugins.modules.module_runner import run_module as run_module_main

REGISTRY = "127.0.0.1:5000"


def run_module(monkeypatch, args, registry):
    monkeypatch.setattr(registry_repo.RegistryClient, "from_params",
                        staticmethod(lambda params, prefix="", **overrides: registry))
    return run_module_main(monkeypatch, registry_repo, dict(args, registry=REGISTRY))


def seeded():
    registry = FakeRegistry(REGISTRY)
    digests = {}
    for day in range(1, 6):
        tag = "v%d" % day
        digests[tag] = registry.add_image("app", [tag], created="2020-01-0%dT00:00:00Z" % day, marker=tag)
    # latest shares v5's image; ci tags are recent
    registry.repos["app"]["tags"]["latest"] = digests["v5"]
    digests["ci-1"] = registry.add_image("app", ["ci-1"], created="2099-01-01T00:00:00Z", marker="ci-1")
    return registry, digests


@pytest.mark.parametrize("args, message", [
    (dict(repository="App"), "invalid repository name"),
    (dict(repository="app", older_than="soon"), "invalid duration"),
    (dict(repository="app", match=["(["]), "invalid regular expression"),
    (dict(repository="app", keep_last=-1), "keep_last"),
    (dict(repository="app", state="absent", keep_last=1), "state=present only"),
])
def test_bad_input(monkeypatch, args, message):
    registry = FakeRegistry(REGISTRY)
    ok, result = run_module(monkeypatch, args, registry)
    assert not ok and message in result["msg"] and "\n" not in result["msg"]
    assert registry.calls == []


def test_keep_last_check_mode_then_real(monkeypatch):
    registry, digests = seeded()
    args = dict(repository="app", match=["^v"], keep_last=2, _ansible_check_mode=True)
    ok, plan = run_module(monkeypatch, args, registry)
    assert ok and plan["changed"]
    assert plan["deleted_tags"] == ["v1", "v2", "v3"]
    assert plan["kept_tags"] == ["ci-1", "latest", "v4", "v5"]
    assert "garbage collection" in plan["msg"]
    assert len(registry.repos["app"]["tags"]) == 7

    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, registry)
    assert ok and result["deleted_tags"] == plan["deleted_tags"]
    assert sorted(result["deleted_digests"]) == sorted(digests[t] for t in ("v1", "v2", "v3"))
    assert sorted(registry.repos["app"]["tags"]) == ["ci-1", "latest", "v4", "v5"]

    ok, result = run_module(monkeypatch, args, registry)
    assert ok and not result["changed"]


def test_tag_sharing_a_kept_digest_is_untagged(monkeypatch):
    registry, digests = seeded()
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^v5$"]), registry)
    assert ok and result["deleted_tags"] == ["v5"] and result["untagged_tags"] == ["v5"]
    assert result["deleted_digests"] == []
    assert registry.repos["app"]["tags"]["latest"] == digests["v5"]
    assert digests["v5"] in registry.repos["app"]["manifests"]


def test_older_than_and_keep_tags(monkeypatch):
    registry, digests = seeded()
    ok, result = run_module(monkeypatch, dict(repository="app", older_than="30d", keep_tags=["^v1$"]), registry)
    # latest keeps v5's image alive but is itself old: both latest and v5 go, once, by digest
    assert ok and result["deleted_tags"] == ["latest", "v2", "v3", "v4", "v5"]
    assert sorted(registry.repos["app"]["tags"]) == ["ci-1", "v1"]


def test_no_rule_changes_nothing_and_sends_no_heads(monkeypatch):
    registry, digests = seeded()
    ok, result = run_module(monkeypatch, dict(repository="app", keep_tags=["^v1$"]), registry)
    assert ok and not result["changed"] and len(result["kept_tags"]) == 7
    assert [call[0] for call in registry.calls] == ["list_tags"]


def test_match_only_policy_needs_no_creation_times(monkeypatch):
    registry, digests = seeded()
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^ci-"]), registry)
    assert ok and result["deleted_tags"] == ["ci-1"]
    assert not any(call[0] == "get_blob_json" for call in registry.calls)
    # The one manifest GET is the untag probe's: the bytes that restore ci-1 should the probe fail.
    assert [call[2] for call in registry.calls if call[0] == "get_manifest"] == [digests["ci-1"]]
    assert result["delete_method"] == "throwaway"


def test_unknown_repository(monkeypatch):
    registry = FakeRegistry(REGISTRY)
    ok, result = run_module(monkeypatch, dict(repository="nope", match=["."]), registry)
    assert not ok and "repository not found" in result["msg"]
    ok, result = run_module(monkeypatch, dict(repository="nope", state="absent"), registry)
    assert ok and not result["changed"]


def test_absent_deletes_every_manifest_including_index_children(monkeypatch):
    registry, digests = seeded()
    child = registry.add_image("app", [], marker="child")
    registry.add_index("app", ["multi"], [child])
    ok, result = run_module(monkeypatch, dict(repository="app", state="absent", _ansible_check_mode=True), registry)
    assert ok and result["changed"] and len(registry.repos["app"]["tags"]) == 8
    ok, result = run_module(monkeypatch, dict(repository="app", state="absent"), registry)
    assert ok and result["changed"] and child in result["deleted_digests"]
    assert registry.repos["app"]["tags"] == {} and registry.repos["app"]["manifests"] == {}
    ok, result = run_module(monkeypatch, dict(repository="app", state="absent"), registry)
    assert ok and not result["changed"]


def test_deletes_disabled_fails_before_deleting(monkeypatch):
    registry, digests = seeded()
    registry.deletes_enabled = False
    ok, result = run_module(monkeypatch, dict(repository="app", match=["."]), registry)
    assert not ok and "storage.delete.enabled" in result["msg"]
    assert len(registry.repos["app"]["tags"]) == 7


def test_keep_last_reads_each_config_once_and_sends_no_heads(monkeypatch):
    registry, digests = seeded()
    ok, result = run_module(monkeypatch, dict(repository="app", keep_last=3), registry)
    # latest and v5 share one image: 7 tags, 6 images, so 7 manifest GETs but 6 config GETs.
    assert ok and result["deleted_tags"] == ["v1", "v2", "v3", "v4"]
    names = [call[0] for call in registry.calls]
    assert names.count("get_manifest") == 7
    assert names.count("get_blob_json") == 6
    # Only the untag probe's check that v1 still points at its image before re-pointing it.
    assert names.count("head_manifest") == 1


def test_keep_last_ranks_an_index_by_its_newest_platform(monkeypatch):
    registry, digests = seeded()
    old = registry.add_image("app", [], created="2019-01-01T00:00:00Z", marker="old-platform")
    new = registry.add_image("app", [], created="2030-01-01T00:00:00Z", marker="new-platform")
    registry.add_index("app", ["multi"], [old, new])
    ok, result = run_module(monkeypatch, dict(repository="app", keep_last=2, _ansible_check_mode=True), registry)
    assert ok and result["kept_tags"] == ["ci-1", "multi"]


def test_kept_index_fetched_for_its_creation_time_is_not_fetched_again(monkeypatch):
    registry, digests = seeded()
    child = registry.add_image("app", [], created="2100-01-01T00:00:00Z", marker="platform")
    index = registry.add_index("app", ["multi"], [child])
    ok, result = run_module(monkeypatch, dict(repository="app", keep_last=1), registry)
    assert ok and result["kept_tags"] == ["multi"]
    assert ("get_manifest", "app", "multi") in registry.calls
    assert ("get_manifest", "app", index) not in registry.calls
    assert child in registry.repos["app"]["manifests"]


def test_untag_reuses_the_manifest_fetched_for_creation_time(monkeypatch):
    registry, digests = seeded()
    # latest and v5 share an image and a creation time; the tie goes to v5 by name, so latest is untagged.
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^latest$", "^v"], keep_last=1), registry)
    assert ok and result["untagged_tags"] == ["latest"] and result["kept_tags"] == ["ci-1", "v5"]
    assert registry.repos["app"]["tags"]["v5"] == digests["v5"]
    assert ("get_manifest", "app", digests["v5"]) not in registry.calls


def test_an_unexpected_error_is_one_line_with_the_traceback_aside(monkeypatch):
    registry, _digests = seeded()

    def broken(_self):
        raise KeyError("boom")

    monkeypatch.setattr(registry_repo.RepoManager, "present", broken)
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^v"]), registry)
    assert not ok
    assert result["msg"] == "unexpected error, please report it: KeyError: 'boom'"
    assert "Traceback" in result["exception"]


def test_dangling_tags_are_planned_in_check_mode_and_cleared_whatever_keep_tags_says(monkeypatch):
    registry, digests = seeded()
    registry.repos["app"]["tags"].update({"v9": "sha256:" + "e" * 64})  # listed, 404: a half done delete
    args = dict(repository="app", match=["^v"], keep_tags=["^v"], _ansible_check_mode=True)
    ok, plan = run_module(monkeypatch, args, registry)
    assert ok and plan["changed"] and plan["dangling_tags"] == ["v9"] and plan["deleted_tags"] == ["v9"]
    assert "v9" in registry.repos["app"]["tags"]

    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, registry)
    assert ok and result["dangling_tags"] == ["v9"] and result["deleted_tags"] == ["v9"]
    assert "v9" not in registry.repos["app"]["tags"] and registry.dangling_tags("app") == []
    assert registry.repos["app"]["tags"]["v5"] == digests["v5"]

    ok, again = run_module(monkeypatch, args, registry)
    assert ok and not again["changed"]


def test_absent_clears_dangling_tags_too(monkeypatch):
    registry, _digests = seeded()
    registry.repos["app"]["tags"].update({"old": "sha256:" + "e" * 64})
    ok, result = run_module(monkeypatch, dict(repository="app", state="absent"), registry)
    assert ok and result["dangling_tags"] == ["old"] and "old" in result["deleted_tags"]
    assert registry.repos["app"]["tags"] == {}


@pytest.mark.parametrize("fake, method", [(FakeDistribution2, "throwaway"), (FakeDistribution3, "untag")])
def test_retention_plans_alike_on_both_registries_and_says_how_it_went(monkeypatch, fake, method):
    registry = fake(REGISTRY)
    digests = dict((tag, registry.add_image("app", [tag], created="2020-01-0%dT00:00:00Z" % day, marker=tag))
                   for day, tag in enumerate(["v1", "v2", "v3"], 1))
    registry.repos["app"]["tags"]["latest"] = digests["v3"]
    args = dict(repository="app", match=["^v"], keep_last=1, _ansible_check_mode=True, _ansible_diff=True)
    ok, plan = run_module(monkeypatch, args, registry)
    assert ok and plan["changed"] and plan["deleted_tags"] == ["v1", "v2"] and plan["delete_method"] == "undecided"
    assert len(registry.repos["app"]["tags"]) == 4
    args.update(_ansible_check_mode=False)
    ok, result = run_module(monkeypatch, args, registry)
    assert ok and result["deleted_tags"] == plan["deleted_tags"] and result["diff"] == plan["diff"]
    assert result["delete_method"] == method
    assert sorted(registry.repos["app"]["tags"]) == ["latest", "v3"]
    if method == "untag":
        assert result["untagged_manifests"] == sorted([digests["v1"], digests["v2"]])
        assert result["deleted_digests"] == [] and "delete-untagged" in result["msg"]
        assert digests["v1"] in registry.repos["app"]["manifests"]
    else:
        assert result["deleted_digests"] == sorted([digests["v1"], digests["v2"]])
        assert result["untagged_manifests"] == [] and digests["v1"] not in registry.repos["app"]["manifests"]
    ok, again = run_module(monkeypatch, args, registry)
    assert ok and not again["changed"] and again["delete_method"] == "none"


def signed_repository(fake):
    """old (signed: an SBOM in the referrers tag, a cosign .sig) and new (signed the same way); keep_last=1 keeps new."""
    registry = fake(REGISTRY)
    digests = {}
    for day, tag in enumerate(["old", "new"], 1):
        digest = registry.add_image("app", [tag], created="2020-01-0%dT00:00:00Z" % day, marker=tag)
        referrer, body = registry.add_referrer("app", digest, artifact_type="application/spdx+json",
                                               payload=b"sbom of " + tag.encode())
        if not getattr(registry, "referrers_api", False):
            change = plan_add_referrer(registry, "app", Manifest(referrer, OCI_MANIFEST, body))
            apply_index_change(registry, "app", change)
        signature = registry.add_image("app", [cosign_tag(digest, "sig")], marker="sig of " + tag)
        digests.update({tag: digest, tag + "-sbom": referrer, tag + "-sig": signature})
    return registry, digests


@pytest.mark.parametrize("fake", [FakeDistribution2, lambda host: FakeDistribution3(host, referrers_api=True)])
def test_retention_deletes_the_referrers_of_deleted_images_only(monkeypatch, fake):
    registry, digests = signed_repository(fake)
    tags_before = sorted(registry.repos["app"]["tags"])
    args = dict(repository="app", keep_last=1, _ansible_check_mode=True)
    ok, plan = run_module(monkeypatch, args, registry)
    # the referrer tags are no candidates: keep_last=1 keeps "new", not a signature tag
    assert ok and plan["changed"], plan
    old_tags = [cosign_tag(digests["old"], "sig")]
    if not getattr(registry, "referrers_api", False):
        old_tags.append(referrers_tag(digests["old"]))
    assert plan["deleted_tags"] == sorted(["old"] + old_tags)
    assert sorted(plan["kept_tags"]) == sorted(set(tags_before) - set(plan["deleted_tags"]))
    assert plan["reasons"][cosign_tag(digests["new"], "sig")] == "referrer tag of a kept image"
    assert [entry["digest"] for entry in plan["deleted_referrers"] if entry.get("digest")] == [digests["old-sbom"]]
    assert sorted(registry.repos["app"]["tags"]) == tags_before
    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, registry)
    assert ok and result["deleted_tags"] == plan["deleted_tags"]
    assert sorted(registry.repos["app"]["tags"]) == sorted(plan["kept_tags"])
    manifests = registry.repos["app"]["manifests"]
    assert digests["old-sbom"] not in manifests
    if getattr(registry, "referrers_api", False):
        # the untag path: the signature's tag went, its manifest waits for GC with delete-untagged, like old's
        assert result["untagged_manifests"] == sorted([digests["old"], digests["old-sig"]])
    else:
        assert digests["old-sig"] not in manifests and digests["old"] not in manifests
    assert digests["new-sbom"] in manifests and digests["new-sig"] in manifests
    # the kept image's referrers are still listed, consistently
    assert [r.digest for r in discover_referrers(registry, "app", digests["new"], verify=True).referrers] == [
        digests["new-sbom"], digests["new-sig"]]
    ok, again = run_module(monkeypatch, args, registry)
    assert ok and not again["changed"]


def test_retention_refuses_a_referrers_tag_that_lists_another_images_referrer(monkeypatch):
    registry, digests = signed_repository(FakeDistribution2)
    # old's referrers tag lists new's SBOM: deleting on that word would remove a kept image's SBOM
    tag = referrers_tag(digests["old"])
    index = json.loads(registry.get_manifest("app", tag).body)
    index["manifests"][0]["digest"] = digests["new-sbom"]
    registry.put_manifest("app", tag, json.dumps(index).encode(), OCI_INDEX)
    before = dict(registry.repos["app"]["tags"])
    ok, result = run_module(monkeypatch, dict(repository="app", keep_last=1), registry)
    assert not ok and "lists %s as a referrer of %s, but that manifest's subject is %s" % (
        digests["new-sbom"], digests["old"], digests["new"]) in result["msg"]
    assert "\n" not in result["msg"] and registry.repos["app"]["tags"] == before


def test_a_signature_shared_by_a_kept_image_keeps_its_tag(monkeypatch):
    # cosign-style signatures carry no subject, so two images can have byte-identical ones (found on the real 2.8)
    registry, digests = signed_repository(FakeDistribution2)
    registry.repos["app"]["tags"][cosign_tag(digests["new"], "sig")] = digests["old-sig"]
    ok, result = run_module(monkeypatch, dict(repository="app", keep_last=1), registry)
    assert ok and cosign_tag(digests["old"], "sig") in result["deleted_tags"]
    assert registry.repos["app"]["tags"][cosign_tag(digests["new"], "sig")] == digests["old-sig"]
    assert digests["old-sig"] in registry.repos["app"]["manifests"]


def stored_bytes(registry, repository, digests):
    """What the fake stores under each digest (a manifest's body or a blob's bytes), summed."""
    manifests = registry.repos[repository]["manifests"]
    return sum(len(manifests[digest][0]) if digest in manifests else len(registry.blobs[digest]) for digest in digests)


def own_blobs(registry, repository, digest):
    """A manifest's digest with its config's and its layers' digests."""
    data = json.loads(registry.repos[repository]["manifests"][digest][0])
    return [digest, data["config"]["digest"]] + [layer["digest"] for layer in data["layers"]]


@pytest.mark.parametrize("fake", [FakeDistribution2, lambda host: FakeDistribution3(host, referrers_api=True)])
def test_storage_counts_what_only_the_deleted_image_and_its_referrers_take(monkeypatch, fake):
    registry, digests = signed_repository(fake)
    deleted, kept = set(), set()
    for name in ("old", "old-sig", "old-sbom"):
        deleted.update(own_blobs(registry, "app", digests[name]))
    # Every image of the fake has the same layer and every SBOM the config {}: the kept ones take those.
    for name in ("new", "new-sig"):
        kept.update(own_blobs(registry, "app", digests[name]))
    if not getattr(registry, "referrers_api", False):
        deleted.add(registry.tag_digest("app", referrers_tag(digests["old"])))
        kept.update(own_blobs(registry, "app", digests["new-sbom"]))
    # With the referrers API, new's SBOM has no tag: not seen (documented), so the {} config counts as unlinked.
    expected = deleted - kept
    args = dict(repository="app", keep_last=1, storage=True, _ansible_check_mode=True)
    ok, plan = run_module(monkeypatch, args, registry)
    assert ok and plan["changed"]
    assert plan["storage"] == dict(manifests=len(expected & set(registry.repos["app"]["manifests"])),
                                   unlinked_blobs=len(expected),
                                   unlinked_bytes=stored_bytes(registry, "app", expected))
    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, registry)
    assert ok and result["storage"] == plan["storage"]
    ok, again = run_module(monkeypatch, args, registry)
    assert ok and not again["changed"]
    assert again["storage"] == dict(manifests=0, unlinked_blobs=0, unlinked_bytes=0)


def test_storage_reads_no_blob_and_each_manifest_once(monkeypatch):
    registry, digests = signed_repository(FakeDistribution2)
    ok, plan = run_module(monkeypatch, dict(repository="app", keep_last=1, storage=True,
                                            _ansible_check_mode=True), registry)
    assert ok and plan["storage"]["unlinked_bytes"] > 0
    gets = [call for call in registry.calls if call[0] == "get_manifest" and call[2].startswith("sha256:")]
    assert len(gets) == len(set(gets))
    # Configs are read for keep_last's creation times only: the images ranked, never the referrers.
    assert not [call for call in registry.calls if call[0] in ("open_blob", "blob_exists")]


def test_storage_only_when_asked_and_a_layer_a_kept_image_takes_is_not_counted(monkeypatch):
    plain, _digests = seeded()
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^v"], _ansible_check_mode=True), plain)
    assert ok and "storage" not in result
    with_storage, digests = seeded()
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^ci-"], storage=True,
                                              _ansible_check_mode=True), with_storage)
    assert ok and result["storage"]["manifests"] == 1
    assert result["storage"]["unlinked_bytes"] == stored_bytes(with_storage, "app", own_blobs(with_storage, "app", digests["ci-1"])[:2])


def test_storage_of_emptying_a_repository_with_an_index(monkeypatch):
    registry = FakeRegistry(REGISTRY)
    amd64 = registry.add_image("app", [], marker="amd64", layers=(b"base", b"amd64"))
    arm64 = registry.add_image("app", [], marker="arm64", layers=(b"base", b"arm64"))
    multi = registry.add_index("app", ["v1"], [amd64, arm64])
    expected = set([multi] + own_blobs(registry, "app", amd64) + own_blobs(registry, "app", arm64))
    ok, plan = run_module(monkeypatch, dict(repository="app", state="absent", storage=True,
                                            _ansible_check_mode=True), registry)
    assert ok and plan["storage"] == dict(manifests=3, unlinked_blobs=len(expected),
                                          unlinked_bytes=stored_bytes(registry, "app", expected))


# ------------------------------------------------------------------ a rule on names on a registry that untags

NAMED = ["ci-1", "ci-2", "ci-3", "ci-4", "ci-shared"]


def named_repository(fake=FakeDistribution3):
    """ci-1..ci-4 (one image each) and ci-shared (the image of the kept tag stable) go; stable and v1 stay."""
    registry = fake(REGISTRY)
    digests = dict((tag, registry.add_image("app", [tag], marker=tag)) for tag in ["ci-1", "ci-2", "ci-3", "ci-4", "v1"])
    digests["stable"] = registry.add_image("app", ["stable", "ci-shared"], marker="stable")
    return registry, digests


def requests_on(registry, tag):
    return [call for call in registry.calls if call[2] == tag or (isinstance(call[2], tuple) and tag in call[2])]


def test_a_rule_on_names_reads_no_digest_of_the_tags_it_deletes(monkeypatch):
    registry, digests = named_repository()
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^ci-"]), registry)
    assert ok and result["changed"] and result["delete_method"] == "untag"
    assert result["deleted_tags"] == NAMED and result["untagged_tags"] == NAMED and result["kept_tags"] == ["stable", "v1"]
    # the tag sharing the kept tag's image went alone; no manifest was deleted
    assert registry.repos["app"]["tags"] == {"stable": digests["stable"], "v1": digests["v1"]}
    assert set(digests.values()) <= set(registry.repos["app"]["manifests"])
    # the digests of the deleted tags were not read, so no untagged manifest is reported (none made up)
    assert result["untagged_manifests"] == [] and result["deleted_digests"] == []
    assert "not counted" in result["msg"] and "delete-untagged" in result["msg"]
    names = [(call[0], call[2]) for call in registry.calls]
    # the plan: the tag list, a HEAD per kept tag, the first selected tag, and one referrers API question
    assert names[:5] == [("list_tags", None), ("head_manifest", "stable"), ("head_manifest", "v1"),
                         ("head_manifest", "ci-1"), ("repository_request", ("GET", "referrers", digests["ci-1"]))]
    # every other selected tag: exactly one request, its tag DELETE, nothing read before it
    for tag in NAMED[1:]:
        assert requests_on(registry, tag) == [("repository_request", "app", ("DELETE", "manifests", tag))]
    # ci-1 learnt the path (re-checked, re-pointed at a throw-away, tag DELETE); one throw-away in all, gone again
    assert [call[0] for call in requests_on(registry, "ci-1")] == [
        "head_manifest", "head_manifest", "put_manifest", "repository_request", "head_manifest"]
    assert len([call for call in registry.calls if call[0] == "put_manifest"]) == 1
    assert len([call for call in registry.calls if call[0] == "delete_manifest"]) == 2  # the delete probe, the throw-away
    # plan 5, the delete probe 1, the untag probe 9 (manifest GET, re-check, config blob, PUT, DELETE, 2 HEADs,
    # throw-away delete), then one DELETE per other tag
    assert len(registry.calls) == 5 + 1 + 9 + len(NAMED) - 1


def test_a_rule_on_names_with_storage_counts_alike_in_check_mode_and_for_real(monkeypatch):
    registry, digests = named_repository()
    args = dict(repository="app", match=["^ci-"], storage=True, _ansible_check_mode=True)
    ok, plan = run_module(monkeypatch, args, registry)
    # ci-1..ci-4 take their own image; ci-shared's image stays with stable.
    own = set()
    for tag in ("ci-1", "ci-2", "ci-3", "ci-4"):
        own.update(own_blobs(registry, "app", digests[tag]))
    own -= set(own_blobs(registry, "app", digests["stable"]))
    assert ok and plan["storage"]["manifests"] == 4 and plan["storage"]["unlinked_bytes"] > 0
    assert plan["storage"]["unlinked_blobs"] == len(own)
    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, registry)
    assert ok and result["changed"] and result["delete_method"] == "untag"
    assert result["storage"] == plan["storage"]
    assert result["deleted_tags"] == plan["deleted_tags"] == NAMED


def test_a_rule_on_names_plans_alike_in_check_mode_and_converges(monkeypatch):
    registry, _digests = named_repository()
    args = dict(repository="app", match=["^ci-"], keep_tags=["^ci-4$"], _ansible_check_mode=True, _ansible_diff=True)
    ok, plan = run_module(monkeypatch, args, registry)
    assert ok and plan["changed"] and plan["delete_method"] == "undecided" and len(registry.repos["app"]["tags"]) == 7
    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, registry)
    assert ok and result["delete_method"] == "untag"
    for key in ("deleted_tags", "kept_tags", "reasons", "diff", "dangling_tags"):
        assert result[key] == plan[key], key
    assert sorted(registry.repos["app"]["tags"]) == plan["kept_tags"] == ["ci-4", "stable", "v1"]
    ok, again = run_module(monkeypatch, args, registry)
    assert ok and not again["changed"] and again["kept_tags"] == plan["kept_tags"]


def test_a_tag_repointed_after_the_tag_list_still_goes_by_its_name(monkeypatch):
    registry, digests = named_repository()
    listed = registry.list_tags

    def list_then_repoint(repository):
        tags = listed(repository)
        if "ci-3" in tags:
            registry.repos["app"]["tags"]["ci-3"] = digests["v1"]  # pushed by someone else right after the list
        return tags

    monkeypatch.setattr(registry, "list_tags", list_then_repoint)
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^ci-"]), registry)
    # the rule selects ci-3 by its name, whatever it points at; the image it now names stays with v1
    assert ok and "ci-3" in result["deleted_tags"]
    assert registry.repos["app"]["tags"] == {"stable": digests["stable"], "v1": digests["v1"]}


def test_dangling_tags_on_the_name_route(monkeypatch):
    registry, digests = named_repository()
    missing = "sha256:" + "e" * 64
    registry.repos["app"]["tags"].update({"ci-5": missing, "v9": missing})  # listed, 404: half done deletes
    args = dict(repository="app", match=["^ci-"], _ansible_check_mode=True)
    ok, plan = run_module(monkeypatch, args, registry)
    assert ok and plan["dangling_tags"] == ["ci-5", "v9"]
    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, registry)
    assert ok and result["delete_method"] == "untag" and result["deleted_tags"] == plan["deleted_tags"]
    # a kept tag is read, so v9 is found dangling; ci-5 is selected by name and goes by its tag DELETE unread
    assert result["dangling_tags"] == ["v9"] and "ci-5" in result["untagged_tags"]
    assert registry.repos["app"]["tags"] == {"stable": digests["stable"], "v1": digests["v1"]}
    assert registry.dangling_tags("app") == []


def test_a_left_over_throwaway_on_the_first_tag_hands_over_to_the_digest_route(monkeypatch):
    registry, digests = named_repository()
    # a run killed between its two writes left ci-1 on its throw-away manifest
    registry.add_blob("app", THROWAWAY_CONFIG)
    registry.put_manifest("app", "ci-1", throwaway_manifest("app", "ci-1"), OCI_MANIFEST)
    leftover = registry.tag_digest("app", "ci-1")
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^ci-"]), registry)
    assert ok and result["dangling_tags"] == ["ci-1"] and result["deleted_tags"] == NAMED
    assert leftover not in registry.repos["app"]["manifests"]
    assert registry.repos["app"]["tags"] == {"stable": digests["stable"], "v1": digests["v1"]}
    # the digest route read every tag
    assert len([call for call in registry.calls if call[0] == "head_manifest" and call[2] == "ci-3"]) >= 1


class StoppedAfterTagDeletes(FakeDistribution3):
    """SIGTERM arrives once ``count`` tag DELETEs have been answered."""

    def __init__(self, host, count):
        super().__init__(host)
        self.count = count

    def repository_request(self, method, repository, parts, what, query=None, ok=(200,)):
        response = super().repository_request(method, repository, parts, what, query, ok)
        if method == "DELETE" and ":" not in parts[1]:
            self.count -= 1
            if self.count == 0:
                self.stop.request()
        return response


def test_a_run_stopped_on_the_name_route_converges_on_the_next(monkeypatch):
    registry = StoppedAfterTagDeletes(REGISTRY, 2)
    digests = dict((tag, registry.add_image("app", [tag], marker=tag)) for tag in NAMED + ["v1"])
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^ci-"]), registry)
    assert not ok and "stopped by SIGTERM" in result["msg"] and "\n" not in result["msg"]
    assert result["deleted_tags"] == ["ci-1", "ci-2"] and sorted(registry.repos["app"]["tags"]) == NAMED[2:] + ["v1"]
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^ci-"]), registry)
    assert ok and result["deleted_tags"] == NAMED[2:] and registry.repos["app"]["tags"] == {"v1": digests["v1"]}
    assert not any(THROWAWAY_ANNOTATION.encode() in body for body, _type in registry.repos["app"]["manifests"].values())


def test_a_rule_on_names_on_2_8_takes_the_digest_route_unchanged(monkeypatch):
    registry, digests = named_repository(FakeDistribution2)
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^ci-"]), registry)
    assert ok and result["delete_method"] == "throwaway" and result["deleted_tags"] == NAMED
    # images that lost every tag are deleted by digest, ci-1's too (it was the untag probe); ci-shared was untagged
    assert sorted(result["deleted_digests"]) == sorted(digests[tag] for tag in NAMED[:4])
    assert result["untagged_tags"] == ["ci-shared"] and result["untagged_manifests"] == []
    assert set(registry.repos["app"]["manifests"]) == {digests["stable"], digests["v1"]}
    assert registry.repos["app"]["tags"] == {"stable": digests["stable"], "v1": digests["v1"]}
    # every tag read once for the plan (ci-1 once more, re-checked before its throw-away)
    heads = [call[2] for call in registry.calls if call[0] == "head_manifest" and call[2] in NAMED + ["stable", "v1"]]
    assert sorted(heads) == sorted(NAMED + ["stable", "v1", "ci-1", "ci-shared"])


@pytest.mark.parametrize("referrer", ["cosign_tag", "referrers_api"])
def test_a_rule_on_names_with_referrers_takes_the_digest_route(monkeypatch, referrer):
    registry, digests = named_repository(lambda host: FakeDistribution3(host, referrers_api=referrer == "referrers_api"))
    gone, kept = {}, {}
    for image, found in (("ci-2", gone), ("v1", kept)):
        if referrer == "cosign_tag":
            found["tag"] = cosign_tag(digests[image], "sig")
            found["digest"] = registry.add_image("app", [found["tag"]], marker="sig of " + image)
        else:
            found["digest"], _body = registry.add_referrer("app", digests[image], artifact_type="application/spdx+json",
                                                           payload=b"sbom of " + image.encode())
    args = dict(repository="app", match=["^ci-"], _ansible_check_mode=True)
    ok, plan = run_module(monkeypatch, args, registry)
    assert ok and plan["changed"]
    args["_ansible_check_mode"] = False
    ok, result = run_module(monkeypatch, args, registry)
    assert ok and result["delete_method"] == "untag" and result["deleted_tags"] == plan["deleted_tags"]
    assert result["deleted_referrers"] == plan["deleted_referrers"] and len(result["deleted_referrers"]) == 1
    manifests, tags = registry.repos["app"]["manifests"], registry.repos["app"]["tags"]
    assert kept["digest"] in manifests and digests["stable"] in manifests
    if referrer == "cosign_tag":
        assert gone["tag"] not in tags and tags[kept["tag"]] == kept["digest"]
    else:
        assert gone["digest"] not in manifests
    # digests were read, so the manifests left untagged are reported
    assert digests["ci-2"] in result["untagged_manifests"]


def test_a_garbage_referrers_answer_stops_the_name_route_before_anything_is_deleted(monkeypatch):
    registry, _digests = named_repository(lambda host: FakeDistribution3(host, referrers_api=True))
    registry.referrers_answer = FakeResponse(200, b"<html>not an index</html>", {"Content-Type": OCI_INDEX})
    before = dict(registry.repos["app"]["tags"])
    ok, result = run_module(monkeypatch, dict(repository="app", match=["^ci-"]), registry)
    assert not ok and "not JSON" in result["msg"] and "\n" not in result["msg"]
    assert registry.repos["app"]["tags"] == before
    assert not any(call[0] in ("put_manifest", "delete_manifest") for call in registry.calls)
