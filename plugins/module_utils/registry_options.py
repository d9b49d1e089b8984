# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry modules' options: argument specs, their checks, and the settings of one registry client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import (
    validate_digest,
    validate_repository,
    validate_tag,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryError
from ansible_collections.dockhand.registry.plugins.module_utils.registry_transport import REQUESTS_IMPORT_ERROR

DEFAULT_TIMEOUT = 60
DEFAULT_CONCURRENCY = 8


def registry_argument_spec() -> dict:
    """The connection options documented in the ``dockhand.registry.registry`` doc fragment."""
    return dict(
        registry=dict(type="str", required=True),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        docker_config=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        ca_cert=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        timeout=dict(type="int", default=DEFAULT_TIMEOUT),
        concurrency=dict(type="int", default=DEFAULT_CONCURRENCY),
    )


def manifest_reference_argument_spec() -> dict:
    """``repository`` plus ``tag`` or ``digest``: one manifest, as registry_manifest and registry_manifest_info name it."""
    return dict(
        repository=dict(type="str", required=True),
        tag=dict(type="str"),
        digest=dict(type="str"),
    )


def validate_manifest_reference(params: Dict[str, Any]) -> None:
    """Raise ImageReferenceError (one line) for a repository, tag or digest the registry would reject."""
    validate_repository(params["repository"])
    if params.get("tag") is not None:
        validate_tag(params["tag"])
    if params.get("digest") is not None:
        validate_digest(params["digest"])


def require_registry_libraries(module):
    """Fail the module the ansible-test way when requests is missing."""
    if REQUESTS_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)


@dataclass(frozen=True)
class RegistrySettings:
    """How to reach one registry: the connection options of ``registry_argument_spec``, checked.

    ``option_prefix`` is the prefix the options had in the module (``source_``), so that
    messages name the option the user wrote. None for ``timeout`` or ``concurrency``
    means the default.
    """

    registry: str
    username: Optional[str] = None
    password: Optional[str] = None
    docker_config: Optional[str] = None
    validate_certs: bool = True
    ca_cert: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    timeout: Optional[int] = None
    concurrency: Optional[int] = None
    option_prefix: str = ""

    def __post_init__(self):
        if (self.username is None) != (self.password is None):
            raise RegistryError("{0}username and {0}password must be given together".format(self.option_prefix))
        if self.timeout is not None and self.timeout <= 0:
            raise RegistryError("timeout must be a positive number of seconds")
        if self.concurrency is not None and self.concurrency < 1:
            raise RegistryError("concurrency must be at least 1")
        if self.client_key and not self.client_cert:
            raise RegistryError("client_key needs client_cert")
        # Frozen, so the defaults are filled in the dataclass way.
        object.__setattr__(self, "timeout", self.timeout or DEFAULT_TIMEOUT)
        object.__setattr__(self, "concurrency", self.concurrency or DEFAULT_CONCURRENCY)

    @classmethod
    def from_params(cls, params: Dict[str, Any], prefix: str = "", **overrides) -> "RegistrySettings":
        """The settings in module parameters.

        With ``prefix`` (for example ``source_``) each option is read as
        ``<prefix><option>``. Options absent or None under the prefix fall back
        to the unprefixed value, except ``registry``, ``username`` and
        ``password``, which belong to one registry only. ``overrides`` win
        over both (for example ``registry=`` parsed out of a reference).
        """
        def pick(name, fallback=True):
            if name in overrides:
                return overrides[name]
            value = params.get(prefix + name)
            if value is None and fallback and prefix:
                value = params.get(name)
            return value

        validate_certs = pick("validate_certs")
        return cls(
            registry=pick("registry", fallback=False), username=pick("username", fallback=False),
            password=pick("password", fallback=False), docker_config=pick("docker_config"),
            validate_certs=True if validate_certs is None else bool(validate_certs),
            ca_cert=pick("ca_cert"), client_cert=pick("client_cert"), client_key=pick("client_key"),
            timeout=pick("timeout"), concurrency=pick("concurrency"), option_prefix=prefix,
        )
