# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.retention import (
    RetentionError,
    RetentionPolicy,
    TagInfo,
    parse_duration,
)

NOW = datetime(2026, 1, 31, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, seconds", [
    ("30d", 30 * 86400),
    ("12h", 12 * 3600),
    ("90m", 5400),
    ("45s", 45),
    ("2w", 14 * 86400),
    ("1d12h", 36 * 3600),
    ("1d 12h", 36 * 3600),
    (" 7D ", 7 * 86400),
    ("3600", 3600),
    (600, 600),
    ("0d", 0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "d", "30x", "1.5d", "-3d", "abc", "3d-", None, True, -5, "30 days"])
def test_parse_duration_rejects(text):
    with pytest.raises(RetentionError):
        parse_duration(text)


def infos(*entries):
    """TagInfo from (tag, days before NOW or None) pairs, each tag its own digest."""
    result = []
    for tag, age in entries:
        created = NOW - timedelta(days=age) if age is not None else None
        result.append(TagInfo(tag=tag, digest="sha256:" + tag, created=created))
    return result


def test_no_rule_deletes_nothing_even_with_keep_tags():
    plan = RetentionPolicy.from_options(keep_tags=["^latest$"]).select(infos(("a", 1), ("latest", 2)), NOW)
    assert plan.delete == []
    assert plan.keep == ["a", "latest"]


def test_keep_last_keeps_newest_by_creation_time_not_name():
    tags = infos(("v10", 1), ("v9", 2), ("v2", 30), ("v1", 40))
    plan = RetentionPolicy.from_options(keep_last=2).select(tags, NOW)
    assert plan.keep == ["v10", "v9"]
    assert plan.delete == ["v1", "v2"]
    assert plan.reasons["v10"] == "keep_last"


def test_keep_last_zero_deletes_all_candidates_and_unknown_times_rank_oldest():
    tags = infos(("a", 1), ("b", None), ("c", 3))
    assert RetentionPolicy.from_options(keep_last=0).select(tags, NOW).delete == ["a", "b", "c"]
    assert RetentionPolicy.from_options(keep_last=2).select(tags, NOW).delete == ["b"]


def test_keep_last_ties_are_deterministic():
    tags = [TagInfo(tag=name, digest="sha256:same", created=NOW) for name in ("b", "c", "a")]
    plan = RetentionPolicy.from_options(keep_last=1).select(tags, NOW)
    assert plan.keep == ["c"]
    assert plan.delete == ["a", "b"]


def test_match_limits_candidates_and_keep_last_counts_only_candidates():
    tags = infos(("ci-1", 10), ("ci-2", 5), ("ci-3", 1), ("latest", 50), ("v1", 60))
    plan = RetentionPolicy.from_options(match=["^ci-"], keep_last=1).select(tags, NOW)
    assert plan.delete == ["ci-1", "ci-2"]
    assert plan.keep == ["ci-3", "latest", "v1"]
    assert plan.reasons["latest"] == "not matched by match"


def test_match_alone_deletes_every_matching_tag_except_keep_tags():
    tags = infos(("ci-1", 10), ("ci-keep", 5), ("v1", 1))
    plan = RetentionPolicy.from_options(match=["^ci-"], keep_tags=["keep$"]).select(tags, NOW)
    assert plan.delete == ["ci-1"]
    assert plan.reasons["ci-keep"] == "keep_tags"


def test_keep_tags_win_over_every_other_rule():
    tags = infos(("latest", 400), ("old", 400), ("new", 1))
    plan = RetentionPolicy.from_options(keep_tags=["^latest$"], older_than="30d", keep_last=0).select(tags, NOW)
    assert plan.delete == ["old"]
    assert plan.reasons["latest"] == "keep_tags"
    assert plan.reasons["new"] == "newer than older_than"


def test_older_than_keeps_unknown_and_recent():
    tags = infos(("old", 31), ("recent", 29), ("unknown", None))
    plan = RetentionPolicy.from_options(older_than="30d").select(tags, NOW)
    assert plan.delete == ["old"]
    assert plan.reasons["unknown"] == "creation time unknown"


def test_keep_last_and_older_than_combine():
    tags = infos(("a", 100), ("b", 90), ("c", 10), ("d", 5))
    plan = RetentionPolicy.from_options(keep_last=1, older_than="30d").select(tags, NOW)
    # d is kept as the newest; c is not old enough; a and b go
    assert plan.delete == ["a", "b"]
    assert plan.keep == ["c", "d"]


def test_regex_uses_search_semantics():
    tags = infos(("release-1", 1), ("1-release", 1), ("other", 1))
    plan = RetentionPolicy.from_options(match=["release"]).select(tags, NOW)
    assert plan.delete == ["1-release", "release-1"]


def test_invalid_options():
    with pytest.raises(RetentionError, match="match"):
        RetentionPolicy.from_options(match=["(["])
    with pytest.raises(RetentionError, match="keep_tags"):
        RetentionPolicy.from_options(keep_tags=["*"])
    with pytest.raises(RetentionError, match="keep_last"):
        RetentionPolicy.from_options(keep_last=-1)
    with pytest.raises(RetentionError):
        RetentionPolicy.from_options(older_than="soon")


def test_needs_creation_time():
    assert not RetentionPolicy.from_options(match=["x"]).needs_creation_time
    assert RetentionPolicy.from_options(keep_last=3).needs_creation_time
    assert RetentionPolicy.from_options(older_than="1d").needs_creation_time
