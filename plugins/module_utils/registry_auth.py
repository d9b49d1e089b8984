# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Authentication against a registry: challenges, basic auth, bearer tokens, docker config.json.

``parse_www_authenticate`` is pure. ``RegistryAuth``
holds the credentials of one registry and a cache of bearer tokens keyed by
scope; ``RegistryTransport`` asks it for headers before each call and hands it
every 401 answer.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ansible_collections.dockhand.registry.plugins.module_utils.errors import one_line
from ansible_collections.dockhand.registry.plugins.module_utils.http_body import (
    BodyDeadline,
    BodyTooLarge,
    read_body,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    DOCKER_HUB_HOSTS,
    AnswerError,
    url_for_message,
    without_queries,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_answers import token_from_answer
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import (
    RegistryAuthError,
    RegistryConnectionError,
    RegistryError,
)

DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
TOKEN_DEFAULT_LIFETIME = 60
# Renew a little early so that a token never expires between the check and the request.
TOKEN_EXPIRY_MARGIN = 5
CREDENTIAL_HELPER_TIMEOUT = 30

_TOKEN68_OR_PARAM_RE = re.compile(
    r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*'
)
_SCHEME_RE = re.compile(r"\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?=\s|,|$)")


@dataclass
class AuthChallenge:
    """One challenge of a WWW-Authenticate header: ``scheme`` in lowercase and its parameters."""

    scheme: str
    params: Dict[str, str] = field(default_factory=dict)

    @property
    def scopes(self) -> List[str]:
        """The scopes the server named (a bearer challenge may name several, separated by spaces)."""
        return [s for s in self.params.get("scope", "").split(" ") if s]


def parse_www_authenticate(value: Optional[str]) -> List[AuthChallenge]:
    """Parse a WWW-Authenticate header into its challenges (RFC 7235).

    Quoted values may hold commas (``scope="repository:a:pull,push"``);
    several challenges may share one header (``Basic realm="x", Bearer realm="y"``).
    """
    challenges: List[AuthChallenge] = []
    if not value:
        return challenges
    pos = 0
    length = len(value)
    current = None
    while pos < length:
        while pos < length and value[pos] in ", \t":
            pos += 1
        if pos >= length:
            break
        param = _TOKEN68_OR_PARAM_RE.match(value, pos)
        if param and current is not None:
            raw = param.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            current.params[param.group(1).lower()] = raw
            pos = param.end()
            continue
        scheme = _SCHEME_RE.match(value, pos)
        if not scheme:
            break
        current = AuthChallenge(scheme.group(1).lower())
        challenges.append(current)
        pos = scheme.end()
    return challenges


def select_challenge(challenges: List[AuthChallenge]) -> Optional[AuthChallenge]:
    """Prefer bearer over basic, as Docker does; ignore schemes we cannot answer."""
    for wanted in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == wanted:
                return challenge
    return None


@dataclass(frozen=True)
class Credentials:
    """Username and password, or an identity (refresh) token from ``docker login`` to an OAuth2 registry."""

    username: Optional[str] = None
    password: Optional[str] = None
    identity_token: Optional[str] = None
    source: str = "module options"

    def basic_header(self) -> Optional[str]:
        if self.username is None or self.password is None:
            return None
        raw = ("%s:%s" % (self.username, self.password)).encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")


def default_docker_config_path() -> str:
    """``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``, as the docker CLI reads."""
    folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(folder, "config.json")


def _config_key_host(key: str) -> str:
    """Reduce a config.json ``auths`` key (``https://host:port/v1/``, ``host``) to ``host[:port]``."""
    key = key.strip()
    key = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", key)
    return key.split("/", 1)[0].lower()


def _host_aliases(host: str) -> List[str]:
    host = host.lower()
    if host in DOCKER_HUB_HOSTS:
        return list(DOCKER_HUB_HOSTS)
    return [host]


def credentials_from_docker_config(host: str, path: Optional[str] = None, explicit: bool = False) -> Optional[Credentials]:
    """Find credentials for ``host`` in a Docker config.json.

    Order as the docker CLI: ``credHelpers[host]``, then ``credsStore``, then
    ``auths[host]``. Problems with a file the user did not name are ignored
    (it is only a default); with an explicit ``docker_config`` they raise.
    """
    path = path or default_docker_config_path()
    try:
        with open(path, "rb") as handle:
            config = json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        if explicit:
            raise RegistryError("docker_config %s does not exist" % path)
        return None
    except (OSError, ValueError) as exc:
        if explicit:
            raise RegistryError("cannot read docker_config %s: %s" % (path, exc))
        return None
    if not isinstance(config, dict):
        if explicit:
            raise RegistryError("docker_config %s is not a JSON object" % path)
        return None
    aliases = _host_aliases(host)
    is_hub = host.lower() in DOCKER_HUB_HOSTS
    server = DOCKER_HUB_CONFIG_KEY if is_hub else host
    helpers = config.get("credHelpers") or {}
    helper = None
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _config_key_host(key) in aliases:
                helper = name
                break
    if helper:
        return run_credential_helper(helper, server, explicit)
    auths = config.get("auths") or {}
    entry = None
    if isinstance(auths, dict):
        for key, value in auths.items():
            if _config_key_host(key) in aliases and isinstance(value, dict):
                entry = value
                break
    if entry:
        found = _credentials_from_auth_entry(entry, path)
        if found is not None:
            return found
    store = config.get("credsStore")
    if store:
        return run_credential_helper(store, server, explicit)
    return None


def _credentials_from_auth_entry(entry: dict, path: str) -> Optional[Credentials]:
    source = "docker_config %s" % path
    if entry.get("identitytoken"):
        return Credentials(username=entry.get("username"), identity_token=entry["identitytoken"], source=source)
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise RegistryError("docker_config %s: an 'auth' entry is not base64 of user:password" % path)
        username, sep, password = decoded.partition(":")
        if not sep:
            raise RegistryError("docker_config %s: an 'auth' entry is not base64 of user:password" % path)
        return Credentials(username=username, password=password, source=source)
    if entry.get("username") and entry.get("password") is not None:
        return Credentials(username=entry["username"], password=entry["password"], source=source)
    return None


def run_credential_helper(name: str, server: str, explicit: bool = True) -> Optional[Credentials]:
    """Ask ``docker-credential-<name> get`` for the credentials of ``server``.

    Returns None when the helper has none for that server.
    """
    program = "docker-credential-" + name
    executable = shutil.which(program)
    if executable is None:
        if explicit:
            raise RegistryError("credential helper %s (from docker_config) is not installed or not in PATH" % program)
        return None
    try:
        proc = subprocess.run(
            [executable, "get"], input=server.encode("utf-8"), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=CREDENTIAL_HELPER_TIMEOUT, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryError("credential helper %s failed: %s" % (program, exc))
    output = (proc.stdout or b"").decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        if "credentials not found" in output.lower() or "credentials not found" in proc.stderr.decode("utf-8", "replace").lower():
            return None
        raise RegistryError("credential helper %s failed for %s: %s" % (
            program, server, one_line(output or proc.stderr.decode("utf-8", "replace"))))
    try:
        data = json.loads(output)
    except ValueError:
        raise RegistryError("credential helper %s returned something that is not JSON" % program)
    username, secret = data.get("Username"), data.get("Secret")
    source = "credential helper " + program
    if not secret:
        return None
    if username == "<token>":
        return Credentials(identity_token=secret, source=source)
    return Credentials(username=username, password=secret, source=source)


def scope_key(scopes) -> frozenset:
    return frozenset(scopes or ())


class RegistryAuth:
    """Credentials of one registry plus the state learned from its challenges.

    Thread safe: ``map_bounded`` workers share one instance.
    """

    def __init__(self, registry: str, credentials: Optional[Credentials], session_factory, timeout, clock=time.time,
                 option_prefix: str = ""):
        self.registry = registry
        # Messages name the options the user set, e.g. source_username for registry_manifest's source.
        self.option_prefix = option_prefix
        self.credentials = credentials
        self._session_factory = session_factory
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._challenge: Optional[AuthChallenge] = None
        self._tokens: Dict[frozenset, tuple] = {}
        self.tokens_fetched = 0

    @property
    def username(self) -> Optional[str]:
        return self.credentials.username if self.credentials else None

    @property
    def scheme(self) -> Optional[str]:
        return self._challenge.scheme if self._challenge else None

    def learn(self, response) -> Optional[AuthChallenge]:
        """Remember the challenge of a 401 answer; return it (None if we cannot answer it)."""
        challenge = select_challenge(parse_www_authenticate(response.headers.get("WWW-Authenticate")))
        if challenge is not None:
            with self._lock:
                self._challenge = challenge
        return challenge

    def headers(self, scopes) -> Dict[str, str]:
        """Authorization header for a call that needs ``scopes`` (empty when no auth is known to be needed)."""
        challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            header = self.credentials.basic_header() if self.credentials else None
            return {"Authorization": header} if header else {}
        token = self._token(scopes)
        return {"Authorization": "Bearer " + token} if token else {}

    def handle_unauthorized(self, response, scopes, sent_headers) -> List[str]:
        """Decide what to do with a 401: return the scopes to retry with, or raise."""
        challenge = self.learn(response)
        if challenge is None:
            raise RegistryAuthError(
                "registry %s answered 401 with no usable WWW-Authenticate challenge (%r)"
                % (self.registry, response.headers.get("WWW-Authenticate")), 401, "UNAUTHORIZED")
        if challenge.scheme == "basic":
            if not self.credentials or not self.credentials.basic_header():
                raise self._missing_credentials()
            if sent_headers.get("Authorization", "").startswith("Basic "):
                raise self._rejected(401)
            return list(scopes or ())
        wanted = list(scopes or ())
        for scope in challenge.scopes:
            if scope not in wanted:
                wanted.append(scope)
        with self._lock:
            self._tokens.pop(scope_key(scopes), None)
            self._tokens.pop(scope_key(wanted), None)
        return wanted

    def _missing_credentials(self):
        return RegistryAuthError(
            "registry %s requires authentication: set %susername and %spassword, or %sdocker_config"
            " with credentials for %s" % ((self.registry,) + (self.option_prefix,) * 3 + (self.registry,)),
            401, "UNAUTHORIZED")

    def _rejected(self, status, detail=""):
        user = self.credentials.username if self.credentials else None
        text = "registry %s rejected the credentials" % self.registry
        if user:
            text += " of user %r" % user
        if self.credentials and self.credentials.source != "module options":
            text += " (from %s)" % self.credentials.source
        text += ": wrong username or password (HTTP %d%s)" % (status, ", " + detail if detail else "")
        return RegistryAuthError(text, status, "UNAUTHORIZED")

    def _token(self, scopes) -> Optional[str]:
        key = scope_key(scopes)
        now = self._clock()
        cached = self._tokens.get(key)
        if cached and cached[1] > now:
            return cached[0]
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > self._clock():
                return cached[0]
            token, expires_at = self._fetch_token(sorted(key))
            self._tokens[key] = (token, expires_at)
            return token

    def _fetch_token(self, scopes):
        challenge = self._challenge
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryAuthError("registry %s sent a bearer challenge without realm" % self.registry, 401)
        shown_realm = url_for_message(realm)  # messages name the token service without its query
        session = self._session_factory()
        creds = self.credentials
        deadline = time.monotonic() + self._timeout
        try:
            if creds and creds.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                        "client_id": "dockhand.registry", "access_type": "offline"}
                if challenge.params.get("service"):
                    form["service"] = challenge.params["service"]
                if scopes:
                    form["scope"] = " ".join(scopes)
                response = session.post(realm, data=form, timeout=self._timeout, allow_redirects=False,
                                        stream=True)
            else:
                query = []
                if challenge.params.get("service"):
                    query.append(("service", challenge.params["service"]))
                query.extend(("scope", s) for s in scopes)
                if creds and creds.username:
                    query.append(("account", creds.username))
                headers = {}
                basic = creds.basic_header() if creds else None
                if basic:
                    headers["Authorization"] = basic
                response = session.get(realm, params=query, headers=headers, timeout=self._timeout,
                                       allow_redirects=False, stream=True)
            # The whole answer within timeout, however slowly the token service sends it.
            body = read_body(response.raw, deadline, decode=True)
        except BodyDeadline:
            raise RegistryConnectionError("cannot get a token from %s for registry %s: the answer did not arrive"
                                          " completely within %s seconds (timeout)" % (shown_realm, self.registry, self._timeout))
        except BodyTooLarge:
            raise RegistryAuthError("token service %s of registry %s sent an answer larger than 16 MiB" % (
                shown_realm, self.registry))
        except RegistryError:
            raise
        except Exception as exc:
            raise RegistryConnectionError("cannot get a token from %s for registry %s: %s" % (
                shown_realm, self.registry, without_queries(one_line(exc))))
        self.tokens_fetched += 1
        if response.status_code in (401, 403):
            if creds:
                raise self._rejected(response.status_code, "token service " + shown_realm)
            raise self._missing_credentials()
        if response.status_code != 200:
            raise RegistryAuthError("token service %s of registry %s answered HTTP %d: %s" % (
                shown_realm, self.registry, response.status_code, one_line(body[:200].decode("utf-8", "replace"))),
                response.status_code)
        try:
            token, lifetime = token_from_answer(json.loads(body.decode("utf-8")))
        except ValueError as exc:
            # AnswerError is a ValueError too; json's own message says nothing to the user.
            why = str(exc) if isinstance(exc, AnswerError) else "the answer is not JSON"
            raise RegistryAuthError("token service %s of registry %s answered badly: %s" % (shown_realm, self.registry, why))
        lifetime = int(lifetime) if lifetime and lifetime > 0 else TOKEN_DEFAULT_LIFETIME
        margin = min(TOKEN_EXPIRY_MARGIN, lifetime / 4.0)
        return token, self._clock() + lifetime - margin
