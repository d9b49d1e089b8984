# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.registry_delete import (
    PROBE_DIGEST,
    THROWAWAY_ANNOTATION,
    THROWAWAY_CONFIG,
    THROWAWAY_CONFIG_DIGEST,
    TagDeleteError,
    TagRemover,
    plan_removal,
    plan_single_tag,
    probe_delete_allowed,
    remove_single_tag,
    throwaway_manifest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryDeleteDisabled
from ansible_collections.dockhand.registry.plugins.module_utils.stop_request import StopRequest
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake import FakeRegistry, sha256

REPO = "team/app"


def three_tags_one_digest():
    registry = FakeRegistry()
    shared = registry.add_image(REPO, ["a", "b", "c"])
    solo = registry.add_image(REPO, ["solo"], marker="solo")
    return registry, shared, solo


def test_plan_removal_groups_by_digest():
    tag_digests = {"a": "d1", "b": "d1", "c": "d2", "d": "d3", "e": "d3", "f": "d4"}
    plan = plan_removal(tag_digests, ["a", "b", "c", "d", "f"], protected=["d4"])
    # d1 loses all its tags: one delete by digest; d3 keeps e: d is untagged; d4 is protected
    assert plan.delete_digests == {"d1": ["a", "b"], "d2": ["c"]}
    assert plan.untag == {"d": "d3", "f": "d4"}
    assert plan.tags == ["a", "b", "c", "d", "f"]


def test_plan_removal_nothing_selected():
    plan = plan_removal({"a": "d1"}, [])
    assert plan.delete_digests == {} and plan.untag == {} and plan.tags == []


def test_throwaway_manifests_are_unique_and_minimal():
    first = throwaway_manifest(REPO, "a")
    second = throwaway_manifest(REPO, "a")
    assert sha256(first) != sha256(second)
    data = json.loads(first)
    assert data["layers"] == []
    assert data["config"] == {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": THROWAWAY_CONFIG_DIGEST,
        "size": len(THROWAWAY_CONFIG),
    }
    assert data["annotations"][THROWAWAY_ANNOTATION].startswith("team/app:a ")
    assert THROWAWAY_CONFIG_DIGEST == sha256(THROWAWAY_CONFIG)


def test_shared_tag_is_untagged_and_the_others_survive():
    registry, shared, solo = three_tags_one_digest()
    plan = plan_single_tag(registry, REPO, "b")
    assert plan.action == "untag"
    assert plan.sharing_tags == ["a", "c"]
    assert remove_single_tag(registry, REPO, "b", plan) is True
    tags = registry.repos[REPO]["tags"]
    assert tags == {"a": shared, "c": shared, "solo": solo}
    # the shared manifest stays, the throw-away one is gone
    assert set(registry.repos[REPO]["manifests"]) == {shared, solo}
    # order: the tag was checked right before the throw-away manifest replaced it
    names = [call[0] for call in registry.calls]
    put = names.index("put_manifest")
    assert names[put - 1] in ("head_manifest", "upload_blob", "blob_exists")
    # then the untag probe (a tag DELETE, 400 on 2.8), then the throw-away goes by digest
    assert names[put + 1:put + 3] == ["repository_request", "delete_manifest"]


def test_only_tag_is_deleted_by_digest():
    registry, shared, solo = three_tags_one_digest()
    plan = plan_single_tag(registry, REPO, "solo")
    assert plan.action == "delete_digest" and plan.digest == solo and plan.sharing_tags == []
    assert remove_single_tag(registry, REPO, "solo", plan) is True
    assert solo not in registry.repos[REPO]["manifests"]
    assert not any(call[0] == "put_manifest" for call in registry.calls)


def test_absent_tag_changes_nothing():
    registry, shared, solo = three_tags_one_digest()
    plan = plan_single_tag(registry, REPO, "missing")
    assert plan.action == "absent"
    assert remove_single_tag(registry, REPO, "missing", plan) is False


def test_tag_listed_by_a_kept_index_is_untagged_not_deleted():
    registry = FakeRegistry()
    child = registry.add_image(REPO, ["amd64"])
    index = registry.add_index(REPO, ["latest"], [child])
    plan = plan_single_tag(registry, REPO, "amd64")
    assert plan.action == "untag" and plan.referencing_indexes == [index]
    remove_single_tag(registry, REPO, "amd64", plan)
    assert child in registry.repos[REPO]["manifests"]
    assert registry.repos[REPO]["tags"] == {"latest": index}


def test_failed_delete_of_throwaway_restores_the_tag():
    registry, shared, solo = three_tags_one_digest()
    plan = plan_single_tag(registry, REPO, "b")
    registry.fail["delete_manifest"] = lambda repo, digest: digest != PROBE_DIGEST
    with pytest.raises(TagDeleteError, match="restored to " + shared):
        remove_single_tag(registry, REPO, "b", plan)
    assert registry.repos[REPO]["tags"]["b"] == shared
    assert registry.repos[REPO]["tags"]["a"] == shared


def test_failed_restore_says_how_to_repair():
    registry, shared, solo = three_tags_one_digest()
    plan = plan_single_tag(registry, REPO, "b")
    registry.fail["delete_manifest"] = lambda repo, digest: digest != PROBE_DIGEST
    puts = []

    def fail_second_put(repo, reference):
        puts.append(reference)
        return len(puts) > 1
    registry.fail["put_manifest"] = fail_second_put
    with pytest.raises(TagDeleteError, match="ALSO FAILED.*source=team/app@" + shared):
        remove_single_tag(registry, REPO, "b", plan)


def test_failed_put_leaves_the_tag_alone():
    registry, shared, solo = three_tags_one_digest()
    plan = plan_single_tag(registry, REPO, "b")
    registry.fail["put_manifest"] = lambda repo, reference: True
    with pytest.raises(TagDeleteError, match="still points at " + shared):
        remove_single_tag(registry, REPO, "b", plan)
    assert registry.repos[REPO]["tags"]["b"] == shared


def test_tag_that_moved_is_not_touched():
    registry, shared, solo = three_tags_one_digest()
    plan = plan_single_tag(registry, REPO, "b")
    registry.repos[REPO]["tags"]["b"] = solo  # someone re-tagged it meanwhile
    with pytest.raises(TagDeleteError, match="changed while being removed"):
        remove_single_tag(registry, REPO, "b", plan)
    assert registry.repos[REPO]["tags"]["b"] == solo
    assert not any(call[0] == "put_manifest" for call in registry.calls)


def test_deletes_disabled_is_detected_before_any_write():
    registry, shared, solo = three_tags_one_digest()
    registry.deletes_enabled = False
    plan = plan_single_tag(registry, REPO, "b")
    with pytest.raises(RegistryDeleteDisabled, match="team/app.*storage.delete.enabled"):
        remove_single_tag(registry, REPO, "b", plan)
    assert not any(call[0] in ("put_manifest", "upload_blob") for call in registry.calls)
    assert registry.repos[REPO]["tags"]["b"] == shared


def test_probe_passes_when_deletes_are_enabled():
    registry, shared, solo = three_tags_one_digest()
    probe_delete_allowed(registry, REPO)
    assert registry.calls[-1] == ("delete_manifest", REPO, PROBE_DIGEST)


def test_bulk_removal_deletes_whole_digests_once_and_untags_shared_ones():
    registry = FakeRegistry()
    shared = registry.add_image(REPO, ["keep", "drop-shared"], marker="1")
    gone = registry.add_image(REPO, ["drop-1", "drop-2"], marker="2")
    other = registry.add_image(REPO, ["drop-3"], marker="3")
    tag_digests = dict((tag, digest) for tag, digest in registry.repos[REPO]["tags"].items())
    plan = plan_removal(tag_digests, ["drop-shared", "drop-1", "drop-2", "drop-3"])
    result = TagRemover(registry, REPO).execute(plan)
    assert result.removed_tags == ["drop-1", "drop-2", "drop-3", "drop-shared"]
    assert sorted(result.deleted_digests) == sorted([gone, other])
    assert result.untagged == ["drop-shared"]
    assert registry.repos[REPO]["tags"] == {"keep": shared}
    deletes = [call[2] for call in registry.calls if call[0] == "delete_manifest"]
    assert deletes.count(gone) == 1


def test_bulk_removal_reports_partial_progress():
    registry = FakeRegistry()
    first = registry.add_image(REPO, ["a"], marker="1")
    second = registry.add_image(REPO, ["b"], marker="2")
    registry.fail["delete_manifest"] = lambda repo, digest: digest == second
    plan = plan_removal({"a": first, "b": second}, ["a", "b"])
    with pytest.raises(TagDeleteError, match=r"1 of 2 tags removed") as info:
        TagRemover(registry, REPO).execute(plan)
    assert info.value.result.removed_tags == ["a"]
    assert registry.repos[REPO]["tags"] == {"b": second}


# ------------------------------------------------------------------ dangling tags

def shared_image(tags):
    registry = FakeRegistry()
    digest = registry.add_image(REPO, tags)
    return registry, digest


def test_plan_removal_always_clears_dangling_tags():
    plan = plan_removal({"a": "d1"}, [], dangling=["x", "w"])
    assert plan.dangling == ["w", "x"] and plan.tags == ["w", "x"] and plan.untag == {}


def test_half_done_delete_of_a_throwaway_is_repaired_by_the_tag_list():
    registry, digest = shared_image(["keep", "a", "b"])

    half_done = []

    def put(repository, reference, body, media_type, real_put=registry.put_manifest):
        stored = real_put(repository, reference, body, media_type)
        if THROWAWAY_ANNOTATION.encode() in body and reference == "a" and not half_done:
            half_done.append(stored)
            registry.half_deletes.add(stored)  # its delete answers 500, then 404, and leaves "a" dangling
        return stored

    registry.put_manifest = put
    result = TagRemover(registry, REPO).execute(plan_removal({"keep": digest, "a": digest, "b": digest}, ["a", "b"]))
    assert result.removed_tags == ["a", "b"]
    assert sorted(registry.repos[REPO]["tags"]) == ["keep"]
    assert registry.dangling_tags(REPO) == []
    # The unclear answer was checked against the tag list, and "a" cleared through a second throw-away.
    assert ("list_tags", REPO, None) in registry.calls
    assert len([call for call in registry.calls if call[:2] == ("put_manifest", REPO) and call[2] == "a"]) == 2


def test_half_done_delete_by_digest_clears_every_tag_it_left():
    registry, digest = shared_image(["a", "b"])
    keep = registry.add_image(REPO, ["keep"], marker="keep")
    registry.half_deletes.add(digest)
    result = TagRemover(registry, REPO).execute(plan_removal({"a": digest, "b": digest, "keep": keep}, ["a", "b"]))
    assert result.deleted_digests == [digest]
    assert sorted(registry.repos[REPO]["tags"]) == ["keep"]
    assert registry.dangling_tags(REPO) == []


def test_dangling_tags_in_a_plan_are_cleared():
    registry, digest = shared_image(["keep"])
    registry.repos[REPO]["tags"].update(x="sha256:" + "e" * 64, y="sha256:" + "f" * 64)  # left by anything
    result = TagRemover(registry, REPO).execute(plan_removal({"keep": digest}, [], dangling=["x", "y"]))
    assert result.dangling == ["x", "y"] and result.removed_tags == ["x", "y"]
    assert list(registry.repos[REPO]["tags"]) == ["keep"]


def test_repairs_are_bounded_when_every_delete_is_half_done():
    registry, digest = shared_image(["keep", "a"])
    real_put = registry.put_manifest

    def put(repository, reference, body, media_type):
        stored = real_put(repository, reference, body, media_type)
        if THROWAWAY_ANNOTATION.encode() in body:
            registry.half_deletes.add(stored)
        return stored

    registry.put_manifest = put
    with pytest.raises(TagDeleteError, match="tags a of team/app are still listed but resolve to no image after 3"
                                             " repairs") as info:
        TagRemover(registry, REPO).execute(plan_removal({"keep": digest, "a": digest}, ["a"]))
    assert "\n" not in str(info.value)


def test_a_tag_on_another_runs_throwaway_is_settled_not_an_error():
    registry, digest = shared_image(["keep", "a"])
    other_run = TagRemover(registry, REPO)
    other_run._ensure_throwaway_config()  # pylint: disable=protected-access
    registry.put_manifest(REPO, "a", throwaway_manifest(REPO, "a"), "application/vnd.oci.image.manifest.v1+json")
    result = TagRemover(registry, REPO).execute(plan_removal({"keep": digest, "a": digest}, ["a"]))
    assert result.removed_tags == ["a"]
    assert list(registry.repos[REPO]["tags"]) == ["keep"]


def test_single_dangling_tag_plan_and_removal():
    registry, digest = shared_image(["keep"])
    registry.repos[REPO]["tags"]["gone"] = "sha256:" + "e" * 64
    plan = plan_single_tag(registry, REPO, "gone")
    assert plan.action == "dangling"
    assert remove_single_tag(registry, REPO, "gone", plan)
    assert list(registry.repos[REPO]["tags"]) == ["keep"]
    assert plan_single_tag(registry, REPO, "gone").action == "absent"
    assert registry.tag_digest(REPO, "keep") == digest


def test_stop_between_the_two_writes_restores_the_tag():
    registry, digest = shared_image(["keep", "a", "b"])
    stop = StopRequest()
    real_put = registry.put_manifest

    def put(repository, reference, body, media_type):
        stored = real_put(repository, reference, body, media_type)
        if THROWAWAY_ANNOTATION.encode() in body:
            stop.request()  # SIGTERM arrives right after the throw-away PUT
        return stored

    registry.put_manifest = put
    registry.stop = stop
    with pytest.raises(TagDeleteError) as info:
        TagRemover(registry, REPO, stop).execute(plan_removal({"keep": digest, "a": digest, "b": digest}, ["a", "b"]))
    assert "stopped by SIGTERM while removing tag team/app:a; the tag was restored to " + digest in str(info.value)
    assert info.value.result.removed_tags == []
    # a is back on its image; b was never started
    assert registry.repos[REPO]["tags"] == {"keep": digest, "a": digest, "b": digest}
    assert not [call for call in registry.calls if call[0] == "delete_manifest"]
