# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references, repository names, tags and digests.

Follows the grammar of the distribution project's ``reference`` package
(the same rules the docker CLI and every v2 registry apply), so a name this
module accepts is one a registry accepts and vice versa.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError
from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    DIGEST_RE,
    DOCKER_HUB_HOSTS,
    DOCKER_HUB_NAMES,
    SHA256_DIGEST_RE,
)

NAME_TOTAL_LENGTH_MAX = 255

_ALPHA_NUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALPHA_NUMERIC + r"(?:" + _SEPARATOR + _ALPHA_NUMERIC + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = r"(?:" + _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*|" + _IPV6 + r")"
_DOMAIN = _HOST + r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"

REMOTE_NAME_RE = re.compile(r"^" + _REMOTE_NAME + r"$")
DOMAIN_RE = re.compile(r"^" + _DOMAIN + r"$")
TAG_RE = re.compile(r"^" + _TAG + r"$", re.ASCII)  # Go's \w is ASCII-only
IMAGE_ID_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{12,64}$")


class ImageReferenceError(DockhandError, ValueError):
    """Raised for a name, tag, digest or reference that breaks the grammar."""


@dataclass(frozen=True)
class ImageReference:
    """A parsed ``[registry/]repository[:tag][@digest]``."""

    registry: Optional[str]
    repository: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    @property
    def reference(self) -> str:
        """What the registry API calls the reference: the digest if any, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """``registry/repository`` as the docker CLI writes it (no registry part when absent)."""
        return self.registry + "/" + self.repository if self.registry else self.repository

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text


def validate_repository(name: str) -> str:
    """Return ``name`` if it is a valid repository path (no registry part), else raise."""
    if not isinstance(name, str) or not name:
        raise ImageReferenceError("repository name must be a non-empty string")
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise ImageReferenceError(
            "repository name %r is longer than %d characters" % (name, NAME_TOTAL_LENGTH_MAX)
        )
    if not REMOTE_NAME_RE.match(name):
        raise ImageReferenceError(
            "invalid repository name %r: use lowercase letters, digits and the separators"
            " '.', '_', '__', '-' between them, with '/' between path components" % name
        )
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid tag, else raise."""
    if not isinstance(tag, str) or not TAG_RE.match(tag):
        raise ImageReferenceError(
            "invalid tag %r: a tag is 1 to 128 characters of letters, digits, '_', '.'"
            " and '-', and does not start with '.' or '-'" % (tag,)
        )
    return tag


def validate_target_name(repository: str, tag: str) -> str:
    """Return ``repository:tag`` for a repository without tag or digest and a valid tag, else raise."""
    reference = parse_reference(repository)
    if reference.tag or reference.digest:
        raise ImageReferenceError(
            "invalid repository %r: give the tag with the tag option, not in the repository" % repository
        )
    validate_tag(tag)
    return "%s:%s" % (repository, tag)


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is ``algorithm:hex``; sha256 digests must be 64 hex digits."""
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise ImageReferenceError(
            "invalid digest %r: expected 'sha256:' followed by 64 hexadecimal digits" % (digest,)
        )
    if digest.startswith("sha256:") and not SHA256_DIGEST_RE.match(digest):
        raise ImageReferenceError(
            "invalid digest %r: a sha256 digest has exactly 64 lowercase hexadecimal digits"
            % (digest,)
        )
    return digest


def _looks_like_domain(component: str) -> bool:
    return (
        "." in component
        or ":" in component
        or component == "localhost"
        or component.startswith("[")
        or component != component.lower()
    )


def split_domain(name: str):
    """Split ``name`` into (domain or None, remote name) as the docker CLI does."""
    first, sep, rest = name.partition("/")
    if sep and _looks_like_domain(first):
        return first, rest
    return None, name


def parse_reference(text: str, default_registry: Optional[str] = None) -> ImageReference:
    """Parse ``[registry/]repository[:tag][@digest]``.

    ``default_registry`` fills in the registry when the text has none. No tag
    is implied: callers decide what a missing tag means.
    """
    if not isinstance(text, str) or not text.strip():
        raise ImageReferenceError("image reference must be a non-empty string")
    original = text
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        validate_digest(digest)
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1:]
        try:
            validate_tag(tag)
        except ImageReferenceError:
            raise ImageReferenceError("invalid reference %r: bad tag %r" % (original, tag))
    domain, remote = split_domain(text)
    if domain is not None and not DOMAIN_RE.match(domain):
        raise ImageReferenceError("invalid reference %r: bad registry host %r" % (original, domain))
    try:
        validate_repository(remote)
    except ImageReferenceError as exc:
        raise ImageReferenceError("invalid reference %r: %s" % (original, exc))
    if len(text) > NAME_TOTAL_LENGTH_MAX:
        raise ImageReferenceError("invalid reference %r: name longer than 255 characters" % original)
    registry = domain or default_registry
    if registry in DOCKER_HUB_HOSTS and "/" not in remote:
        remote = "library/" + remote
    return ImageReference(registry=registry, repository=remote, tag=tag, digest=digest)


def is_image_id(text: str) -> bool:
    """True for a full or short image ID (``sha256:<hex>`` or 12 to 64 hex digits)."""
    return isinstance(text, str) and bool(IMAGE_ID_RE.match(text))


def normalize_image_name(text: str) -> str:
    """Return the engine's spelling of ``text``: an image ID as given, else ``name:tag``.

    Raises ImageReferenceError for anything that is neither an ID nor a valid reference.
    """
    if is_image_id(text):
        return text if text.startswith("sha256:") or len(text) < 64 else "sha256:" + text
    ref = parse_reference(text)
    name = ref.registry + "/" + ref.repository if ref.registry else ref.repository
    if ref.registry in DOCKER_HUB_NAMES:
        name = ref.repository  # the engine lists Docker Hub images without the registry
    if name.startswith("library/"):
        name = name[len("library/"):]
    if ref.digest:
        return name + "@" + ref.digest
    return name + ":" + (ref.tag or "latest")
