#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_gc_referrers
short_description: Keep the referrers of kept images through garbage-collect --delete-untagged
version_added: 1.0.0
description:
  - C(registry garbage-collect --delete-untagged) of distribution deletes every manifest that has no tag and that
    no kept manifest lists. A referrer (a signature, SBOM or attestation, that is an OCI manifest with a C(subject)) pushed
    by digest only is linked to its image by nothing but its own C(subject) field, which the collector does not
    follow, so it would be deleted although its image stays.
  - This module reads the output of a C(garbage-collect --delete-untagged --dry-run) of that registry
    (O(gc_output)), fetches every manifest it names as eligible for deletion, and lists each one that has a
    C(subject) which stays in that subject's referrers tag (C(sha256-<hex>)), the OCI distribution-spec 1.1
    fallback that clients without the referrers API keep up to date anyway. The collector keeps a tagged index
    and everything it lists, so the referrer and its blobs stay.
  - A referrer whose subject is eligible too (or a referrer of such a referrer) goes with it and is reported in
    RV(skipped), as is one whose subject is not in the repository at all.
  - The role C(dockhand.registry.registry_server) calls it in its C(garbage_collect) entry point before anything
    changes; it is a module of its own so that it can be run and tested on any registry.
  - Costs one GET per eligible manifest, one HEAD per distinct subject that is not eligible, one GET of each
    kept subject's referrers tag and one PUT per referrers tag that lacks entries.
author:
  - dockhand.registry contributors (@dockhand)
extends_documentation_fragment:
  # Ours first: for attributes set twice, the fragment named first wins.
  - dockhand.registry.registry
  - dockhand.registry.registry.actiongroup_registry
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details: Reports what it would protect (RV(protected)) without writing a referrers tag.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Once every kept referrer is listed in its subject's referrers tag, a second run reports no change.
options:
  gc_output:
    description:
      - The standard output of C(registry garbage-collect --delete-untagged --dry-run <config>) of the registry
        given by O(registry), with distribution's C(manifest eligible for deletion:) lines and its
        C(<n> blobs marked, <n> blobs and <n> manifests eligible for deletion) summary.
      - Both forms of the line are read, distribution 3's C({<repository> <digest> [<tags>]}) and distribution
        2.8's bare C(<digest>) within the section its C(<repository>) line opens.
      - A line naming an eligible manifest that does not parse, a missing summary or a count that does not
        match fails the task before any request.
    type: str
    required: true
notes:
  - A referrer pushed after the dry run is not seen; run the collection right after this module, with the
    registry read-only or stopped (the role does).
"""

EXAMPLES = r"""
- name: Dry-run the collection
  ansible.builtin.command:
    argv: [docker, run, --rm, -v, /srv/registry:/var/lib/registry, -v, /etc/distribution:/etc/distribution:ro,
           "registry:3", garbage-collect, /etc/distribution/config.yml, --delete-untagged, --dry-run]
  register: gc_dry_run
  changed_when: false

- name: List the referrers of kept images in their referrers tags
  dockhand.registry.registry_gc_referrers:
    registry: 127.0.0.1:5000
    gc_output: "{{ gc_dry_run.stdout }}"
"""

RETURN = r"""
protected:
  description: >-
    The eligible referrers whose subject stays, each listed (in check mode: would be listed) in its subject's
    referrers tag.
  returned: success
  type: list
  elements: dict
  contains:
    repository:
      description: Repository of the referrer.
      type: str
    digest:
      description: Digest of the referrer.
      type: str
    subject:
      description: Digest of the manifest it refers to.
      type: str
    referrers_tag:
      description: The referrers tag that lists it.
      type: str
      sample: sha256-0f3e8e3f5b1d5a4b8b7e1a3a4f2c1f0e9d8c7b6a5f4e3d2c1b0a99887766554433
    referrers_tag_updated:
      description: Whether the tag did not list it yet (and was, or in check mode would be, updated).
      type: bool
skipped:
  description: Eligible referrers that go with the collection, with the reason.
  returned: success
  type: list
  elements: dict
  contains:
    repository:
      description: Repository of the referrer.
      type: str
    digest:
      description: Digest of the referrer.
      type: str
    subject:
      description: Digest of the manifest it refers to.
      type: str
    reason:
      description: Why it is not protected.
      type: str
      sample: its subject is deleted by the same collection
manifests_eligible:
  description: Number of manifests the dry run lists as eligible for deletion.
  returned: success
  type: int
  sample: 3
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.registry.plugins.module_utils.errors import run_or_fail
from ansible_collections.dockhand.registry.plugins.module_utils.gc_referrers import protect_referrers
from ansible_collections.dockhand.registry.plugins.module_utils.registry_client import RegistryClient
from ansible_collections.dockhand.registry.plugins.module_utils.registry_options import (
    registry_argument_spec,
    require_registry_libraries,
)


def main():
    argument_spec = registry_argument_spec()
    argument_spec.update(gc_output=dict(type="str", required=True))
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_together=[("username", "password")],
    )
    require_registry_libraries(module)

    def protect():
        with RegistryClient.from_params(module.params) as client:
            return protect_referrers(client, module.params["gc_output"], module.check_mode).to_result()

    module.exit_json(**run_or_fail(module, protect))


if __name__ == "__main__":
    main()
