#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_repo_info
short_description: List the repositories and tags of a registry (Registry HTTP API v2)
version_added: 1.0.0
description:
  - Lists one repository (O(repository)) or every repository of the registry's catalog, optionally
    filtered by a regular expression (O(match)), with the tags of each.
  - With O(details=true) each tag is resolved to its manifest digest, media type, image creation
    time and total size. Manifests and image configs shared by several tags are fetched once, and
    up to O(concurrency) requests run at once over keep-alive connections.
  - The catalog and tag lists are read page by page following the registry's C(Link) headers,
    never asking for more entries per page than the registry allows.
  - Read-only; talks HTTP to the registry and needs no Docker engine.
author:
  - dockhand.registry contributors (@dockhand)
extends_documentation_fragment:
  # Ours first: for attributes set twice, the fragment named first wins.
  - dockhand.registry.registry
  - dockhand.registry.registry.actiongroup_registry
  - dockhand.registry.registry.info_module
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
options:
  repository:
    description:
      - One repository to list, for example V(team/app). The catalog is not read.
      - On Docker Hub, a name without V(/) means an official image (V(library/<name>)).
      - Mutually exclusive with O(match).
    type: str
  match:
    description:
      - Python regular expression; only catalog entries it finds a match in (C(re.search)) are
        listed, for example V(^team/).
      - Mutually exclusive with O(repository).
    type: str
  list_tags:
    description:
      - Read the tag list of every repository.
      - Set to V(false) to get only repository names from the catalog, which costs one request
        per page of the catalog instead of one more per repository.
    type: bool
    default: true
  details:
    description:
      - Resolve every tag to its manifest and add RV(repositories[].manifests).
      - Costs one request per tag, plus one per distinct image config (and per platform of
        multi-platform images).
      - Requires O(list_tags=true).
    type: bool
    default: false
  storage:
    description:
      - Add RV(repositories[].storage), the bytes the blobs of each repository take, and RV(storage_total).
      - A repository's blobs are what its tags reach - each tagged manifest itself, the platform manifests of
        an index, and the config and layers of every image manifest - and so include the signatures, SBOMs and
        attestations that are tagged (cosign-style tags C(sha256-<hex>.sig), C(.att), C(.sbom)) or listed by a
        referrers tag C(sha256-<hex>), which holds an index of them. Referrers that only a registry's referrers
        API lists, untagged, are not counted (asking would cost a request per manifest). Manifests count as blobs, since
        the registry stores each one as a blob under its digest.
      - Each blob counts once per repository, however many tags, images or platforms use it. A blob is shared
        when another repository of this run's list uses it too, so O(repository) and O(match) narrow what
        shared means. Manifests left untagged are not seen (the registry API cannot list them).
      - Costs one manifest GET per tag (the same GET O(details) makes, made once when both are set), plus one per
        platform manifest or listed referrer, each digest fetched once per run and up to O(concurrency) at once.
        No config or layer is read; sizes come from the descriptors in the manifests, as the manifests declare
        them.
      - Requires O(list_tags=true).
    type: bool
    default: false
notes:
  - Repositories and tags are returned in the order the registry lists them; the distribution
    registry sorts its catalog, but not necessarily tag lists.
seealso:
  - module: dockhand.registry.registry_manifest_info
  - module: dockhand.registry.registry_repo
"""

EXAMPLES = r"""
- name: Tags of one repository
  dockhand.registry.registry_repo_info:
    registry: registry.example.com
    repository: team/app
  register: app_info

- name: Every repository under team/, with digest, creation time and size of each tag
  dockhand.registry.registry_repo_info:
    registry: registry.example.com
    username: reader
    password: "{{ registry_password }}"
    match: "^team/"
    details: true
  register: team_info

- name: Only the repository names of a local registry
  dockhand.registry.registry_repo_info:
    registry: 127.0.0.1:5000
    list_tags: false
  register: catalog

- name: Bytes per repository under team/, shared with another team/ repository or unique to it
  dockhand.registry.registry_repo_info:
    registry: registry.example.com
    match: "^team/"
    storage: true
  register: team_storage

- name: Show the repositories that take the most bytes of their own
  ansible.builtin.debug:
    msg: "{{ team_storage.repositories | sort(attribute='storage.bytes_unique', reverse=true)
             | map(attribute='name') | list }}"

- name: Show the digest of team/app:v1
  ansible.builtin.debug:
    msg: >-
      {{ (team_info.repositories | selectattr('name', '==', 'team/app') | first).manifests['v1'].digest }}
"""

RETURN = r"""
repositories:
  description:
    - The repositories, in catalog order (or the one O(repository)).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Repository name.
      type: str
      sample: team/app
    tags:
      description:
        - Tag names. Empty when the repository has no tags left.
        - Absent when O(list_tags=false).
      type: list
      elements: str
      sample: [latest, v1]
    manifests:
      description:
        - Only with O(details=true). For each tag name, what it points at.
        - A tag removed while the module ran is missing here.
      type: dict
      sample:
        v1:
          digest: sha256:313e4e2b775b8dc19d12d72fc129a63fa53bf87c4fc98a7c60ec399dd2643bf1
          media_type: application/vnd.docker.distribution.manifest.v2+json
          created: "2020-01-01T00:00:00Z"
          size: 11099
      contains:
        digest:
          description: Digest of the manifest the tag points at.
          type: str
        media_type:
          description: Media type of that manifest (image manifest or index/manifest list).
          type: str
        created:
          description:
            - Creation time of the image from its config, as the image records it.
            - For a multi-platform index, the newest creation time of its platform images.
            - V(null) when the image records none.
          type: str
        size:
          description:
            - Total bytes the image takes in the registry as the manifests declare, that is the manifest,
              its config and its (compressed) layers; for an index, the index plus every platform image.
            - Blobs shared by several platforms are counted once.
          type: int
    storage:
      description:
        - Only with O(storage=true). The blobs this repository's tags reach, each counted once (see O(storage)).
      type: dict
      sample:
        blobs: 7
        bytes_total: 4096
        bytes_unique: 3072
        bytes_shared: 1024
        missing_manifests: []
      contains:
        blobs:
          description: How many distinct blobs (manifests, configs, layers).
          type: int
        bytes_total:
          description: Their bytes; V(bytes_unique) plus V(bytes_shared).
          type: int
        bytes_unique:
          description: Bytes of the blobs no other listed repository uses.
          type: int
        bytes_shared:
          description: Bytes of the blobs another listed repository uses too.
          type: int
        missing_manifests:
          description:
            - Digests an index lists that the registry does not have (an index broken by garbage collection, for
              example); they count no bytes.
          type: list
          elements: str
storage_total:
  description:
    - Only with O(storage=true). The listed repositories together, every blob counted once however many of them
      use it.
  returned: when O(storage=true)
  type: dict
  sample:
    repositories: 2
    blobs: 11
    bytes_total: 7168
    bytes_shared: 1024
  contains:
    repositories:
      description: How many repositories were counted.
      type: int
    blobs:
      description: How many distinct blobs they take.
      type: int
    bytes_total:
      description: Bytes of those blobs; what the listed repositories take in the registry's storage.
      type: int
    bytes_shared:
      description: Bytes of the blobs more than one listed repository uses.
      type: int
"""

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.registry.plugins.module_utils.errors import run_or_fail
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import validate_repository
from ansible_collections.dockhand.registry.plugins.module_utils.registry_client import RegistryClient
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryNotFound
from ansible_collections.dockhand.registry.plugins.module_utils.registry_inspect import (
    ManifestInspector,
    hub_repository,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_options import (
    registry_argument_spec,
    require_registry_libraries,
)
from ansible_collections.dockhand.registry.plugins.module_utils.storage_accounting import account, reachable


class RepositoryLister:
    """Reads the catalog, tag lists and (with details) manifests; never writes."""

    def __init__(self, client, params):
        self.client = client
        self.params = params

    def repository_names(self):
        if self.params["repository"]:
            return [hub_repository(self.client, self.params["repository"])]
        names = self.client.catalog()
        if self.params["match"]:
            pattern = re.compile(self.params["match"])
            names = [name for name in names if pattern.search(name)]
        return names

    def _tags_or_empty(self, name):
        try:
            return self.client.list_tags(name)
        except RegistryNotFound:
            # Listed by the catalog but gone (or never tagged) by now.
            return []

    def run(self):
        names = self.repository_names()
        if not self.params["list_tags"]:
            return dict(changed=False, repositories=[dict(name=name) for name in names])
        if self.params["repository"]:
            tag_lists = [self.client.list_tags(names[0])]
        else:
            tag_lists = self.client.map_bounded(self._tags_or_empty, names)
        repositories = [dict(name=name, tags=tags) for name, tags in zip(names, tag_lists)]
        result = dict(changed=False, repositories=repositories)
        if not (self.params["details"] or self.params["storage"]):
            return result
        inspector = ManifestInspector(self.client)
        pairs = [(entry["name"], tag) for entry in repositories for tag in entry["tags"]]
        # One GET per tag, shared by both options.
        manifests = inspector.tag_manifests(pairs)
        if self.params["details"]:
            summaries = inspector.summarize_many(pairs, manifests)
            for entry in repositories:
                entry["manifests"] = {}
            by_name = {entry["name"]: entry for entry in repositories}
            for (name, tag), summary in zip(pairs, summaries):
                if summary is not None:
                    by_name[name]["manifests"][tag] = summary
        if self.params["storage"]:
            result["storage_total"] = self._storage(inspector, repositories, pairs, manifests)
        return result

    def _storage(self, inspector, repositories, pairs, manifests):
        """Add each repository's ``storage`` figures; return the totals over all of them."""
        items = [(name, manifest) for (name, _tag), manifest in zip(pairs, manifests) if manifest is not None]
        # Platform manifests, and the referrers that referrers tags list; configs and layers are never read.
        inspector.load_descendants(items)
        roots = {}
        for name, manifest in items:
            roots.setdefault(name, set()).add(manifest.digest)
        # Each repository's own reads: a manifest missing in one may well be in another.
        reaches = dict((entry["name"], reachable(roots.get(entry["name"], ()), inspector.known(entry["name"])))
                       for entry in repositories)
        report = account(dict((name, reach.manifests) for name, reach in reaches.items()))
        for entry in repositories:
            figures = report.repositories[entry["name"]].to_result()
            figures["missing_manifests"] = reaches[entry["name"]].missing
            entry["storage"] = figures
        return report.total_result()


def main():
    argument_spec = registry_argument_spec()
    argument_spec.update(
        repository=dict(type="str"),
        match=dict(type="str"),
        list_tags=dict(type="bool", default=True),
        details=dict(type="bool", default=False),
        storage=dict(type="bool", default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("repository", "match")],
        required_together=[("username", "password")],
    )
    params = module.params
    if params["repository"] is not None:
        run_or_fail(module, lambda: validate_repository(params["repository"]))
    if params["match"] is not None:
        try:
            re.compile(params["match"])
        except re.error as exc:
            module.fail_json(msg="match %r is not a valid regular expression: %s" % (params["match"], exc))
    for option in ("details", "storage"):
        if params[option] and not params["list_tags"]:
            module.fail_json(msg="%s=true needs list_tags=true" % option)
    require_registry_libraries(module)

    def list_repositories():
        with RegistryClient.from_params(params) as client:
            return RepositoryLister(client, params).run()

    module.exit_json(**run_or_fail(module, list_repositories))


if __name__ == "__main__":
    main()
