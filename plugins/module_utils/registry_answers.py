# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shape checks for what a registry sends besides manifests (oci.py checks those): catalog and tag pages, token answers.

A broken or hostile server must end in one line naming what was wrong, never in an
AttributeError or in garbage passed on as data. Each check raises ``AnswerError``
with a short description ("repositories is a str, expected a list"); the caller adds
what it was doing and the registry's name.
"""

from __future__ import annotations

from typing import Any, List

from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import (
    ImageReferenceError,
    validate_repository,
    validate_tag,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    AnswerError,
    quoted,
    type_name,
)


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
