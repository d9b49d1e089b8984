#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_commit
short_description: Make an image from a container (docker commit), idempotently
version_added: 1.0.0
description:
  - Creates an image from a container's filesystem and configuration, like C(docker commit),
    and tags it O(repository):O(tag).
  - Running the same task again on an unchanged container reports no change and creates no image.
  - B(How "unchanged" is decided.) Every image this module commits carries four labels that
    fingerprint what it was made from. The task is a no-op only when the image now at
    O(repository):O(tag) has all four and each one equals the value computed for this run.
    Otherwise (or with O(force=true)) the module commits.
  - V(dockhand.registry.commit.container) is the full ID of the container. Another container
    (also one re-created under the same name) always gives a new image.
  - V(dockhand.registry.commit.config) is the SHA-256 of the container's C(Config) section
    (what C(docker commit) copies into the image, such as command, entrypoint, environment, labels,
    user, working directory, exposed ports, volumes, ...) together with the ID of the image the
    container was created from.
  - V(dockhand.registry.commit.request) is the SHA-256 of O(author), O(comment) and the
    normalized O(changes).
  - V(dockhand.registry.commit.filesystem) is the SHA-256 of the container's whole filesystem
    exactly as C(docker export) streams it (names, contents, sizes, modes, owners, link targets
    and modification times as the engine writes them into the tar, that is at one-second
    resolution). Any added, deleted or modified file, also one copied in with C(docker cp) while
    the container is stopped, changes this value; reading files does not.
  - Limits of this rule, stated plainly. Every run reads the whole filesystem of the container
    (its image layers included) once through the engine's export endpoint, so the check costs
    time in proportion to the container's size, not to what changed. A file rewritten with the
    same content, size, mode and owner within the same second as before is indistinguishable.
    The fingerprint is taken right before the commit without pausing the container, so a running
    container that writes between the two may get one extra commit on the next run (never a
    wrongly skipped one, unless its files change back to exactly the fingerprinted state). A
    running container that keeps writing files gets a new image on every run, because its
    filesystem does change.
  - Labels are inherited by images built C(FROM) a committed image, or committed from a container of
    it. So the image at O(repository):O(tag) must also be exactly one commit on top of the image the
    container was created from, that is its layers are that image's layers plus at most one, and its history
    (C(docker image history)) is that image's history plus one entry. Otherwise the module commits.
    This reads only what every engine and image store shows (not the C(Container) field of
    C(docker image inspect), which Docker 25+ on the containerd store, and API 1.45 and later, leave
    out). If the image the container was created from no longer exists, this cannot be confirmed,
    and the module commits.
  - The image that held O(repository):O(tag) before a commit keeps existing, untagged unless it
    has other tags, as with C(docker commit). Remove it with C(docker image prune) or
    M(community.docker.docker_image_remove) when no longer needed.
author:
  - dockhand.registry contributors (@dockhand)
extends_documentation_fragment:
  - dockhand.registry.engine_actiongroup
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - dockhand.registry.engine
attributes:
  check_mode:
    support: full
    details: Reports whether an image would be committed and why, and commits nothing.
  diff_mode:
    support: full
    details: Shows the image ID at O(repository):O(tag) before and after.
  idempotent:
    support: full
    description: Running the task twice in a row on an unchanged container does not change anything the second time.
    details: See the description for how an unchanged container is recognized.
options:
  container:
    description:
      - Name or ID of the container to commit. It may be running, paused or stopped.
    type: str
    required: true
  repository:
    description:
      - Repository of the new image, optionally with a registry host, for example V(myapp) or
        V(registry.example.com:5000/team/myapp). Must not contain a tag or digest; see O(tag).
      - Validated against the distribution reference grammar (lowercase path components).
    type: str
    required: true
  tag:
    description:
      - Tag of the new image.
    type: str
    default: latest
  author:
    description:
      - Author recorded in the image (C(docker commit --author)), for example V(Jane Doe <jane@example.com>).
    type: str
  comment:
    description:
      - Commit message recorded as the image's C(Comment), what C(docker commit --message) sets.
      - The option is not called C(message) because Ansible reserves that name for itself
        (validate-modules refuses it as an option or alias).
    type: str
    aliases: [commit_message]
  changes:
    description:
      - Dockerfile instructions applied to the image's configuration (C(docker commit --change)),
        one instruction per item.
      - Allowed are C(CMD), C(ENTRYPOINT), C(ENV), C(EXPOSE), C(LABEL), C(ONBUILD), C(USER),
        C(VOLUME), C(WORKDIR), C(STOPSIGNAL) and C(HEALTHCHECK). Each item is checked before the
        engine is asked; anything else, a line break, or malformed arguments fail the task with
        one line naming the item.
      - Labels starting with V(dockhand.registry.commit.) are reserved for the fingerprint.
      - Engines older than Docker 23.0 refuse C(STOPSIGNAL) as a commit change; the module applies it
        to the configuration it sends with the commit instead, so it works with every engine.
    type: list
    elements: str
    default: []
  pause:
    description:
      - Pause a running container while the engine copies its filesystem into the image
        (C(docker commit --pause)), so the image is a consistent snapshot.
    type: bool
    default: true
  force:
    description:
      - Commit even when the image at O(repository):O(tag) was committed from the unchanged container
        with the same options.
    type: bool
    default: false
seealso:
  - module: dockhand.registry.image_archive
  - name: docker commit
    description: The Docker CLI command this module declares.
    link: https://docs.docker.com/reference/cli/docker/container/commit/
"""

EXAMPLES = r"""
- name: Commit the container "builder" as myapp:1.0
  dockhand.registry.image_commit:
    container: builder
    repository: myapp
    tag: "1.0"
    author: Jane Doe <jane@example.com>
    comment: Installed the application
    changes:
      - CMD ["/usr/local/bin/myapp", "--serve"]
      - EXPOSE 8080/tcp
      - ENV APP_MODE=production
      - LABEL org.opencontainers.image.version=1.0

- name: Commit to a registry repository name, talking to a remote engine
  dockhand.registry.image_commit:
    docker_host: tcp://build-host.example.com:2376
    validate_certs: true
    container: builder
    repository: registry.example.com:5000/team/myapp
    tag: nightly
  register: commit

- name: Show the new image's ID and layers
  ansible.builtin.debug:
    msg: "{{ commit.image.Id }} with {{ commit.image.RootFS.Layers | length }} layers"

- name: Always commit, even if nothing changed
  dockhand.registry.image_commit:
    container: builder
    repository: myapp
    tag: snapshot
    force: true
"""

RETURN = r"""
image:
  description:
    - Inspect data of the image at O(repository):O(tag) after the task, as C(docker image inspect)
      shows it (keys such as C(Id), C(RepoTags), C(Parent), C(Author), C(Comment), C(Created),
      C(Size), C(Config), C(RootFS)).
    - In check mode, the image that is there now, or V(null) when there is none.
  returned: success
  type: dict
  sample:
    Id: sha256:5c0aa7cbc0f3cbc8ad21e5bcda6d59c8b8c3c5d1d8d4b8b0a2be1a59a6e5f4c1
    RepoTags: ["myapp:1.0"]
    Parent: sha256:bf2e6d1ed39059f7c4ef1ab1aa43a3b8f9c8f0d1a4f6b6c2d2c1e3b1a0f9e8d7
    Author: Jane Doe <jane@example.com>
    Comment: Installed the application
    Created: "2026-11-30T04:11:19.865813386Z"
    Size: 1982467
    RootFS:
      Type: layers
      Layers:
        - sha256:0f1c9c5d2c1e1e0a4b4cfa4c1b7e0d6a2b2f6b0a9c3d2e1f0a9b8c7d6e5f4a3b
        - sha256:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b
reason:
  description:
    - Why an image was (or in check mode would be) committed; V(null) when nothing changed.
  returned: success
  type: str
  sample: the container's filesystem changed since myapp:1.0 was committed
container_id:
  description: Full ID of the committed container.
  returned: success
  type: str
  sample: 3f6a6c1e2d9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c
fingerprint:
  description:
    - The fingerprint labels computed for the container in this run (see the description).
    - In check mode the filesystem fingerprint is V(null) when the other parts already show that a
      commit is needed, because the filesystem is then not read.
  returned: success
  type: dict
  sample:
    dockhand.registry.commit.container: 3f6a6c1e2d9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c
    dockhand.registry.commit.config: sha256:2c1e1e0a4b4cfa4c1b7e0d6a2b2f6b0a9c3d2e1f0a9b8c7d6e5f4a3b0f1c9c5d
    dockhand.registry.commit.request: sha256:5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b9a8b7c6d
    dockhand.registry.commit.filesystem: sha256:e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b9a8b7c6d5e4f3a2b1c0d9
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.registry.plugins.module_utils.commit_changes import parse_changes, sha256_of_json
from ansible_collections.dockhand.registry.plugins.module_utils.engine_client import (
    commit_container,
    connect_engine,
    container_export_digest,
    engine_argument_spec,
    image_history,
    inspect_container,
    inspect_image,
    require_engine_libraries,
)
from ansible_collections.dockhand.registry.plugins.module_utils.errors import run_or_fail
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import validate_target_name

LABEL_PREFIX = "dockhand.registry.commit."
LABEL_CONTAINER = LABEL_PREFIX + "container"
LABEL_CONFIG = LABEL_PREFIX + "config"
LABEL_REQUEST = LABEL_PREFIX + "request"
LABEL_FILESYSTEM = LABEL_PREFIX + "filesystem"
FINGERPRINT_LABELS = (LABEL_CONTAINER, LABEL_CONFIG, LABEL_REQUEST, LABEL_FILESYSTEM)


def config_fingerprint(container_inspect):
    """Hash of what a commit takes from the container besides its files."""
    return sha256_of_json({
        "config": container_inspect.get("Config") or {},
        "image": container_inspect.get("Image"),
    })


def request_fingerprint(author, comment, changes):
    """Hash of the commit options that shape the image."""
    return sha256_of_json({
        "author": author or "",
        "comment": comment or "",
        "changes": [str(change) for change in changes],
    })


def fingerprint_labels(container_id, config_hash, request_hash, filesystem_hash):
    """The labels a commit records; see the module description."""
    return {
        LABEL_CONTAINER: container_id,
        LABEL_CONFIG: config_hash,
        LABEL_REQUEST: request_hash,
        LABEL_FILESYSTEM: filesystem_hash,
    }


def image_labels(image_inspect):
    """Labels of an inspected image (empty when it has none)."""
    config = (image_inspect or {}).get("Config") or {}
    return config.get("Labels") or {}


def lineage_problem(name, existing_image, existing_history, base_image, base_history):
    """Why the image at ``name`` is not one commit on top of ``base_image``, or None.

    ``base_image`` is the inspect data of the image the container was created
    from (None when it is gone); the histories are ``docker image history`` lists.
    """
    if base_image is None:
        return ("the image the container was created from no longer exists, so %s cannot be"
                " confirmed as committed from it" % name)
    base_layers = (base_image.get("RootFS") or {}).get("Layers") or []
    layers = (existing_image.get("RootFS") or {}).get("Layers") or []
    one_layer_more = layers[:len(base_layers)] == base_layers and len(layers) - len(base_layers) in (0, 1)
    if not one_layer_more or len(existing_history or []) != len(base_history or []) + 1:
        # Images built FROM a committed image, or committed from a container of
        # it, inherit its labels but are more than one commit on top of the base.
        return ("%s inherited its fingerprint labels: it is not one commit on top of the image"
                " the container was created from" % name)
    return None


def decide_commit(name, existing_image, wanted, force, lineage=None):
    """Return why a commit is needed, or None when the image at ``name`` is up to date.

    ``existing_image`` is the inspect data of the image now at ``name`` (or None),
    ``wanted`` the fingerprint labels computed for this run, ``lineage`` what
    ``lineage_problem`` found. A None filesystem fingerprint means "not read
    yet": everything else is decided without it.
    """
    if force:
        return "force is set"
    if existing_image is None:
        return "%s does not exist" % name
    labels = image_labels(existing_image)
    if not all(labels.get(key) for key in FINGERPRINT_LABELS):
        return "%s was not committed by dockhand.registry.image_commit" % name
    if labels[LABEL_CONTAINER] != wanted[LABEL_CONTAINER]:
        return "%s was committed from another container (%s)" % (name, labels[LABEL_CONTAINER][:12])
    if lineage:
        return lineage
    if labels[LABEL_CONFIG] != wanted[LABEL_CONFIG]:
        return "the container's configuration changed since %s was committed" % name
    if labels[LABEL_REQUEST] != wanted[LABEL_REQUEST]:
        return "author, comment or changes differ from those %s was committed with" % name
    if wanted[LABEL_FILESYSTEM] is not None and labels[LABEL_FILESYSTEM] != wanted[LABEL_FILESYSTEM]:
        return "the container's filesystem changed since %s was committed" % name
    return None


def commit_changes_with_labels(changes, labels):
    """The ``changes`` to send: the user's, then the fingerprint labels (which win).

    STOPSIGNAL is left out: see ``commit_config``.
    """
    label_args = " ".join(
        "%s=%s" % (key, json.dumps(value)) for key, value in sorted(labels.items())
    )
    sent = [str(change) for change in changes if change.instruction != "STOPSIGNAL"]
    return sent + ["LABEL " + label_args]


def commit_config(changes, container_config):
    """The configuration to send with the commit, or None to let the engine use the container's.

    Engines before 23.0 refuse STOPSIGNAL as a change, but take the container's
    configuration with the stop signal replaced, which is what the change means.
    """
    stop_signals = [change.arguments for change in changes if change.instruction == "STOPSIGNAL"]
    if not stop_signals:
        return None
    config = dict(container_config or {})
    config["StopSignal"] = stop_signals[-1]
    return config


class ImageCommitter:
    """Commits a container when its fingerprint differs from the tagged image's."""

    def __init__(self, module, client, changes):
        self.module = module
        self.client = client
        params = module.params
        self.container = params["container"]
        self.repository = params["repository"]
        self.tag = params["tag"]
        self.name = "%s:%s" % (self.repository, self.tag)
        self.author = params["author"]
        self.comment = params["comment"]
        self.pause = params["pause"]
        self.force = params["force"]
        self.changes = changes

    def _filesystem_fingerprint(self, container_id):
        return container_export_digest(
            self.client, container_id, "read the filesystem of container %s" % self.container)

    def _lineage(self, existing, container):
        base = inspect_image(self.client, container["Image"]) if container.get("Image") else None
        if base is None:
            return lineage_problem(self.name, existing, None, None, None)
        return lineage_problem(self.name, existing, image_history(self.client, existing["Id"]),
                               base, image_history(self.client, base["Id"]))

    def run(self):
        container = inspect_container(self.client, self.container)
        container_id = container["Id"]
        wanted = fingerprint_labels(
            container_id,
            config_fingerprint(container),
            request_fingerprint(self.author, self.comment, self.changes),
            None,
        )
        existing = inspect_image(self.client, self.name)
        lineage = None
        if not self.force and image_labels(existing).get(LABEL_CONTAINER) == container_id:
            lineage = self._lineage(existing, container)  # only worth asking when the labels are ours
        reason = decide_commit(self.name, existing, wanted, self.force, lineage)
        # Reading the filesystem is the expensive part: a commit records it, a no-op
        # needs it to decide, but check mode can skip it once the answer is known.
        if reason is None or not self.module.check_mode:
            wanted[LABEL_FILESYSTEM] = self._filesystem_fingerprint(container_id)
            reason = reason or decide_commit(self.name, existing, wanted, self.force, lineage)
        before_id = existing["Id"] if existing else None
        result = dict(
            changed=reason is not None, reason=reason, image=existing,
            container_id=container_id, fingerprint=wanted,
        )
        after_id = before_id
        if reason is not None:
            if self.module.check_mode:
                after_id = "(new image, not committed in check mode)"
            else:
                result["image"] = commit_container(
                    self.client, container_id, self.repository, self.tag,
                    message=self.comment, author=self.author, pause=self.pause,
                    changes=commit_changes_with_labels(self.changes, wanted),
                    conf=commit_config(self.changes, container.get("Config")),
                )
                after_id = result["image"]["Id"]
        if self.module._diff:
            result["diff"] = dict(
                before=dict(image=self.name, id=before_id),
                after=dict(image=self.name, id=after_id),
            )
        return result


def main():
    argument_spec = engine_argument_spec()
    argument_spec.update(
        container=dict(type="str", required=True),
        repository=dict(type="str", required=True),
        tag=dict(type="str", default="latest"),
        author=dict(type="str"),
        comment=dict(type="str", aliases=["commit_message"]),
        changes=dict(type="list", elements="str", default=[]),
        pause=dict(type="bool", default=True),
        force=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def validated_changes():
        validate_target_name(module.params["repository"], module.params["tag"])
        return parse_changes(module.params["changes"], reserved_label_prefix=LABEL_PREFIX)

    changes = run_or_fail(module, validated_changes)
    require_engine_libraries(module)
    module.exit_json(**run_or_fail(module, lambda: ImageCommitter(module, connect_engine(module.params), changes).run()))


if __name__ == "__main__":
    main()
