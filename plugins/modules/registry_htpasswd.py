#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_htpasswd
short_description: Manage a bcrypt htpasswd file for the distribution registry
version_added: 1.0.0
description:
  - Writes the htpasswd file that the distribution registry's C(htpasswd) authentication reads.
  - The registry only understands bcrypt entries and silently ignores any other line, so this module
    always writes bcrypt hashes (C($2y$), the variant C(htpasswd -B) writes).
  - An existing entry is kept as it is when its hash still matches the wanted password, so running the
    module again with the same users changes nothing, although bcrypt salts every hash differently.
  - The file is replaced atomically and created with mode V(0600) unless O(mode) says otherwise.
  - Every user and the O(mode), O(owner) and O(group) are checked before the file is touched, so bad input
    fails with one line and leaves the file as it was.
author:
  - dockhand.registry contributors (@dockhand)
requirements:
  - bcrypt (Python library, on the managed node)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff lists user names only, never hashes or passwords.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
    support: full
  platform:
    platforms: posix
options:
  path:
    description:
      - Path of the htpasswd file. Its directory must exist.
    type: path
    required: true
  users:
    description:
      - The users the file should grant access to.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - User name. It must not be empty, contain a colon or line break, or start with C(#) or whitespace,
            because the registry would read such a line as a comment, skip it, or cut the name short.
        type: str
        required: true
      password:
        description:
          - Password of the user. Never logged.
          - At most 72 bytes (UTF-8) and without line breaks; bcrypt uses no more than 72 bytes of a password.
        type: str
        required: true
  exclusive:
    description:
      - If V(true), entries for users not listed in O(users) are removed from the file.
      - If V(false), they are kept as they are.
    type: bool
    default: true
  rounds:
    description:
      - The bcrypt cost factor for new hashes. Every request to the registry verifies a hash,
        so very high values slow down every push and pull.
      - Existing entries are not rehashed when only this value changes.
    type: int
    default: 10
notes:
  - The O(mode) option defaults to V(0600) for a file this module creates or rewrites.
seealso:
  - name: Distribution registry htpasswd authentication
    description: How the registry reads the file.
    link: https://distribution.github.io/distribution/about/configuration/#htpasswd
"""

EXAMPLES = r"""
- name: Let two users push and pull
  dockhand.registry.registry_htpasswd:
    path: /etc/registry-server/registry/htpasswd
    users:
      - name: ci
        password: "{{ vault_registry_ci_password }}"
      - name: alice
        password: "{{ vault_registry_alice_password }}"

- name: Add a user and leave the others alone
  dockhand.registry.registry_htpasswd:
    path: /etc/registry-server/registry/htpasswd
    exclusive: false
    users:
      - name: bob
        password: "{{ vault_registry_bob_password }}"
"""

RETURN = r"""
users:
  description: User names in the file after the run (in check mode, the names it would hold).
  returned: success
  type: list
  elements: str
  sample: [alice, ci]
added:
  description: Users that got a new entry.
  returned: success
  type: list
  elements: str
  sample: [bob]
updated:
  description: Users whose entry was rehashed because the password changed or the entry was not bcrypt.
  returned: success
  type: list
  elements: str
  sample: []
removed:
  description: Users whose entry was removed.
  returned: success
  type: list
  elements: str
  sample: [olduser]
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.dockhand.registry.plugins.module_utils.atomic_file import (
    AtomicFile,
    WriteInterrupted,
    interrupted_write,
    validate_file_attributes,
)
from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError, run_or_fail

try:
    import bcrypt
except ImportError:
    BCRYPT_IMPORT_ERROR = traceback.format_exc()
    bcrypt = None
else:
    BCRYPT_IMPORT_ERROR = None

# Hashes are secrets: the mode without a mode option, and the mode of a new file until that one is applied.
DEFAULT_MODE = 0o600
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
# bcrypt reads at most this many bytes of a password; bcrypt 5 refuses longer ones.
BCRYPT_MAX_PASSWORD_BYTES = 72


class HtpasswdError(DockhandError):
    """Raised for input the htpasswd file cannot hold."""


def parse_htpasswd(text):
    """Return a list of (name, hash) pairs in file order, read the way the registry reads the file.

    Like distribution's htpasswd reader: lines end at "\n", are trimmed, and blank lines, comments
    and lines without a colon are skipped.
    """
    entries = []
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, hashed = line.split(":", 1)
        entries.append((name, hashed))
    return entries


def render_htpasswd(entries):
    return "".join("%s:%s\n" % (name, hashed) for name, hashed in entries)


def name_problem(name):
    """Why the htpasswd format cannot hold ``name``, or None."""
    if not name:
        return "it is empty"
    if ":" in name:
        return "it contains ':'"
    if "\n" in name or "\r" in name:
        return "it contains a line break"
    if name.startswith("#"):
        return "it starts with '#', so the line would be a comment"
    if name[0].isspace():
        return "it starts with whitespace, which the registry strips"
    return None


def password_problem(password):
    """Why ``password`` cannot be hashed, or None; never repeats the password."""
    if "\n" in password or "\r" in password:
        return "it contains a line break"
    size = len(to_bytes(password, errors="surrogate_or_strict"))
    if size > BCRYPT_MAX_PASSWORD_BYTES:
        return "it is %d bytes long and bcrypt takes at most %d" % (size, BCRYPT_MAX_PASSWORD_BYTES)
    return None


def validate_users(users):
    seen = set()
    for user in users:
        name = user["name"]
        problem = name_problem(name)
        if problem:
            raise HtpasswdError("invalid user name %r: %s" % (name, problem))
        problem = password_problem(user["password"])
        if problem:
            raise HtpasswdError("invalid password for user %r: %s" % (name, problem))
        if name in seen:
            raise HtpasswdError("user %r is listed twice" % name)
        seen.add(name)


def hash_matches(password, hashed):
    """True when ``hashed`` is a bcrypt hash of ``password``."""
    if not hashed.startswith(BCRYPT_PREFIXES):
        return False
    try:
        return bcrypt.checkpw(to_bytes(password), to_bytes(hashed))
    except ValueError:
        return False


def make_hash(password, rounds):
    hashed = to_native(bcrypt.hashpw(to_bytes(password), bcrypt.gensalt(rounds=rounds)))
    # htpasswd -B writes $2y$; every bcrypt implementation reads it.
    return "$2y$" + hashed[4:]


def plan_entries(existing, users, exclusive, rounds):
    """Decide the new entries; returns (entries, added, updated, removed).

    Hashes are only computed for users whose entry is missing or does not match.
    """
    wanted = dict((user["name"], user["password"]) for user in users)
    entries, updated, removed = [], [], []
    kept_names = set()
    for name, hashed in existing:
        if name in kept_names:
            # A duplicate line would shadow or be shadowed; keep only the first.
            removed.append(name)
            continue
        if name in wanted:
            if not hash_matches(wanted[name], hashed):
                hashed = make_hash(wanted[name], rounds)
                updated.append(name)
        elif exclusive:
            removed.append(name)
            continue
        entries.append((name, hashed))
        kept_names.add(name)
    added = []
    for user in users:
        if user["name"] not in kept_names:
            entries.append((user["name"], make_hash(user["password"], rounds)))
            added.append(user["name"])
    return entries, added, updated, sorted(set(removed))


class HtpasswdManager:
    """Brings one htpasswd file to the wanted set of users."""

    def __init__(self, module):
        self.module = module
        self.path = module.params["path"]
        self.result = dict(changed=False, added=[], updated=[], removed=[], users=[])

    def read_existing(self):
        if not os.path.exists(self.path):
            return None
        with open(self.path, "rb") as handle:
            return to_native(handle.read(), errors="surrogate_or_strict")

    def change_reason(self, old_text, new_text):
        """Return why the file must be written, or None when its content is right."""
        if old_text is None:
            return "the file does not exist"
        if old_text != new_text:
            return "the users or passwords differ"
        return None

    def write(self, content):
        # The file may be relabelled for the registry container (container_file_t, say); a rename would drop that.
        kept_context = None
        if self.module.selinux_enabled() and os.path.exists(self.path):
            kept_context = self.module.selinux_context(self.path)
        with AtomicFile(self.path, new_file_mode=DEFAULT_MODE) as out:
            out.write(to_bytes(content))
            out.commit()
        if kept_context is not None:
            self.module.set_context_if_different(self.path, kept_context, False)

    def run(self):
        params = self.module.params
        validate_users(params["users"])
        file_args = self.module.load_file_common_arguments(params)
        if file_args.get("mode") is None:
            file_args["mode"] = DEFAULT_MODE
        validate_file_attributes(file_args)
        old_text = self.read_existing()
        existing = parse_htpasswd(old_text or "")
        entries, added, updated, removed = plan_entries(existing, params["users"], params["exclusive"], params["rounds"])
        new_text = render_htpasswd(entries)
        reason = self.change_reason(old_text, new_text)
        self.result.update(users=[name for name, dummy in entries], added=added, updated=updated, removed=removed)
        if self.module._diff:
            self.result["diff"] = dict(
                before="".join("%s\n" % name for name, dummy in existing),
                after="".join("%s\n" % name for name, dummy in entries),
                before_header="%s (users)" % self.path,
                after_header="%s (users)" % self.path,
            )
        if reason is not None:
            self.result["changed"] = True
            if not self.module.check_mode:
                self.write(new_text)
        if os.path.exists(self.path):
            self.result["changed"] = self.module.set_fs_attributes_if_different(file_args, self.result["changed"])
        return self.result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            users=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    name=dict(type="str", required=True),
                    password=dict(type="str", required=True, no_log=True),
                ),
            ),
            exclusive=dict(type="bool", default=True),
            rounds=dict(type="int", default=10),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if bcrypt is None:
        module.fail_json(msg=missing_required_lib("bcrypt"), exception=BCRYPT_IMPORT_ERROR)
    if not 4 <= module.params["rounds"] <= 31:
        module.fail_json(msg="rounds must be between 4 and 31, got %d" % module.params["rounds"])

    def manage():
        try:
            return HtpasswdManager(module).run()
        except OSError as exc:
            # Reading the file: the system's words say why.
            raise HtpasswdError(to_native(exc))
        except WriteInterrupted as exc:
            # A BaseException until here, so that no handler on the way swallowed it.
            raise interrupted_write(exc, module.params["path"])

    module.exit_json(**run_or_fail(module, manage))


if __name__ == "__main__":
    main()
