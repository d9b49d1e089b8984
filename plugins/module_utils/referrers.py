# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Referrers of an image (signatures, SBOMs, attestations) and tag delete, per OCI distribution-spec 1.1.

A referrer is a manifest whose ``subject`` names another manifest. A registry shows them in one of
three ways:

- the referrers API, ``GET /v2/<name>/referrers/<digest>``: an image index of descriptors;
- without that API (it answers 404, as on every distribution release), the referrers tag
  ``sha256-<hex>``: an image index that the clients pushing or deleting referrers keep up to date;
- cosign's older tags ``sha256-<hex>.sig``, ``.att`` and ``.sbom``, which name their subject only.

Also here: telling referrer tags from image tags (for retention), keeping a referrers tag consistent
when a referrer is added or removed, and learning once per run whether the registry can delete a
tag (untag) while risking nothing but a throw-away manifest of our own.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional
from urllib.parse import parse_qsl, urlsplit

from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    AnswerError,
    Manifest,
    check_annotations,
    check_descriptor,
    is_valid_digest,
    quoted,
    sha256_digest,
    type_name,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import (
    RegistryConnectionError,
    RegistryError,
    RegistryInterrupted,
    RegistryNotFound,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_transport import parse_link_header

# How a referrer was found: the ``found_by`` of a Referrer.
FOUND_BY_API = "referrers_api"
FOUND_BY_REFERRERS_TAG = "referrers_tag"
FOUND_BY_COSIGN_TAG = "cosign_tag"

# cosign's default tag suffixes (pkg/oci/remote/options.go): signatures, attestations, SBOMs.
COSIGN_SUFFIXES = ("sig", "att", "sbom")
# Hex digits of a full digest, per algorithm the registries accept.
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
# The referrers tag schema cuts the algorithm to 32 and the encoded part to 64 characters.
REFERRERS_TAG_ALGORITHM_CHARS = 32
REFERRERS_TAG_ENCODED_CHARS = 64
_TAG_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")
_REFERRER_TAG_RE = re.compile(r"^(sha256|sha384|sha512)-([0-9a-f]+)(?:\.(sig|att|sbom))?$")
# A real registry pages long before this; a broken Link header hits it fast.
MAX_REFERRER_PAGES = 1000
# Tag deletes tried without a conclusive answer before the run settles on the throw-away path.
MAX_UNTAG_PROBES = 3
EMPTY_INDEX = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}

# How remove_repointed_tag removed a tag.
REMOVED_BY_TAG_DELETE = "tag_delete"
REMOVED_BY_DIGEST = "throwaway_delete"


@dataclass(frozen=True)
class Referrer:
    """One referrer of an image, as the registry described it."""

    digest: str
    media_type: str
    size: Optional[int]
    artifact_type: Optional[str]
    annotations: Dict[str, str]
    found_by: str
    tag: Optional[str] = None

    def to_result(self) -> dict:
        """The module return value of this referrer."""
        return dict(digest=self.digest, media_type=self.media_type, size=self.size,
                    artifact_type=self.artifact_type, annotations=dict(self.annotations),
                    found_by=self.found_by, tag=self.tag)


@dataclass(frozen=True)
class ReferrerTag:
    """A tag whose name says it belongs to a subject: a referrers tag or a cosign-style tag."""

    tag: str
    kind: str
    algorithm: str
    encoded: str
    suffix: Optional[str] = None

    @property
    def subject_digest(self) -> Optional[str]:
        """The subject's digest, or None when the name holds only a truncated one (sha384/sha512 referrers tags)."""
        if len(self.encoded) == DIGEST_HEX_LENGTHS[self.algorithm]:
            return self.algorithm + ":" + self.encoded
        return None

    def belongs_to(self, digest: str) -> bool:
        """Whether this tag is the referrers tag or cosign tag of ``digest``."""
        if self.kind == FOUND_BY_COSIGN_TAG:
            return self.tag == cosign_tag(digest, self.suffix)
        return self.tag == referrers_tag(digest)


@dataclass
class Discovery:
    """What discover_referrers found, and whether the registry has the referrers API."""

    referrers: List[Referrer] = field(default_factory=list)
    referrers_api: bool = False


@dataclass(frozen=True)
class IndexChange:
    """A referrers tag update: ``body`` is the new index, or None when the tag is already right."""

    tag: str
    body: Optional[bytes]

    @property
    def changed(self) -> bool:
        return self.body is not None


# ------------------------------------------------------------------ tag names


def referrers_tag(digest: str) -> str:
    """The referrers tag of ``digest`` (``sha256:abc`` -> ``sha256-abc``), truncated as the spec says."""
    algorithm, _sep, encoded = digest.partition(":")
    return (_TAG_UNSAFE.sub("-", algorithm[:REFERRERS_TAG_ALGORITHM_CHARS]) + "-"
            + _TAG_UNSAFE.sub("-", encoded[:REFERRERS_TAG_ENCODED_CHARS]))


def cosign_tag(digest: str, suffix: str) -> str:
    """cosign's tag for ``digest``: ``sha256-<hex>.<suffix>`` (never truncated)."""
    algorithm, _sep, encoded = digest.partition(":")
    return "%s-%s.%s" % (algorithm, encoded, suffix)


def classify_tag(tag: str) -> Optional[ReferrerTag]:
    """A ReferrerTag when ``tag`` is named like a referrers tag or a cosign tag, else None.

    Only the name is judged: a repository could hold an image under such a name, so whoever
    deletes on this basis checks the content first (a referrers tag holds an image index).
    """
    match = _REFERRER_TAG_RE.match(tag) if isinstance(tag, str) else None
    if match is None:
        return None
    algorithm, encoded, suffix = match.groups()
    full = DIGEST_HEX_LENGTHS[algorithm]
    if suffix:
        return ReferrerTag(tag, FOUND_BY_COSIGN_TAG, algorithm, encoded, suffix) if len(encoded) == full else None
    if len(encoded) == min(full, REFERRERS_TAG_ENCODED_CHARS):
        return ReferrerTag(tag, FOUND_BY_REFERRERS_TAG, algorithm, encoded)
    return None


def referrer_tags_by_subject(tags: Iterable[str]) -> Dict[str, List[ReferrerTag]]:
    """Group the referrer tags among ``tags`` by subject digest (a truncated one keeps its tag's prefix form)."""
    grouped: Dict[str, List[ReferrerTag]] = {}
    for tag in tags:
        found = classify_tag(tag)
        if found is not None:
            key = found.subject_digest or (found.algorithm + ":" + found.encoded)
            grouped.setdefault(key, []).append(found)
    return grouped


# ------------------------------------------------------------------ validation


def _checked_descriptor(entry, where: str, position: Optional[int] = None) -> dict:
    """``entry`` when it is a complete descriptor; RegistryError naming ``where`` otherwise."""
    name = "the new entry" if position is None else "entry %d of 'manifests'" % position
    try:
        return check_descriptor(entry, name, complete=True)
    except AnswerError as exc:
        raise RegistryError("%s: %s" % (where, exc))


def index_entries(data, where: str) -> List[dict]:
    """The validated ``manifests`` of a referrers index (API answer or referrers tag)."""
    if not isinstance(data, dict):
        raise RegistryError("%s is %s, not an OCI image index" % (where, type_name(data)))
    if data.get("mediaType") not in (None, OCI_INDEX):
        raise RegistryError("%s has mediaType %s, not an OCI image index (%s)" % (where, quoted(data["mediaType"]), OCI_INDEX))
    if data.get("schemaVersion", 2) != 2:
        raise RegistryError("%s has schemaVersion %s, not 2" % (where, quoted(data.get("schemaVersion"))))
    manifests = data.get("manifests")
    if not isinstance(manifests, list):
        raise RegistryError("%s has no manifests list (manifests is %s)" % (where, type_name(manifests)))
    return [_checked_descriptor(entry, where, position) for position, entry in enumerate(manifests)]


def _json_body(content: bytes, where: str):
    if len(content) > MAX_MANIFEST_BYTES:
        raise RegistryError("%s is larger than %d MiB" % (where, MAX_MANIFEST_BYTES // (1024 * 1024)))
    try:
        return json.loads(content.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise RegistryError("%s is not JSON (starts with %s)" % (where, quoted(content[:40])))


def subject_of(manifest: Manifest) -> Optional[str]:
    """The digest in ``manifest``'s ``subject``, or None without one; RegistryError when it is malformed."""
    subject = manifest.data.get("subject")
    if subject is None:
        return None
    if not isinstance(subject, dict) or not is_valid_digest(subject.get("digest")):
        raise RegistryError("manifest %s has a malformed subject %s: expected a descriptor with a digest"
                            % (manifest.digest, quoted(subject)))
    return subject["digest"]


def descriptor_for(manifest: Manifest) -> dict:
    """The descriptor a referrers index holds for ``manifest`` (artifactType and annotations per the spec)."""
    artifact_type = manifest.data.get("artifactType")
    if not artifact_type and not manifest.is_index:
        config = manifest.config_descriptor or {}
        artifact_type = config.get("mediaType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise RegistryError("manifest %s has artifactType %s, not a string" % (manifest.digest, quoted(artifact_type)))
    descriptor = {"mediaType": manifest.media_type, "digest": manifest.digest, "size": manifest.size}
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    try:
        annotations = check_annotations(manifest.data.get("annotations"), "manifest %s" % manifest.digest)
    except AnswerError as exc:
        raise RegistryError(str(exc))
    if annotations:
        descriptor["annotations"] = annotations
    return descriptor


def _referrer(entry: dict, found_by: str, tag: Optional[str] = None) -> Referrer:
    return Referrer(digest=entry["digest"], media_type=entry["mediaType"], size=entry.get("size"),
                    artifact_type=entry.get("artifactType"), annotations=dict(entry.get("annotations") or {}),
                    found_by=found_by, tag=tag)


# ------------------------------------------------------------------ discovery


def _header(headers, name: str) -> Optional[str]:
    """A response header by name, case-insensitively; urllib3's headers join repeated ones with commas."""
    value = headers.get(name) if headers else None
    if value is None and headers:
        value = next((item for key, item in headers.items() if str(key).lower() == name.lower()), None)
    return None if value is None else str(value)


def referrers_from_api(client, repository: str, digest: str, artifact_type: Optional[str] = None
                       ) -> Optional[List[Referrer]]:
    """The referrers API's list (every page), or None when the registry has no referrers API (404).

    ``artifact_type`` is sent as the spec's filter and applied here as well, so a registry that
    ignores it (no ``OCI-Filters-Applied`` header) gives the same answer.
    """
    what = "list the referrers of %s in %s" % (digest, repository)
    where = "the referrers API's answer for %s in %s on registry %s" % (digest, repository, client.host)
    query = [("artifactType", artifact_type)] if artifact_type else []
    found: List[Referrer] = []
    seen = set()
    for page in range(MAX_REFERRER_PAGES):
        response = client.repository_request("GET", repository, ("referrers", digest), what, query=query,
                                             ok=(200, 404))
        if response.status_code == 404:
            if page == 0:
                return None
            raise RegistryError("%s: page %d answered 404 after page 1 answered 200" % (where, page + 1))
        for entry in index_entries(_json_body(response.content, where), where):
            if artifact_type is None or entry.get("artifactType") == artifact_type:
                found.append(_referrer(entry, FOUND_BY_API))
        link = parse_link_header(_header(response.headers, "Link")).get("next")
        if not link:
            return found
        # Only the Link's query is taken: the next page is asked of the same path, never another host.
        query = parse_qsl(urlsplit(link).query, keep_blank_values=True)
        key = tuple(query)
        if key in seen:
            raise RegistryError("%s: the Link header loops" % where)
        seen.add(key)
    raise RegistryError("%s: more than %d pages" % (where, MAX_REFERRER_PAGES))


def _tag_where(client, repository: str, tag: str) -> str:
    return "the referrers tag %s of %s on registry %s" % (tag, repository, client.host)


def read_referrers_tag(client, repository: str, tag: str) -> Optional[Manifest]:
    """The manifest under referrers tag ``tag`` (None without one).

    The client's own shape checks may refuse the content before index_entries sees it; that
    refusal (an error without HTTP status) is re-raised naming the tag and the registry.
    """
    try:
        return client.get_manifest(repository, tag)
    except RegistryError as exc:
        # An HTTP answer, no answer at all, or a stop request: not about the tag's content.
        if exc.status is not None or isinstance(exc, (RegistryConnectionError, RegistryInterrupted)):
            raise
        raise RegistryError("%s: %s" % (_tag_where(client, repository, tag), exc))


def referrers_from_tag(client, repository: str, digest: str) -> List[Referrer]:
    """The referrers listed by the referrers tag of ``digest`` ([] when there is no such tag)."""
    tag = referrers_tag(digest)
    manifest = read_referrers_tag(client, repository, tag)
    if manifest is None:
        return []
    where = _tag_where(client, repository, tag)
    return [_referrer(entry, FOUND_BY_REFERRERS_TAG, tag) for entry in index_entries(manifest.data, where)]


def referrers_from_cosign_tags(client, repository: str, digest: str, tags: Optional[Iterable[str]] = None
                               ) -> List[Referrer]:
    """The manifests under cosign's ``.sig``, ``.att`` and ``.sbom`` tags of ``digest``.

    With ``tags`` (the repository's tag list, when the caller has it) only listed ones are fetched;
    without, one GET per suffix asks (a 404 is cheap, cheaper than listing a big repository).
    """
    candidates = [cosign_tag(digest, suffix) for suffix in COSIGN_SUFFIXES]
    if tags is not None:
        listed = set(tags)
        candidates = [tag for tag in candidates if tag in listed]
    manifests = client.map_bounded(lambda tag: client.get_manifest(repository, tag), candidates)
    return [_referrer(descriptor_for(manifest), FOUND_BY_COSIGN_TAG, tag)
            for tag, manifest in zip(candidates, manifests) if manifest is not None]


def verify_subjects(client, repository: str, digest: str, referrers: Iterable[Referrer]) -> None:
    """Fetch each referrer and check its ``subject`` is ``digest``: a stale or wrong list fails with one line."""
    referrers = list(referrers)
    manifests = client.map_bounded(lambda referrer: client.get_manifest(repository, referrer.digest), referrers)
    for referrer, manifest in zip(referrers, manifests):
        source = ("the referrers tag %s" % referrer.tag if referrer.found_by == FOUND_BY_REFERRERS_TAG
                  else "the referrers API")
        prefix = "%s of %s on registry %s lists %s as a referrer of %s" % (
            source, repository, client.host, referrer.digest, digest)
        if manifest is None:
            raise RegistryError(prefix + ", but the registry does not have that manifest: the list is stale")
        subject = subject_of(manifest)
        if subject is None:
            raise RegistryError(prefix + ", but that manifest has no subject")
        if subject != digest:
            raise RegistryError(prefix + ", but that manifest's subject is %s" % subject)


def discover_referrers(client, repository: str, digest: str, artifact_type: Optional[str] = None,
                       tags: Optional[Iterable[str]] = None, verify: bool = False) -> Discovery:
    """Every referrer of ``digest`` in ``repository``: the referrers API if the registry has one, else the
    referrers tag; plus cosign-style tags either way. Each digest is reported once, the first way found.

    The referrers tag is not read when the API answers: a registry that gains the API must list
    what its referrers tags held (spec, "Enabling the Referrers API"). ``verify`` fetches each
    listed referrer and checks its subject, for callers about to delete on the list's word.
    """
    api = referrers_from_api(client, repository, digest, artifact_type)
    listed = api if api is not None else [
        referrer for referrer in referrers_from_tag(client, repository, digest)
        if artifact_type is None or referrer.artifact_type == artifact_type]
    if verify:
        verify_subjects(client, repository, digest, listed)
    cosign = [referrer for referrer in referrers_from_cosign_tags(client, repository, digest, tags)
              if artifact_type is None or referrer.artifact_type == artifact_type]
    discovery = Discovery(referrers_api=api is not None)
    seen = set()
    for referrer in listed + cosign:
        if referrer.digest not in seen:
            seen.add(referrer.digest)
            discovery.referrers.append(referrer)
    return discovery


def has_referrers_api(client, repository: str, digest: str) -> bool:
    """Whether the registry answers the referrers API (a spec-conformant answer) for ``digest``."""
    return referrers_from_api(client, repository, digest) is not None


# ------------------------------------------------------------------ referrers tag upkeep


def _index_body(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def index_adding(current: Optional[dict], descriptor: dict, where: str) -> Optional[bytes]:
    """The referrers index ``current`` (None: no tag yet) with ``descriptor`` added; None if it is listed already."""
    data = dict(current) if current is not None else dict(EMPTY_INDEX)
    entries = index_entries(data, where)
    if any(entry["digest"] == descriptor["digest"] for entry in entries):
        return None
    data["manifests"] = entries + [_checked_descriptor(descriptor, where)]
    return _index_body(data)


def index_removing(current: Optional[dict], referrer_digest: str, where: str) -> Optional[bytes]:
    """The referrers index ``current`` without ``referrer_digest``; None if it is not listed (or no tag)."""
    if current is None:
        return None
    entries = index_entries(current, where)
    kept = [entry for entry in entries if entry["digest"] != referrer_digest]
    if len(kept) == len(entries):
        return None
    data = dict(current)
    data["manifests"] = kept
    return _index_body(data)


def plan_add_referrer(client, repository: str, referrer: Manifest) -> IndexChange:
    """How the referrers tag of ``referrer``'s subject must change to list it (spec: pushing with subject)."""
    subject = subject_of(referrer)
    if subject is None:
        raise RegistryError("manifest %s for %s has no subject, so it is no referrer" % (referrer.digest, repository))
    tag = referrers_tag(subject)
    current = read_referrers_tag(client, repository, tag)
    where = _tag_where(client, repository, tag)
    return IndexChange(tag, index_adding(current.data if current else None, descriptor_for(referrer), where))


def plan_remove_referrer(client, repository: str, subject_digest: str, referrer_digest: str) -> IndexChange:
    """How the referrers tag of ``subject_digest`` must change once ``referrer_digest`` is deleted.

    An index left empty stays (consistent and cheap); deleting the tag itself belongs to the
    delete of the subject (the spec's MAY), which goes through the tag-removal path.
    """
    tag = referrers_tag(subject_digest)
    current = read_referrers_tag(client, repository, tag)
    where = _tag_where(client, repository, tag)
    return IndexChange(tag, index_removing(current.data if current else None, referrer_digest, where))


def apply_index_change(client, repository: str, change: IndexChange) -> bool:
    """PUT the new referrers index under its tag; False when nothing needed changing."""
    if not change.changed:
        return False
    client.put_manifest(repository, change.tag, change.body, OCI_INDEX)
    return True


def push_referrer(client, repository: str, body: bytes, media_type: str) -> IndexChange:
    """PUT a referrer by digest, then list it in its subject's referrers tag unless the registry has the API.

    The client's PUT does not expose the ``OCI-Subject`` header, so the API is asked directly
    (one GET, answered 404 by registries without it). Returns the referrers tag change made.
    """
    manifest = Manifest(sha256_digest(body), media_type, body)
    subject = subject_of(manifest)
    if subject is None:
        raise RegistryError("manifest %s for %s has no subject, so it is no referrer" % (manifest.digest, repository))
    client.put_manifest(repository, manifest.digest, body, media_type)
    if has_referrers_api(client, repository, subject):
        return IndexChange(referrers_tag(subject), None)
    change = plan_add_referrer(client, repository, manifest)
    apply_index_change(client, repository, change)
    return change


# ------------------------------------------------------------------ untag


def delete_tag(client, repository: str, tag: str) -> bool:
    """DELETE ``tag`` (OCI tag delete) on a registry known to untag; False when the tag was not there.

    A 404 after a retried attempt may mean the lost answer of an attempt that did delete it, so
    only a HEAD that still finds the tag makes that a failure.
    """
    what = "delete tag %s of %s" % (tag, repository)
    response = client.repository_request("DELETE", repository, ("manifests", tag), what, ok=(200, 202, 204, 404))
    if response.status_code != 404:
        return True
    if response.attempts == 1:
        return False
    if client.head_manifest(repository, tag) is not None:
        raise RegistryError("cannot %s on registry %s: it answered 404 after a retry, yet the tag is still there"
                            % (what, client.host), 404)
    return True


class UntagSupport:
    """Whether the registry deletes single tags (untag), learned once per run, never at the user's expense.

    The question is asked with a tag the run removes anyway, after the run has re-pointed it at a
    throw-away manifest of its own (the 2.x removal path does exactly that). Then a DELETE of the
    tag can only ever affect that throw-away manifest:

    - 202 (or 200/204): the tag must now be 404 and the throw-away must still exist: untag works.
      If the throw-away is gone too, the registry deleted the manifest, which is no untag (only
      our throw-away went). The throw-away, now untagged, is then deleted by digest as before.
    - 400 or 405: no tag delete (the spec's answers for "disabled"; distribution 2.x answers 400
      DIGEST_INVALID, and 405 UNSUPPORTED when deletes are off; v3 405 when off, read-only or a
      cache). These answers come before the registry touches storage, so nothing changed.
    - 404: proves nothing (the tag may have moved meanwhile); up to MAX_UNTAG_PROBES tries.
    - anything else (401, 403, 429, 5xx, no answer) is raised: it is no answer about untag, and
      the caller restores the tag as on any failed step.

    Threads of one run share an instance; while one probes, the others take the throw-away path.
    """

    def __init__(self, max_probes: int = MAX_UNTAG_PROBES):
        self.supported: Optional[bool] = None
        self.reason = "not probed yet"
        self.probes = 0
        self.max_probes = max_probes
        self._lock = threading.Lock()

    def remove_repointed_tag(self, client, repository: str, tag: str, throwaway_digest: str) -> str:
        """Remove ``tag``, which this run has just pointed at its own ``throwaway_digest``.

        Returns REMOVED_BY_TAG_DELETE when a tag DELETE removed it, REMOVED_BY_DIGEST when the
        throw-away manifest was deleted by digest (the 2.x way). Raises RegistryError on failure.
        """
        if self.probe(client, repository, tag, throwaway_digest):
            return REMOVED_BY_TAG_DELETE
        client.delete_manifest(repository, throwaway_digest)
        return REMOVED_BY_DIGEST

    def probe(self, client, repository: str, tag: str, throwaway_digest: str) -> bool:
        """While support is unknown, try a tag DELETE on ``tag`` (re-pointed at our ``throwaway_digest``).

        True when that removed the tag (and nothing of ours is left); False when the caller must
        delete the throw-away by digest: support is known already, another thread is probing,
        the probes are used up, or this probe found no untag.
        """
        if self.supported is not None or not self._lock.acquire(blocking=False):
            return False
        try:
            if self.supported is not None or self.probes >= self.max_probes:
                return False
            self.probes += 1
            return self._probe(client, repository, tag, throwaway_digest)
        finally:
            self._lock.release()

    @property
    def method(self) -> str:
        """How this run removes single tags: ``untag``, ``throwaway``, or ``unknown`` before any probe."""
        return {True: "untag", False: "throwaway"}.get(self.supported, "unknown")

    def _probe(self, client, repository, tag, throwaway_digest) -> bool:
        """Try the tag DELETE; True when the tag is gone by it (and no throw-away is left)."""
        try:
            response = client.repository_request("DELETE", repository, ("manifests", tag),
                                                 "delete tag %s of %s" % (tag, repository), ok=(200, 202, 204))
        except RegistryNotFound as exc:
            self.reason = "a tag DELETE answered 404 (%s), which proves nothing" % (exc.code or "NOT_FOUND")
            return False
        except RegistryError as exc:
            if exc.status in (400, 405):
                self.supported = False
                self.reason = "the registry answers a tag DELETE with %d %s: it has no tag delete" % (
                    exc.status, exc.code or "")
                return False
            raise
        head = client.head_manifest(repository, tag)
        if head is not None:
            if head.digest == throwaway_digest:
                self.supported = False
                self.reason = "the registry answered a tag DELETE with %d but kept the tag" % response.status_code
            else:
                self.reason = "the tag moved to %s meanwhile, which proves nothing" % head.digest
            return False
        if client.head_manifest(repository, throwaway_digest) is None:
            self.supported = False
            self.reason = "a tag DELETE removed the manifest as well (no untag); only a throw-away manifest went"
            return True
        self.supported = True
        self.reason = "a tag DELETE answered %d and removed only that tag" % response.status_code
        # Our throw-away manifest is untagged now; delete it, as the 2.x path does, so nothing is left.
        client.delete_manifest(repository, throwaway_digest)
        return True


# ------------------------------------------------------------------ referrers of deleted images


@dataclass
class ReferrerRemoval:
    """What deleting some subjects takes for their referrers: tags to remove and untagged referrers by digest."""

    tags: List[str] = field(default_factory=list)
    digests: List[str] = field(default_factory=list)
    # One entry per referrer: subject, digest, tag (None for an untagged one), found_by.
    details: List[dict] = field(default_factory=list)


def plan_referrers_removal(client, repository: str, subjects: Iterable[str], tags: Iterable[str]) -> ReferrerRemoval:
    """The referrers of ``subjects`` (digests about to be deleted) in ``repository``, whose tag list is ``tags``.

    Fallback and cosign-style tags come from the tag list (no request when there are none); the
    referrers API is asked only when a subject is to be deleted, once per subject, and only if
    its first answer shows the registry has it. Each listed referrer is fetched and must name the
    subject: a list that says otherwise fails with one line before anything is deleted. A listed
    referrer that is gone already is skipped. Raises RegistryError.
    """
    subjects = sorted(set(subjects))
    listed_tags = list(tags)
    by_subject = referrer_tags_by_subject(listed_tags)
    removal = ReferrerRemoval()
    api = None
    for subject in subjects:
        entries = []
        if api is not False:
            found = referrers_from_api(client, repository, subject)
            api = found is not None
            entries = found or []
        for referrer_tag in by_subject.get(subject, []):
            removal.tags.append(referrer_tag.tag)
            removal.details.append(dict(subject=subject, tag=referrer_tag.tag, found_by=referrer_tag.kind))
            if referrer_tag.kind == FOUND_BY_REFERRERS_TAG and not api:
                entries.extend(referrers_from_tag(client, repository, subject))
        fetched = client.map_bounded(lambda entry: client.get_manifest(repository, entry.digest), entries)
        for entry, manifest in zip(entries, fetched):
            if manifest is None or entry.digest in removal.digests:
                continue
            if subject_of(manifest) != subject:
                source = "the referrers tag %s" % entry.tag if entry.tag else "the referrers API"
                raise RegistryError(
                    "%s of %s on registry %s lists %s as a referrer of %s, but that manifest's subject is %s;"
                    " nothing was deleted" % (source, repository, client.host, entry.digest, subject,
                                              subject_of(manifest)))
            removal.digests.append(entry.digest)
            removal.details.append(dict(subject=subject, digest=entry.digest, tag=None, found_by=entry.found_by,
                                        artifact_type=entry.artifact_type))
    removal.tags.sort()
    return removal


# ------------------------------------------------------------------ referrers of a copied image


@dataclass
class ReferrerCopy:
    """One referrer of a copied image: where it goes in the target, and what the target lacks."""

    referrer: Referrer
    reference: str
    copy_manifest: bool
    index_change: Optional[IndexChange] = None

    @property
    def changed(self) -> bool:
        return self.copy_manifest or (self.index_change is not None and self.index_change.changed)

    def to_result(self) -> dict:
        return dict(self.referrer.to_result(), reference=self.reference, copied=self.copy_manifest,
                    referrers_tag_updated=bool(self.index_change and self.index_change.changed))


def plan_referrers_copy(source, source_repository: str, target, target_repository: str, digest: str
                        ) -> List[ReferrerCopy]:
    """What the target lacks of ``digest``'s referrers in the source (the image is in the target already).

    A referrer with a subject goes under its digest, and into the target's referrers tag unless the
    target has the referrers API; a cosign-style one goes under its cosign tag. Reads only.
    """
    found = discover_referrers(source, source_repository, digest, verify=True).referrers
    target_api = None
    plans = []
    for referrer in found:
        reference = referrer.tag if referrer.found_by == FOUND_BY_COSIGN_TAG else referrer.digest
        head = target.head_manifest(target_repository, reference)
        copy_manifest = head is None or head.digest != referrer.digest
        change = None
        if referrer.found_by != FOUND_BY_COSIGN_TAG:
            if target_api is None:
                target_api = has_referrers_api(target, target_repository, digest)
            if not target_api:
                manifest = source.get_manifest(source_repository, referrer.digest)
                change = plan_add_referrer(target, target_repository, manifest)
        plans.append(ReferrerCopy(referrer, reference, copy_manifest, change))
    return plans
