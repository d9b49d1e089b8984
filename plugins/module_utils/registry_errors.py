# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exceptions of the registry client and the mapping of registry error bodies to one line."""

from __future__ import annotations

import json

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError, one_line

DELETE_FIX = (
    "enable deletes with 'storage: {delete: {enabled: true}}' in the registry's config.yml"
    " (storage.delete.enabled: true) or REGISTRY_STORAGE_DELETE_ENABLED=true in its environment,"
    " then restart it"
)


class RegistryError(DockhandError):
    """A failure talking to a registry; ``str(exc)`` is one readable line.

    ``status`` is the HTTP status (None when no answer came), ``code`` the
    first error code of the registry's error body (None when it had none).
    """

    def __init__(self, message, status=None, code=None):
        super().__init__(one_line(message))
        self.status = status
        self.code = code


class RegistryNotFound(RegistryError):
    """NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN or a bare 404."""


class RegistryDeleteDisabled(RegistryError):
    """The registry answered 405 UNSUPPORTED to a delete: deletes are disabled in its config."""


class RegistryAuthError(RegistryError):
    """Missing or rejected credentials, or not enough permission (401/403, DENIED)."""


class RegistryConnectionError(RegistryError):
    """No HTTP answer: connection refused, DNS, timeout, TLS failure."""


class RegistryInterrupted(RegistryError):
    """The run was asked to stop (SIGTERM) before it finished."""


def parse_error_body(content):
    """Return the list of ``{code, message, detail}`` dicts of a registry error body (maybe empty)."""
    if not content:
        return []
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    return [item for item in errors if isinstance(item, dict)]


def _describe_errors(errors):
    parts = []
    for item in errors[:3]:
        text = str(item.get("code") or "ERROR")
        if item.get("message"):
            text += ": " + str(item["message"])
        detail = item.get("detail")
        if detail not in (None, "", {}, []):
            text += " (" + (json.dumps(detail, sort_keys=True) if not isinstance(detail, str) else detail) + ")"
        parts.append(text)
    return "; ".join(parts)


NOT_FOUND_CODES = ("NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "BLOB_UPLOAD_UNKNOWN")


def error_from_response(response, what, registry, delete=False, username=None):
    """Build the RegistryError subclass that describes a failed HTTP answer.

    ``what`` says what was being done ("list tags of foo"); ``delete`` marks a
    DELETE so that 405 is explained as disabled deletes.
    """
    status = response.status_code
    content = b""
    try:
        content = response.content if getattr(response, "method", None) != "HEAD" else b""
    except Exception:  # a stream that broke while being read: the status alone must do
        content = b""
    errors = parse_error_body(content)
    code = str(errors[0].get("code")) if errors and errors[0].get("code") else None
    described = _describe_errors(errors) or (
        "HTTP %d %s" % (status, one_line(response.reason or "")) + _body_hint(content)
    )
    prefix = "cannot %s on registry %s: " % (what, registry)
    if status == 405 and delete:
        return RegistryDeleteDisabled(
            prefix + "the registry has deletes disabled (405 %s); %s" % (code or "UNSUPPORTED", DELETE_FIX),
            status, code or "UNSUPPORTED")
    if status == 404 or code in NOT_FOUND_CODES:
        return RegistryNotFound(prefix + _not_found_text(code) + " (%d %s)" % (status, code or "NOT_FOUND"), status, code)
    if status == 401:
        if username:
            text = ("the registry refused access for user %r (401 %s): wrong credentials, or the user lacks"
                    " permission for this" % (username, code or "UNAUTHORIZED"))
        else:
            text = ("the registry requires authentication (401 %s); set username and password,"
                    " or docker_config with credentials for this registry" % (code or "UNAUTHORIZED"))
        return RegistryAuthError(prefix + text, status, code or "UNAUTHORIZED")
    if status == 403 or code == "DENIED":
        user = "user %r" % username if username else "anonymous access"
        return RegistryAuthError(prefix + "access denied for %s (%d %s)" % (user, status, described), status, code or "DENIED")
    if status == 429 or code == "TOOMANYREQUESTS":
        return RegistryError(prefix + "too many requests, the registry is rate limiting (%d %s); retry later"
                             % (status, described), status, code or "TOOMANYREQUESTS")
    if status == 405 or code == "UNSUPPORTED":
        return RegistryError(prefix + "the registry does not allow this operation (%d %s); it may be read-only"
                             " or a pull-through cache" % (status, described), status, code or "UNSUPPORTED")
    if status == 400 and b"HTTPS server" in content:
        return RegistryConnectionError(
            "registry %s speaks https, not http: write the registry without http://" % registry, status)
    return RegistryError(prefix + "HTTP %d: %s" % (status, described), status, code)


def _not_found_text(code):
    return {
        "NAME_UNKNOWN": "repository not found",
        "MANIFEST_UNKNOWN": "manifest not found",
        "BLOB_UNKNOWN": "blob not found",
        "BLOB_UPLOAD_UNKNOWN": "blob upload not found",
    }.get(code, "not found")


def _body_hint(content):
    if not content:
        return ""
    try:
        text = one_line(content[:200].decode("utf-8", "replace"))
    except Exception:
        return ""
    return ": " + text if text else ""
