# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OCI and Docker vocabulary every part of the collection speaks, registry and engine side:
media types, Docker Hub's names, digests, the manifest model and its shape checks, and image
creation times.

No I/O and no third-party library, and below every other module_utils file but the error
definitions, so that any of them may import it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError, kind_words, one_line
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)
# The distribution spec has registries accept manifests up to 4 MiB; a bigger answer is not a manifest.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Index levels followed below a tag: image index -> platform manifest is 1, a referrers tag's index
# listing a signed index listing its platforms is 3. Real content never nests deeper, so deeper
# nesting is refused (copy) or not followed (reports) rather than followed forever.
MAX_INDEX_DEPTH = 4

# Docker Hub. An image reference names it docker.io (index.docker.io is the old spelling);
# its registry API answers at registry-1.docker.io. As the docker CLI does, only those two
# names mean Hub in an image reference: to the engine, registry-1.docker.io/x is a name of
# its own. Every host in DOCKER_HUB_HOSTS reaches Hub's API.
DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DOCKER_HUB_NAMES = (DOCKER_HUB, "index.docker.io")
DOCKER_HUB_HOSTS = DOCKER_HUB_NAMES + (DOCKER_HUB_API_HOST, "registry.hub.docker.com")

# The digest grammar of distribution's ``digest`` package; a sha256 digest is exactly 64 hex digits.
DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
SHA256_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# JSON's names for the types of a parsed document; bool comes before number, True being an int too.
JSON_KINDS = ((type(None), "null"), (bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
              (list, "a list"), (dict, "an object"))
# Longest piece of a server's text quoted in a message.
QUOTE_LIMIT = 60

# An image config's RFC 3339 ``created`` time; engines write nanoseconds, some writers no zone (UTC).
_CREATED_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(Z|z|[+-]\d{2}:?\d{2})?$"
)


class AnswerError(DockhandError, ValueError):
    """A registry answer has the wrong shape; ``str(exc)`` says how."""


def type_name(value: Any) -> str:
    """JSON's name for the type of ``value``."""
    return kind_words(value, JSON_KINDS) or type(value).__name__


def quoted(value: Any) -> str:
    """A short printable form of a server's value for a message."""
    text = repr(value)
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT - 3] + "..."


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_digest_of_chunks(chunks) -> str:
    """``sha256:<hex>`` of a stream of byte chunks, read one chunk at a time."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def is_valid_digest(value: Any) -> bool:
    """Whether ``value`` is a digest a registry accepts (``algorithm:hex``, sha256 with 64 lowercase digits)."""
    return (isinstance(value, str) and DIGEST_RE.match(value) is not None
            and (not value.startswith("sha256:") or SHA256_DIGEST_RE.match(value) is not None))


def digest_hasher(digest: str):
    """A hashlib object for the algorithm of ``digest``; RegistryError for one registries do not use."""
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise RegistryError("cannot verify digest %s: unsupported algorithm %r" % (digest, algorithm))
    return hashlib.new(algorithm)


def compute_digest(data: bytes, like: str = "sha256:") -> str:
    """Digest of ``data`` with the algorithm of ``like``."""
    hasher = digest_hasher(like)
    hasher.update(data)
    return like.split(":", 1)[0] + ":" + hasher.hexdigest()


def is_digest(reference: str) -> bool:
    """Whether a manifest reference is a digest (tags have no colon)."""
    return ":" in reference


def url_for_message(url: str) -> str:
    """``url`` without its query and fragment, for messages: a pre-signed object-storage URL carries
    its signature (X-Amz-Signature, a SAS ``sig``) there, and messages reach the task output."""
    parts = urlsplit(str(url))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


# A query in requests' and urllib3's texts (``url: /x?X-Amz-Signature=...``, ``url='...'``), up to
# where the URL ends.
_QUERY_IN_TEXT_RE = re.compile(r"\?[^\s'\"()]*")


def without_queries(text: str) -> str:
    """``text`` (an HTTP library's exception text) without the queries of the URLs it names; see url_for_message."""
    return _QUERY_IN_TEXT_RE.sub("", text)


def normalize_registry_host(registry: str) -> str:
    """``host[:port]`` of the API for a ``registry`` option value (``docker.io`` means Docker Hub)."""
    text = registry.strip()
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.split("/", 1)[0].lower()
    if text in DOCKER_HUB_HOSTS:
        return DOCKER_HUB_API_HOST
    return text


def media_type_of(content_type: Optional[str]) -> Optional[str]:
    """The media type of a Content-Type header, without its parameters."""
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip() or None


def check_descriptor(descriptor: Any, where: str, complete: bool = False) -> dict:
    """A content descriptor: an object with a valid ``digest``, a string ``mediaType`` and an integer ``size``.

    Image manifests are read as lenient as the registries store them: ``mediaType`` and
    ``size`` may be missing. A ``complete`` descriptor (a referrers index entry, which the
    distribution spec describes in full) must have both, and its ``artifactType`` and
    ``annotations`` are checked too.
    """
    if not isinstance(descriptor, dict):
        raise AnswerError("%s is %s, expected an object" % (where, type_name(descriptor)))
    digest = descriptor.get("digest")
    if not isinstance(digest, str):
        raise AnswerError("%s has digest %s, expected a string" % (where, type_name(digest)))
    if not is_valid_digest(digest):
        raise AnswerError("%s has digest %s, which is not a digest" % (where, quoted(digest)))
    media_type = descriptor.get("mediaType")
    if (media_type is not None or complete) and not isinstance(media_type, str):
        raise AnswerError("%s has mediaType %s, expected a string" % (where, quoted(media_type)))
    if complete and not media_type:
        raise AnswerError("%s has an empty mediaType" % where)
    size = descriptor.get("size")
    if (size is not None or complete) and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise AnswerError("%s has size %s, expected a whole number of bytes" % (where, quoted(size)))
    if complete:
        artifact_type = descriptor.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise AnswerError("%s has artifactType %s, expected a string" % (where, quoted(artifact_type)))
        check_annotations(descriptor.get("annotations"), where)
    return descriptor


def check_annotations(value: Any, where: str) -> Dict[str, str]:
    """The ``annotations`` of a manifest or descriptor (none: empty), which map strings to strings."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise AnswerError("%s has annotations %s, but annotations must map strings to strings" % (where, quoted(value)))
    return dict(value)


def check_manifest(data: Any, is_index: bool) -> None:
    """An image manifest (``config``, ``layers``) or an index (``manifests``) whose entries are descriptors."""
    if not isinstance(data, dict):
        raise AnswerError("it is %s, expected a JSON object" % type_name(data))
    media_type = data.get("mediaType")
    if media_type is not None and not isinstance(media_type, str):
        raise AnswerError("its mediaType is %s, expected a string" % type_name(media_type))
    lists = ("manifests",) if is_index else ("layers",)
    for key in lists:
        entries = data.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise AnswerError("its %r is %s, expected a list" % (key, type_name(entries)))
        for position, entry in enumerate(entries):
            check_descriptor(entry, "entry %d of %r" % (position, key))
    if not is_index and data.get("config") is not None:
        check_descriptor(data["config"], "its config")


def _created_parts(text):
    """``(whole seconds as an aware datetime, nanoseconds)`` of a ``created`` time, or None."""
    if not isinstance(text, str):
        return None
    found = _CREATED_RE.match(text.strip())
    if not found:
        return None
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    if zone in (None, "Z", "z"):
        tzinfo = timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tzinfo = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        whole = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tzinfo)
    except ValueError:
        return None
    return whole, int((fraction or "0")[:9].ljust(9, "0"))


def parse_created(text) -> Optional[datetime]:
    """An image config's RFC 3339 ``created`` time (to the microsecond); None if absent or malformed."""
    parts = _created_parts(text)
    if parts is None:
        return None
    whole, nanoseconds = parts
    return whole + timedelta(microseconds=nanoseconds // 1000)


def created_ns(text) -> Optional[int]:
    """A ``created`` time in nanoseconds since the epoch, the precision engines write; None if malformed."""
    parts = _created_parts(text)
    if parts is None:
        return None
    whole, nanoseconds = parts
    return (whole - _EPOCH) // timedelta(seconds=1) * 10 ** 9 + nanoseconds


@dataclass(frozen=True)
class ManifestHead:
    """What a HEAD on a manifest tells: its digest, media type and size in bytes."""

    digest: str
    media_type: Optional[str]
    size: Optional[int]


class Manifest:
    """A manifest as fetched: the exact ``body`` bytes, its verified ``digest`` and the parsed ``data``."""

    def __init__(self, digest: str, media_type: Optional[str], body: bytes):
        self.digest = digest
        self.body = body
        self.size = len(body)
        try:
            self.data = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryError("manifest %s is not valid JSON: %s" % (digest, one_line(exc)))
        try:
            check_manifest(self.data, is_index=False)
            self.media_type = self.data.get("mediaType") or media_type or (
                OCI_INDEX if "manifests" in self.data else OCI_MANIFEST)
            if self.is_index:
                check_manifest(self.data, is_index=True)
        except AnswerError as exc:
            raise RegistryError("manifest %s is malformed: %s" % (digest, exc))

    @property
    def is_index(self) -> bool:
        """True for an OCI index or Docker manifest list (a multi-platform image)."""
        if self.media_type in INDEX_MEDIA_TYPES:
            return True
        return "manifests" in self.data and "layers" not in self.data

    @property
    def child_descriptors(self) -> List[dict]:
        """The ``manifests`` entries of an index (empty for an image manifest)."""
        if not self.is_index:
            return []
        return [d for d in self.data.get("manifests") or [] if isinstance(d, dict)]

    @property
    def config_descriptor(self) -> Optional[dict]:
        config = self.data.get("config")
        return config if not self.is_index and isinstance(config, dict) else None

    @property
    def layer_descriptors(self) -> List[dict]:
        if self.is_index:
            return []
        return [d for d in self.data.get("layers") or [] if isinstance(d, dict)]

    @property
    def blob_descriptors(self) -> List[dict]:
        """Config then layers of an image manifest (empty for an index)."""
        config = self.config_descriptor
        return ([config] if config else []) + self.layer_descriptors

    def __repr__(self):
        return "Manifest(%s, %s, %d bytes)" % (self.digest, self.media_type, self.size)
