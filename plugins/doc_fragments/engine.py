# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Docker engine connection options shared by the engine modules."""

    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The URL or Unix socket path of the Docker engine API, for example V(unix:///var/run/docker.sock)
        or V(tcp://192.0.2.23:2376).
      - If not set, the value of the E(DOCKER_HOST) environment variable is used, and if that is
        not set either, V(unix:///var/run/docker.sock).
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  tls:
    description:
      - Secure the connection to the API with TLS without verifying the engine's certificate.
      - Ignored when O(validate_certs=true), which implies TLS.
      - If not set, the value of the E(DOCKER_TLS) environment variable is used.
    type: bool
    default: false
  validate_certs:
    description:
      - Secure the connection with TLS and verify the engine's certificate.
      - If not set, the value of the E(DOCKER_TLS_VERIFY) environment variable is used.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate used to verify the engine's certificate.
      - If not set and E(DOCKER_CERT_PATH) is set, V(ca.pem) in that folder is used.
    type: path
    aliases: [ca_cert, tls_ca_cert, cacert_path]
  client_cert:
    description:
      - Client certificate presented to the engine.
      - If not set and E(DOCKER_CERT_PATH) is set, V(cert.pem) in that folder is used.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Private key of O(client_cert).
      - If not set and E(DOCKER_CERT_PATH) is set, V(key.pem) in that folder is used.
    type: path
    aliases: [tls_client_key, key_path]
  api_version:
    description:
      - The engine API version to speak. V(auto) negotiates the newest version both sides support.
      - If not set, the value of the E(DOCKER_API_VERSION) environment variable is used.
    type: str
    default: auto
    aliases: [docker_api_version]
  timeout:
    description:
      - Seconds to wait for an answer from the engine API.
      - Streams of archives and filesystems are not cut off by it once they flow, because the engine
        may need long for a big image before it sends the first byte.
      - If not set, the value of the E(DOCKER_TIMEOUT) environment variable is used.
    type: int
    default: 60
notes:
  - Connection options can be set once for all engine modules with
    C(module_defaults) and the action group C(group/dockhand.registry.engine).
  - This collection talks to the engine with the Docker SDK for Python; community.docker's modules
    with the same option names can share the same C(module_defaults) values.
requirements:
  - Docker SDK for Python (C(docker)) 7.1.0 or newer on the managed node (the version the tests run with)
  - C(requests) on the managed node
"""
