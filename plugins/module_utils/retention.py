# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention policies for the tags of one repository (pure functions, no I/O).

A policy selects tags to delete:

* ``match``: only tags matching one of these regexes are candidates (all tags when empty);
* ``keep_tags``: tags matching one of these regexes are never deleted;
* ``keep_last``: of the candidates, the N newest by image creation time are kept;
* ``older_than``: of the candidates, only images created before ``now - older_than`` are deleted.

When neither ``keep_last``, ``older_than`` nor ``match`` is set the policy deletes nothing.
Regexes use ``re.search`` semantics, so anchor them (``^v1\\.``) to match whole tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import List, Optional, Sequence

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError

_DURATION_UNITS = {
    "w": 7 * 86400,
    "d": 86400,
    "h": 3600,
    "m": 60,
    "s": 1,
}
_DURATION_PART_RE = re.compile(r"(\d+)\s*([wdhms])")
_DURATION_RE = re.compile(r"^(?:\s*\d+\s*[wdhms])+\s*$")


class RetentionError(DockhandError, ValueError):
    """Raised for an invalid duration or regex in a retention policy."""


def parse_duration(text) -> timedelta:
    """Parse ``30d``, ``12h``, ``1w2d``, ``90m``, ``45s`` (or plain seconds) into a timedelta."""
    if isinstance(text, bool):
        raise RetentionError("invalid duration %r" % (text,))
    if isinstance(text, int):
        seconds = text
    else:
        if not isinstance(text, str) or not text.strip():
            raise RetentionError("invalid duration %r: use a number with a unit, like 30d or 12h" % (text,))
        value = text.strip().lower()
        if value.isdigit():
            seconds = int(value)
        elif _DURATION_RE.match(value):
            seconds = sum(int(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART_RE.findall(value))
        else:
            raise RetentionError(
                "invalid duration %r: use numbers with the units w, d, h, m, s, like 30d, 12h or 1d12h" % (text,)
            )
    if seconds < 0:
        raise RetentionError("invalid duration %r: must not be negative" % (text,))
    return timedelta(seconds=seconds)


def compile_patterns(patterns: Optional[Sequence[str]], option: str) -> List[re.Pattern]:
    """Compile the regexes of option ``option``, raising RetentionError naming the bad one."""
    compiled = []
    for pattern in patterns or ():
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise RetentionError("invalid regular expression %r in %s: %s" % (pattern, option, exc))
    return compiled


@dataclass(frozen=True)
class TagInfo:
    """One tag as the policy sees it: its digest and its image's creation time (None if unknown)."""

    tag: str
    digest: str
    created: Optional[datetime] = None


@dataclass
class RetentionPlan:
    """The outcome of a policy: tag names to delete and to keep (both sorted), and why each is kept."""

    delete: List[str] = field(default_factory=list)
    keep: List[str] = field(default_factory=list)
    reasons: dict = field(default_factory=dict)


@dataclass
class RetentionPolicy:
    """A validated retention policy; build it with ``RetentionPolicy.from_options``."""

    keep_last: Optional[int] = None
    keep_tags: List[re.Pattern] = field(default_factory=list)
    match: List[re.Pattern] = field(default_factory=list)
    older_than: Optional[timedelta] = None

    @classmethod
    def from_options(cls, keep_last=None, keep_tags=None, match=None, older_than=None):
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0):
            raise RetentionError("keep_last must be an integer of 0 or more, got %r" % (keep_last,))
        return cls(
            keep_last=keep_last,
            keep_tags=compile_patterns(keep_tags, "keep_tags"),
            match=compile_patterns(match, "match"),
            older_than=parse_duration(older_than) if older_than is not None else None,
        )

    @property
    def selects_anything(self) -> bool:
        return self.keep_last is not None or self.older_than is not None or bool(self.match)

    @property
    def needs_creation_time(self) -> bool:
        """Whether ``select`` looks at ``TagInfo.created`` (fetching it costs two requests per image)."""
        return self.keep_last is not None or self.older_than is not None

    def select(self, tags: Sequence[TagInfo], now: Optional[datetime] = None) -> RetentionPlan:
        """Split ``tags`` into the ones to delete and the ones to keep.

        Tags whose creation time is unknown are never deleted by ``older_than`` and rank as the
        oldest for ``keep_last``; ties in creation time are broken by tag name so that the
        outcome is deterministic.
        """
        now = now or datetime.now(timezone.utc)
        reasons = {}
        candidates = []
        for info in tags:
            if any(pattern.search(info.tag) for pattern in self.keep_tags):
                reasons[info.tag] = "keep_tags"
            elif not self.selects_anything:
                reasons[info.tag] = "no rule selects tags"
            elif self.match and not any(pattern.search(info.tag) for pattern in self.match):
                reasons[info.tag] = "not matched by match"
            else:
                candidates.append(info)

        if self.keep_last is not None:
            oldest = datetime.min.replace(tzinfo=timezone.utc)
            # Newest first; among equal times the tag name decides, in reverse so that
            # v10 ranks before v9 only when the times say so.
            ranked = sorted(candidates, key=lambda info: (info.created or oldest, info.tag), reverse=True)
            for info in ranked[:self.keep_last]:
                reasons[info.tag] = "keep_last"
            candidates = ranked[self.keep_last:]

        if self.older_than is not None:
            cutoff = now - self.older_than
            remaining = []
            for info in candidates:
                if info.created is None:
                    reasons[info.tag] = "creation time unknown"
                elif info.created >= cutoff:
                    reasons[info.tag] = "newer than older_than"
                else:
                    remaining.append(info)
            candidates = remaining

        delete = sorted(info.tag for info in candidates)
        keep = sorted(tag for tag in reasons)
        return RetentionPlan(delete=delete, keep=keep, reasons=reasons)
