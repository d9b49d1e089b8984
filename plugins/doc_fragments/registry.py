# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Registry HTTP API v2 connection options shared by the registry modules."""

    DOCUMENTATION = r"""
options:
  registry:
    description:
      - The registry to talk to, as V(host[:port]) or a URL V(https://host[:port]) or V(http://host[:port]).
      - An explicit V(http://) or V(https://) is used as given. A bare V(host[:port]) means https, except
        for loopback hosts (V(localhost), V(127.0.0.0/8), V(::1)), which try https first and fall back
        to plain http, as the Docker engine does.
      - V(docker.io) (and V(index.docker.io)) means Docker Hub, whose API host is V(registry-1.docker.io).
    type: str
    required: true
  username:
    description:
      - User name for the registry. Used for HTTP basic auth, or sent to the token service of a
        registry that uses bearer tokens.
      - If not set, credentials come from O(docker_config).
      - Requires O(password).
    type: str
  password:
    description:
      - Password (or access token) of O(username).
    type: str
  docker_config:
    description:
      - Path of a Docker C(config.json) to take credentials from when O(username) is not set.
      - Its C(credHelpers) entry for the registry, then its C(auths) entry, then its C(credsStore)
        are used, the way the docker CLI does; credential helpers run as C(docker-credential-<name> get).
      - If not set, C($DOCKER_CONFIG/config.json) or C(~/.docker/config.json) is read when it exists,
        and problems with that default file are ignored.
    type: path
  validate_certs:
    description:
      - Verify the registry's TLS certificate.
      - Set to V(false) only for test registries with self-signed certificates; prefer O(ca_cert).
    type: bool
    default: true
  ca_cert:
    description:
      - PEM file with the CA certificate(s) that signed the registry's certificate, or a folder of them
        (hashed names as C(c_rehash) makes).
      - If not set, C(/etc/docker/certs.d/<host:port>/ca.crt) is used when it exists (as the Docker engine
        does), else the system's trusted CAs.
    type: path
  client_cert:
    description:
      - PEM client certificate presented to the registry (mutual TLS).
      - If not set, C(/etc/docker/certs.d/<host:port>/client.cert) and C(client.key) are used when both exist.
    type: path
  client_key:
    description:
      - Private key of O(client_cert), when not in the same file.
    type: path
  timeout:
    description:
      - Seconds one request may take, from sending it to the last byte of its answer's body, however slowly the
        server sends that body (tag lists, catalog pages, manifests, image configs, token answers); connecting and
        each wait for the answer's headers are bounded by O(timeout) too. Blob transfers are the exception, since a
        large blob may rightly take longer; there each wait for more data is bounded by O(timeout) instead.
      - Also the budget for waiting between retries of one request (after 429 or 5xx answers, at most 5 attempts);
        the waits, whether the registry's C(Retry-After) or the module's backoff, add up to at most O(timeout)
        seconds, each at most 60. When the registry asks for a longer wait than is left, the module fails at once,
        saying so. Every failure after retries says how many attempts were made.
      - Listing tags or the catalog follows the registry's C(Link) headers for at most 1,000 pages, and stops
        early, with a clear message, when pages stay tiny (fewer than 10 entries on average after 100 pages) or
        3 pages in a row bring no new entry, since real registries never page like that.
    type: int
    default: 60
  concurrency:
    description:
      - Most requests in flight at once (and keep-alive connections kept open) for bulk work
        such as reading many manifests or deleting many tags.
    type: int
    default: 8
notes:
  - Connection options can be set once for all registry modules with C(module_defaults) and the
    action group C(group/dockhand.registry.registry).
  - Requests that the registry answers with 429 or a 5xx error are retried a few times with backoff,
    honoring C(Retry-After).
  - Bearer tokens are requested with the smallest scope each call needs and reused until they expire.
  - On redirects (for example blob downloads sent to object storage) the C(Authorization) header
    is never sent to another host.
requirements:
  - C(requests) on the managed node
"""

    # Every registry module: membership in the action group set with module_defaults.
    ACTIONGROUP_REGISTRY = r"""
attributes:
  action_group:
    support: full
    membership:
      - dockhand.registry.registry
  platform:
    platforms: posix
"""

    # The read-only registry_*_info modules.
    INFO_MODULE = r"""
attributes:
  check_mode:
    support: full
    details: The module never changes anything, so it runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: The module only reads.
"""
