#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_cache_flush
short_description: Empty the redis database a distribution registry uses as its blob descriptor cache
version_added: 1.0.0
description:
  - After garbage collection the registry's redis blob descriptor cache still lists the freed blobs, so a
    C(HEAD) of a deleted layer answers 200 and a push skips a layer the storage no longer has.
  - This module empties that database (C(FLUSHDB)). Use a database that holds nothing but the registry's cache;
    the role's fleet garbage collection calls it between the collection and the restart of the replicas.
  - Speaks the redis protocol directly; no Python library is needed.
author:
  - dockhand.registry contributors (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Counts the keys and reports a change without deleting them.
  diff_mode:
    support: none
  idempotent:
    description: An empty database is not flushed again; the second run reports no change.
    support: full
  platform:
    platforms: posix
options:
  addr:
    description: Address of redis as the registry's C(redis.addr) has it, C(host:port).
    type: str
    required: true
  password:
    description: Password for C(AUTH). Never logged.
    type: str
  db:
    description: Number of the database the registry uses as its cache.
    type: int
    default: 0
  tls:
    description: Connect with TLS.
    type: bool
    default: false
  ca_cert:
    description: CA bundle to verify the redis server's certificate with (TLS only).
    type: path
  validate_certs:
    description: Verify the redis server's certificate (TLS only).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for redis.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Forget the blob descriptors after garbage collection
  dockhand.registry.registry_cache_flush:
    addr: 127.0.0.1:6379
    password: "{{ vault_registry_redis_password }}"
    db: 2
"""

RETURN = r"""
keys_before:
  description: Number of keys in the database before the flush.
  returned: success
  type: int
  sample: 42
reason:
  description: Why the database was (or in check mode would be) flushed; empty when nothing was to do.
  returned: success
  type: str
  sample: 42 cached blob descriptor key(s) in redis db 2
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.registry.plugins.module_utils.errors import run_or_fail
from ansible_collections.dockhand.registry.plugins.module_utils.redis_cache import RedisConnection, flush_reason


def main():
    module = AnsibleModule(
        argument_spec=dict(
            addr=dict(type="str", required=True),
            password=dict(type="str", no_log=True),
            db=dict(type="int", default=0),
            tls=dict(type="bool", default=False),
            ca_cert=dict(type="path"),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def flush():
        connection = RedisConnection(params["addr"], params["password"] or "", params["tls"], params["ca_cert"],
                                     params["validate_certs"], params["timeout"])
        try:
            connection.command("SELECT", params["db"])
            keys = connection.command("DBSIZE")
            reason = flush_reason(keys, params["db"])
            if reason and not module.check_mode:
                connection.command("FLUSHDB")
        finally:
            connection.close()
        return dict(changed=bool(reason), keys_before=keys, reason=reason or "")

    module.exit_json(**run_or_fail(module, flush))


if __name__ == "__main__":
    main()
