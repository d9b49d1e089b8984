# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tag removal on a registry that untags (the v3 fake) and on one that cannot (the 2.8 fake)."""

from __future__ import annotations

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.referrers import UntagSupport
from ansible_collections.dockhand.registry.plugins.module_utils.registry_delete import (
    THROWAWAY_ANNOTATION,
    RemovalPlan,
    TagDeleteError,
    TagRemover,
    plan_removal,
    plan_single_tag,
    remove_single_tag,
)
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake_oci import (
    FakeDistribution2,
    FakeDistribution3,
)

REPO = "team/app"


def seeded(registry):
    """shared: s1, s2 (both go) and keep (stays); solo-1, solo-2: one tag each, both go."""
    digests = dict(shared=registry.add_image(REPO, ["s1", "s2", "keep"], marker="shared"))
    for name in ("solo-1", "solo-2"):
        digests[name] = registry.add_image(REPO, [name], marker=name)
    digests["pair"] = registry.add_image(REPO, ["p1", "p2"], marker="pair")
    return registry, digests


REMOVED = ["p1", "p2", "s1", "s2", "solo-1", "solo-2"]


def removal_plan(registry):
    tags = dict(registry.repos[REPO]["tags"])
    return plan_removal(tags, REMOVED)


def throwaway_puts(registry):
    return [call for call in registry.calls if call[0] == "put_manifest" and ":" not in call[2]]


def user_digest_deletes(registry, digests):
    return [call[2] for call in registry.calls if call[0] == "delete_manifest" and call[2] in digests.values()]


def test_on_an_untag_registry_every_tag_goes_by_tag_delete_after_one_probe():
    registry, digests = seeded(FakeDistribution3())
    result = TagRemover(registry, REPO).execute(removal_plan(registry))
    assert result.delete_method == "untag"
    assert result.removed_tags == REMOVED and sorted(result.untagged) == REMOVED
    assert registry.repos[REPO]["tags"] == {"keep": digests["shared"]}
    # no user manifest deleted by digest: those that lost every tag stay, untagged, for GC with delete-untagged
    assert user_digest_deletes(registry, digests) == []
    assert result.deleted_digests == [] and result.left_untagged == sorted(
        [digests["pair"], digests["solo-1"], digests["solo-2"]])
    assert set(digests.values()) <= set(registry.repos[REPO]["manifests"])
    # detected once: a single throw-away was written (the probe), and it is gone again
    assert len(throwaway_puts(registry)) == 1
    assert not any(THROWAWAY_ANNOTATION.encode() in body for body, _type in registry.repos[REPO]["manifests"].values())
    tag_deletes = [call for call in registry.calls if call[0] == "repository_request" and call[2][0] == "DELETE"]
    assert len(tag_deletes) == len(REMOVED)


def test_on_a_2_8_registry_the_throwaway_path_removes_the_same_tags():
    registry, digests = seeded(FakeDistribution2())
    result = TagRemover(registry, REPO).execute(removal_plan(registry))
    assert result.delete_method == "throwaway"
    assert result.removed_tags == REMOVED and sorted(result.untagged) == ["s1", "s2"]
    assert registry.repos[REPO]["tags"] == {"keep": digests["shared"]}
    # manifests that lost every tag are deleted by digest; the shared one stays
    assert set(registry.repos[REPO]["manifests"]) == {digests["shared"]}
    assert result.left_untagged == []
    assert sorted(result.deleted_digests) == sorted([digests["pair"], digests["solo-1"], digests["solo-2"]])
    # the probe (one 400 DIGEST_INVALID) is asked once per run, never again
    probes = [call for call in registry.calls if call[0] == "repository_request"]
    assert len(probes) == 1


@pytest.mark.parametrize("fake", [FakeDistribution2, FakeDistribution3])
def test_a_re_run_converges_and_plans_alike(fake):
    registry, _digests = seeded(fake())
    before = removal_plan(registry)
    TagRemover(registry, REPO).execute(before)
    again = plan_removal(dict(registry.repos[REPO]["tags"]), REMOVED)
    assert again.tags == []
    assert TagRemover(registry, REPO).execute(again).removed_tags == []


def test_the_plan_is_the_same_on_both_registries():
    plans = [removal_plan(seeded(fake())[0]) for fake in (FakeDistribution2, FakeDistribution3)]
    assert plans[0].tags == plans[1].tags == REMOVED


def test_a_failing_probe_restores_the_tag_and_removes_nothing_else():
    registry, digests = seeded(FakeDistribution3())
    registry.fail["repository_request"] = lambda repo, argument: argument[0] == "DELETE"
    with pytest.raises(TagDeleteError) as failure:
        TagRemover(registry, REPO).execute(removal_plan(registry))
    assert "the tag was restored" in str(failure.value)
    assert "0 of 6 tags removed" in str(failure.value)
    assert sorted(registry.repos[REPO]["tags"]) == sorted(REMOVED + ["keep"])
    assert registry.repos[REPO]["tags"]["p1"] == digests["pair"]


def test_a_tag_that_moved_is_left_alone_on_the_untag_path():
    registry, digests = seeded(FakeDistribution3())
    support = UntagSupport()
    first = plan_removal(dict(registry.repos[REPO]["tags"]), ["s1"])
    TagRemover(registry, REPO, untag_support=support).execute(first)
    assert support.supported is True
    stale_plan = plan_removal(dict(registry.repos[REPO]["tags"]), ["s2"])
    registry.repos[REPO]["tags"]["s2"] = digests["pair"]  # someone re-pointed it after the plan was made
    with pytest.raises(TagDeleteError, match="now points at"):
        TagRemover(registry, REPO, untag_support=support).execute(stale_plan)
    assert registry.repos[REPO]["tags"]["s2"] == digests["pair"]


@pytest.mark.parametrize("fake, method", [(FakeDistribution2, "throwaway"), (FakeDistribution3, "untag")])
def test_single_tag_removal_reports_its_method(fake, method):
    registry, digests = seeded(fake())
    plan = plan_single_tag(registry, REPO, "s1")
    assert plan.action == "untag"
    support = UntagSupport()
    assert remove_single_tag(registry, REPO, "s1", plan, untag_support=support) is True
    assert support.method == method
    assert registry.repos[REPO]["tags"]["keep"] == digests["shared"] and "s1" not in registry.repos[REPO]["tags"]
    assert user_digest_deletes(registry, digests) == []


def test_tags_by_name_go_with_one_tag_delete_each_and_nothing_read():
    registry, digests = seeded(FakeDistribution3())
    support = UntagSupport()
    TagRemover(registry, REPO, untag_support=support).execute(plan_removal(dict(registry.repos[REPO]["tags"]), ["s1"]))
    assert support.supported is True
    registry.calls.clear()
    result = TagRemover(registry, REPO, untag_support=support).execute(RemovalPlan(by_name=["p1", "s2", "solo-1"]))
    assert result.removed_tags == result.untagged == ["p1", "s2", "solo-1"] and result.delete_method == "untag"
    assert registry.calls == [("repository_request", REPO, ("DELETE", "manifests", tag)) for tag in ["p1", "s2", "solo-1"]]
    # the kept tag sharing s2's image, and every manifest, stay
    assert registry.repos[REPO]["tags"]["keep"] == digests["shared"] and set(digests.values()) <= set(
        registry.repos[REPO]["manifests"])


@pytest.mark.parametrize("fake, supported", [(FakeDistribution2, False), (FakeDistribution3, None)])
def test_tags_by_name_are_refused_unless_the_registry_is_known_to_untag(fake, supported):
    registry, _digests = seeded(fake())
    support = UntagSupport()
    support.supported = supported
    with pytest.raises(TagDeleteError, match="not known to delete single tags; nothing was done"):
        TagRemover(registry, REPO, untag_support=support).execute(RemovalPlan(by_name=["s1"]))
    assert registry.calls == []
