# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OCI and Docker vocabulary the collection speaks: media types, Docker Hub's names,
digests, and the manifest model.

Pure: no I/O and no third-party library, so every module_utils file may import it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import urlsplit

from ansible_collections.dockhand.registry.plugins.module_utils.registry_answers import AnswerError, check_manifest
from ansible_collections.dockhand.registry.plugins.module_utils.registry_auth import DOCKER_HUB_HOSTS
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryError, one_line

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)
# The distribution spec has registries accept manifests up to 4 MiB; a bigger answer is not a manifest.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

DOCKER_HUB_API_HOST = "registry-1.docker.io"


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


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
