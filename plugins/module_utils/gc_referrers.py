# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep the referrers of kept images through ``registry garbage-collect --delete-untagged``.

distribution's collector (registry/storage/garbagecollect.go, MarkAndSweep) with RemoveUntagged
deletes every manifest that has no tag and that no marked manifest lists. A referrer (signature,
SBOM: a manifest with a ``subject``) pushed by digest only is listed by nothing but its own
``subject`` field, which the collector does not follow, so it goes although its image stays.

What protects it is what clients without the referrers API do anyway: list it in the referrers
tag ``sha256-<hex>`` of its subject. That tag is an image index; the collector marks a tagged
index and every manifest it lists, with their configs and layers.

The steps: parse the dry run's ``manifest eligible for deletion: {<repo> <digest> [<tags>]}``
lines (v3: ``emit("manifest eligible for deletion: %s", obj)`` of a ManifestDel{Name, Digest, Tags},
after the mark phase), or distribution 2.8's ``manifest eligible for deletion: <digest>``, which it
prints within the section its bare ``<repo>`` line opens;
fetch each eligible manifest once; protect each one whose subject stays, repeating so that a
referrer of a protected referrer is protected too; one referrers tag PUT per subject that lacks
entries. The parsing and the decision are pure functions; ``protect_referrers`` does the requests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Set, Tuple

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import (
    ImageReferenceError,
    validate_repository,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import is_valid_digest, quoted
from ansible_collections.dockhand.registry.plugins.module_utils.referrers import (
    IndexChange,
    apply_index_change,
    descriptor_for,
    index_adding,
    index_entries,
    read_referrers_tag,
    referrers_tag,
    subject_of,
)

ELIGIBLE_MANIFEST_PREFIX = "manifest eligible for deletion: "
# Go's %s of ManifestDel{Name string; Digest digest.Digest; Tags []string}: {name digest [tag tag]}.
_ELIGIBLE_MANIFEST_RE = re.compile(r"^\{(?P<name>\S+) (?P<digest>\S+) \[(?P<tags>[^\[\]]*)\]\}$")
# distribution 2.8 names only the digest, under the repository line that opened the section.
_ELIGIBLE_DIGEST_RE = re.compile(r"^(?P<digest>[a-z0-9]+:[0-9a-f]+)$")
# The collector's last mark-phase line; without it the output is cut short or from another program.
_SUMMARY_RE = re.compile(r"^(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion$")

# Why an eligible referrer is not protected: the RV(skipped) reasons of registry_gc_referrers.
SKIP_SUBJECT_DELETED = "its subject is deleted by the same collection"
SKIP_SUBJECT_MISSING = "its subject is not in the repository"


class GcOutputError(DockhandError):
    """The garbage-collect dry run's output is not what distribution prints."""


@dataclass(frozen=True)
class Eligible:
    """One ``manifest eligible for deletion`` line: a manifest with no tag that no marked manifest lists."""

    repository: str
    digest: str


@dataclass(frozen=True)
class Protection:
    """An eligible referrer and the subject whose referrers tag keeps it (or the reason it is not kept)."""

    repository: str
    digest: str
    subject: str
    reason: Optional[str] = None


def _malformed(number: int, line: str, why: str) -> GcOutputError:
    return GcOutputError("line %d of the garbage-collect dry run is not distribution's 'manifest eligible for"
                         " deletion: {<repository> <digest> [<tags>]}' (%s): %s; nothing was changed"
                         % (number, why, quoted(line)))


def parse_eligible_manifests(output: str) -> List[Eligible]:
    """The manifests a ``garbage-collect --delete-untagged --dry-run`` output lists, in output order.

    Every line naming an eligible manifest must parse, and the summary line must be there and count
    exactly as many manifests: a cut-short or foreign output raises GcOutputError.
    """
    found: List[Eligible] = []
    summary = None
    section = None
    for number, raw in enumerate(output.splitlines(), 1):
        line = raw.strip()
        counts = _SUMMARY_RE.match(line)
        if counts:
            summary = int(counts.group(3))
            continue
        if not line.startswith(ELIGIBLE_MANIFEST_PREFIX):
            section = _repository_line(line) or section
            continue
        rest = line[len(ELIGIBLE_MANIFEST_PREFIX):]
        match = _ELIGIBLE_MANIFEST_RE.match(rest) or _ELIGIBLE_DIGEST_RE.match(rest)
        if match is None:
            raise _malformed(number, line, "not {name digest [tags]}")
        name = match.groupdict().get("name") or section
        if not is_valid_digest(match.group("digest")):
            raise _malformed(number, line, "%s is no digest" % quoted(match.group("digest")))
        if name is None:
            raise _malformed(number, line, "a bare digest before any repository line")
        try:
            validate_repository(name)
        except ImageReferenceError as exc:
            raise _malformed(number, line, str(exc))
        entry = Eligible(name, match.group("digest"))
        if entry not in found:
            found.append(entry)
    if summary is None:
        raise GcOutputError("the garbage-collect dry run printed no '<n> blobs marked, <n> blobs and <n> manifests"
                            " eligible for deletion' line, so its output is incomplete; nothing was changed")
    if summary != len(found):
        raise GcOutputError("the garbage-collect dry run counts %d manifests eligible for deletion but lists %d;"
                            " nothing was changed" % (summary, len(found)))
    return found


def _repository_line(line: str) -> Optional[str]:
    """``line`` when it is a bare repository name (the collector's section header), else None."""
    if not line or " " in line:
        return None
    try:
        return validate_repository(line)
    except ImageReferenceError:
        return None


def subjects_to_check(eligible: Iterable[Eligible], subjects: Dict[Eligible, Optional[str]]) -> Set[Tuple[str, str]]:
    """The (repository, subject) pairs to look up: subjects of eligible referrers that are not eligible themselves."""
    going = set(eligible)
    return {(entry.repository, subject) for entry, subject in subjects.items()
            if subject is not None and Eligible(entry.repository, subject) not in going}


def plan_protection(eligible: Iterable[Eligible], subjects: Dict[Eligible, Optional[str]],
                    present: Set[Tuple[str, str]]) -> Tuple[List[Protection], List[Protection]]:
    """Which eligible referrers to protect, and which not with why: (protected, skipped).

    ``subjects`` maps each eligible manifest to its subject (None: no referrer, or gone meanwhile);
    ``present`` holds the (repository, subject) pairs the registry has. A referrer is protected when
    its subject stays: present and not eligible, or a referrer protected itself (a signature of an
    SBOM of a kept image). A subject the collection deletes takes its referrers along, as it should.
    """
    eligible = list(eligible)
    referrers = [entry for entry in eligible if subjects.get(entry) is not None]
    going = set(eligible)
    kept: Set[Eligible] = set()
    # Each round protects at least one more referrer or ends: at most len(referrers) rounds.
    for _round in range(len(referrers) + 1):
        newly = [entry for entry in referrers
                 if entry not in kept and _stays(entry, subjects[entry], going, kept, present)]
        if not newly:
            break
        kept.update(newly)
    protected, skipped = [], []
    for entry in referrers:
        subject = subjects[entry]
        if entry in kept:
            protected.append(Protection(entry.repository, entry.digest, subject))
        else:
            reason = (SKIP_SUBJECT_DELETED if Eligible(entry.repository, subject) in going else SKIP_SUBJECT_MISSING)
            skipped.append(Protection(entry.repository, entry.digest, subject, reason))
    return protected, skipped


def _stays(entry: Eligible, subject: str, going: Set[Eligible], kept: Set[Eligible],
           present: Set[Tuple[str, str]]) -> bool:
    target = Eligible(entry.repository, subject)
    if target in going:
        return target in kept
    return (entry.repository, subject) in present


def index_change_adding(current: Optional[dict], descriptors: Iterable[dict], tag: str, where: str) -> IndexChange:
    """The referrers tag ``tag`` (content ``current``, None when absent) listing every one of ``descriptors``."""
    data = current
    body = None
    for descriptor in descriptors:
        added = index_adding(data, descriptor, where)
        if added is not None:
            body = added
            data = json.loads(added.decode("utf-8"))
    return IndexChange(tag, body)


@dataclass
class ProtectionResult:
    """What protect_referrers found and did; ``to_result`` is the module's return value."""

    protected: List[dict]
    skipped: List[dict]
    eligible: int

    @property
    def changed(self) -> bool:
        return any(item["referrers_tag_updated"] for item in self.protected)

    def to_result(self) -> dict:
        return dict(changed=self.changed, protected=self.protected, skipped=self.skipped,
                    manifests_eligible=self.eligible)


def protect_referrers(client, output: str, check_mode: bool) -> ProtectionResult:
    """Parse ``output``, fetch every eligible manifest once, and list each kept referrer in its subject's tag.

    Requests: one GET per eligible manifest, one HEAD per subject that is not eligible itself, one GET of
    the referrers tag and (when it lacks entries, and not in check mode) one PUT per subject kept.
    """
    eligible = parse_eligible_manifests(output)
    manifests = dict(zip(eligible, client.map_bounded(
        lambda entry: client.get_manifest(entry.repository, entry.digest), eligible)))
    subjects = {entry: (subject_of(manifest) if manifest is not None else None)
                for entry, manifest in manifests.items()}
    pairs = sorted(subjects_to_check(eligible, subjects))
    heads = client.map_bounded(lambda pair: client.head_manifest(pair[0], pair[1]), pairs)
    present = {pair for pair, head in zip(pairs, heads) if head is not None}
    protected, skipped = plan_protection(eligible, subjects, present)

    by_subject: Dict[Tuple[str, str], List[Protection]] = {}
    for item in protected:
        by_subject.setdefault((item.repository, item.subject), []).append(item)
    # Every change is planned before the first PUT, so a referrers tag that is no index fails with nothing changed.
    changes, results = [], []
    for (repository, subject), items in sorted(by_subject.items()):
        tag = referrers_tag(subject)
        current = read_referrers_tag(client, repository, tag)
        where = "the referrers tag %s of %s on registry %s" % (tag, repository, client.host)
        change = index_change_adding(current.data if current else None,
                                     [descriptor_for(manifests[Eligible(repository, item.digest)]) for item in items],
                                     tag, where)
        listed = {entry["digest"] for entry in index_entries(current.data, where)} if current else set()
        changes.append((repository, change))
        for item in items:
            results.append(dict(repository=repository, digest=item.digest, subject=subject, referrers_tag=tag,
                                referrers_tag_updated=item.digest not in listed))
    if not check_mode:
        for repository, change in changes:
            apply_index_change(client, repository, change)
    return ProtectionResult(
        protected=results,
        skipped=[dict(repository=item.repository, digest=item.digest, subject=item.subject, reason=item.reason)
                 for item in skipped],
        eligible=len(eligible))
