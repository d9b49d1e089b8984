# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shape checks for what a registry sends: catalog and tag pages, manifests, token answers.

A broken or hostile server must end in one line naming what was wrong, never in an
AttributeError or in garbage passed on as data. Each check raises ``AnswerError``
with a short description ("repositories is a str, expected a list"); the caller adds
what it was doing and the registry's name.
"""

from __future__ import annotations

from typing import Any, List

from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import (
    ReferenceError as ImageReferenceError,
    validate_digest,
    validate_repository,
    validate_tag,
)

# Longest piece of a server's text quoted in a message.
QUOTE_LIMIT = 60


class AnswerError(ValueError):
    """A registry answer has the wrong shape; ``str(exc)`` says how."""


def type_name(value: Any) -> str:
    """JSON's name for the type of ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def quoted(value: Any) -> str:
    """A short printable form of a server's value for a message."""
    text = repr(value)
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT - 3] + "..."


def page_names(data: Any, key: str) -> List[str]:
    """The names under ``key`` of one catalog (``repositories``) or tag list (``tags``) page.

    A missing key or ``null`` is an empty page (distribution sends ``"tags": null``);
    anything else must be a list of valid repository names or tags.
    """
    if not isinstance(data, dict):
        raise AnswerError("the answer is %s, expected an object with %r" % (type_name(data), key))
    names = data.get(key)
    if names is None:
        return []
    if not isinstance(names, list):
        raise AnswerError("%r is %s, expected a list" % (key, type_name(names)))
    validate = validate_repository if key == "repositories" else validate_tag
    for position, name in enumerate(names):
        if not isinstance(name, str):
            raise AnswerError("entry %d of %r is %s, expected a string" % (position, key, type_name(name)))
        try:
            validate(name)
        except ImageReferenceError:
            raise AnswerError("entry %d of %r, %s, is not a valid %s" % (
                position, key, quoted(name), "repository name" if key == "repositories" else "tag"))
    return names


def check_descriptor(descriptor: Any, where: str) -> dict:
    """A content descriptor: an object with a valid ``digest``, a string ``mediaType`` and an integer ``size``."""
    if not isinstance(descriptor, dict):
        raise AnswerError("%s is %s, expected an object" % (where, type_name(descriptor)))
    digest = descriptor.get("digest")
    if not isinstance(digest, str):
        raise AnswerError("%s has digest %s, expected a string" % (where, type_name(digest)))
    try:
        validate_digest(digest)
    except ImageReferenceError:
        raise AnswerError("%s has digest %s, which is not a digest" % (where, quoted(digest)))
    media_type = descriptor.get("mediaType")
    if media_type is not None and not isinstance(media_type, str):
        raise AnswerError("%s has mediaType %s, expected a string" % (where, type_name(media_type)))
    size = descriptor.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise AnswerError("%s has size %s, expected a whole number of bytes" % (where, quoted(size)))
    return descriptor


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


def token_from_answer(data: Any) -> tuple:
    """``(token, lifetime or None)`` of a token service's JSON answer."""
    if not isinstance(data, dict):
        raise AnswerError("the answer is %s, expected an object" % type_name(data))
    token = data.get("token") or data.get("access_token")
    if not token:
        raise AnswerError("the answer has no token")
    if not isinstance(token, str):
        raise AnswerError("the token is %s, expected a string" % type_name(token))
    if any(ord(c) < 32 or ord(c) > 126 for c in token):
        # Not quoted: it is a secret. Control characters would break (or inject) the Authorization header.
        raise AnswerError("the token holds characters that cannot go in an HTTP header")
    lifetime = data.get("expires_in")
    if isinstance(lifetime, str) and lifetime.strip().isdigit():
        lifetime = int(lifetime)
    if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, (int, float))):
        raise AnswerError("expires_in is %s, expected a number of seconds" % type_name(lifetime))
    return token, lifetime
