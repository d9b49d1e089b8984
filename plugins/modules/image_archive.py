#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_archive
short_description: Save, load, export and import image archives (docker save/load/export/import), idempotently
version_added: 1.0.0
description:
  - Moves images between the Docker engine and tar files, like C(docker save), C(docker load),
    C(docker export) and C(docker import), but declared and idempotent.
  - Archives are streamed between the engine and the file; memory use does not grow with the size
    of an image.
  - Files are written to a temporary file next to O(path), flushed to disk, and renamed over O(path)
    only when complete. On any failure (bad name, engine error, full disk, SIGTERM) the file
    that was at O(path) before is untouched and no temporary file is left.
  - A run killed with SIGKILL cannot remove its temporary file. Temporary files are therefore named
    C(.<file name>.dockhand-tmp-<random>.tmp) next to O(path), and each run that writes holds a lock
    (C(flock)) on its own. The next run for the same O(path) (outside check mode, also when it has
    nothing to write) removes the files whose lock nobody holds, which are those of dead runs, and
    never the file of a run that is still writing; it warns and returns them in RV(removed_temp_files).
  - Bad O(mode), O(owner) or O(group) fail the task before anything is written or replaced.
  - B(state=saved) writes the images O(names) to O(path). It is a no-op when the archive at O(path)
    already holds exactly the requested images, each with exactly the requested tags (names given by
    ID or digest add no tag), and has the requested O(compression).
  - B(What "the archive holds an image" means on each image store.) An image is the one with the
    engine's own ID (RV(images[].id), what C(docker image inspect) shows as C(Id)).
    With a graph driver (for example overlay2, the default before Docker 29), that ID is the digest of
    the image configuration; the archive holds the image when its C(manifest.json) (or C(index.json))
    lists an image with that configuration digest (RV(images[].config_digest)).
    With the containerd image store (the default of fresh Docker 29 installs), the ID is the digest of
    the manifest or index that the image points at; the archive holds the image when its C(index.json)
    lists that digest (RV(images[].manifest_digest)). Another manifest of the same configuration (for
    example with differently compressed layers) is another image there.
    An archive written by this module before, or by C(docker save) of the same engine, is therefore a
    no-op on every store; an archive written by an engine with the other kind of store is rewritten.
  - How that check stays cheap. For an uncompressed archive only the tar member headers and the
    small index files (C(manifest.json), C(repositories), C(index.json)) are read; the layer data is
    skipped with seeks. For a gzip archive written by this module, the file ends with a small empty
    gzip member whose header carries the index, together with the offset and the CRC-32/size
    trailer of the compressed tar; it is used only when those still match the file. Decompressors
    (C(gzip), C(docker load), Python) concatenate gzip members, so the archive's content is exactly
    what the engine wrote. Gzip archives made by other tools (for example C(docker save | gzip))
    are decompressed once as a stream to find their index.
  - The returned RV(sha256) is computed while writing. It is remembered in the extended attribute
    C(user.dockhand.registry.sha256) together with the file's size, modification time and inode, so a
    no-op run returns it without re-reading the file. Without that attribute (another file system,
    a copied file) the file is read once to compute it.
  - B(state=loaded) loads the archive at O(path) into the engine. It reads the archive's index first
    (cheaply, as above) and is a no-op when every image in it is present and every tag in it points at
    that image. The file is streamed to the engine as it is; the engine decompresses gzip archives
    itself. Archives of every layout load into every store, that is the classic layout of Docker before 25
    (no C(index.json)), the OCI layout with C(manifest.json) of Docker 25+, and the containerd store's
    OCI layout without C(repositories).
  - B(When an archive image is present.) A graph-driver engine has it when it has an image whose ID is
    its configuration digest. The containerd image store has it when it has an image whose ID is the
    archive's manifest digest; for an archive without C(index.json) the store makes up a manifest of its
    own while loading, so there the image is recognised by what its configuration and C(docker image
    inspect) both show, namely its creation time (to the nanosecond), OS and architecture, layer diff IDs, and the
    container configuration (command, entry point, environment, labels, user, working directory, ports,
    volumes, stop signal, C(ONBUILD)). After the upload the same check runs again; an image the engine
    reports as loaded under all of its tags is taken as loaded.
  - B(state=exported) writes the filesystem of O(container) as a tar (C(docker export)).
    A re-run is a no-op when the export stream is byte for byte the tar already at O(path) (same SHA-256
    of the uncompressed tar) and the compression matches. The export is deterministic for an unchanged
    container, so this holds exactly when no file in the container changed. This check streams the
    export once (without writing it when nothing changed); the digest of the existing archive comes from
    the gzip footer or the remembered attribute described above, or from one read of the file.
  - B(state=imported) makes the image O(repository):O(tag) from the filesystem tar at O(path)
    (C(docker import)). The image gets two labels, C(dockhand.registry.import.archive) (SHA-256 of the
    file at O(path)) and C(dockhand.registry.import.request) (SHA-256 of O(changes) and O(comment)).
    A re-run is a no-op when the image at O(repository):O(tag) carries both labels with the values of
    this run.
author:
  - dockhand.registry contributors (@dockhand)
extends_documentation_fragment:
  - dockhand.registry.engine_actiongroup
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - ansible.builtin.files
  - dockhand.registry.engine
attributes:
  check_mode:
    support: full
    details: Reports what would be saved, loaded, exported or imported, and why; changes nothing.
  diff_mode:
    support: full
    details: Shows the images in the archive (saved, loaded), the archive digest (exported) or the image ID
      (imported) before and after.
  idempotent:
    support: full
    description: Running the task twice in a row with unchanged images and containers changes nothing the second time.
    details: See the description for how each state decides that nothing needs to be done.
options:
  state:
    description:
      - V(saved) writes images to O(path) (C(docker save)).
      - V(loaded) loads the image archive at O(path) into the engine (C(docker load)).
      - V(exported) writes the filesystem of O(container) to O(path) (C(docker export)).
      - V(imported) creates O(repository):O(tag) from the filesystem tar at O(path) (C(docker import)).
    type: str
    required: true
    choices: [saved, loaded, exported, imported]
  path:
    description:
      - The archive file. Its directory must exist.
    type: path
    required: true
  names:
    description:
      - Images to save, as V(name:tag), V(registry/name:tag), V(name@sha256:...) or image IDs
        (V(sha256:<64 hex>) or a unique prefix of at least 12 hex digits).
      - A name without a tag means V(name:latest). Images saved by ID or digest have no tag in the archive.
      - Required with O(state=saved).
    type: list
    elements: str
  container:
    description:
      - Name or ID of the container to export. Required with O(state=exported).
    type: str
  compression:
    description:
      - Compression of the archive written with O(state=saved) or O(state=exported).
      - V(gzip) uses zlib at level 1, which favours speed.
      - Archives to load or import may be plain or gzip-compressed regardless of this option.
    type: str
    choices: [none, gzip]
    default: none
  repository:
    description:
      - Repository of the imported image, optionally with a registry host, without tag.
        Required with O(state=imported).
    type: str
  tag:
    description:
      - Tag of the imported image.
    type: str
    default: latest
  changes:
    description:
      - Dockerfile instructions applied to the imported image (C(docker import --change)), one per item.
      - Allowed are C(CMD), C(ENTRYPOINT), C(ENV), C(EXPOSE), C(LABEL), C(ONBUILD), C(USER), C(VOLUME),
        C(WORKDIR), C(STOPSIGNAL) and C(HEALTHCHECK).
      - Labels starting with V(dockhand.registry.import.) are reserved.
    type: list
    elements: str
    default: []
  comment:
    description:
      - Message recorded as the imported image's C(Comment) (C(docker import --message)).
      - Called C(comment) rather than C(message), which Ansible reserves for itself.
    type: str
    aliases: [commit_message]
  force:
    description:
      - Save, load, export or import even when the module would consider the task a no-op.
    type: bool
    default: false
notes:
  - O(mode), O(owner), O(group) and the other file attributes apply to the archive written with
    O(state=saved) or O(state=exported). A task whose archive is current but whose attributes differ
    only fixes the attributes.
seealso:
  - module: dockhand.registry.image_commit
  - name: docker save
    description: The Docker CLI command behind O(state=saved).
    link: https://docs.docker.com/reference/cli/docker/image/save/
  - name: docker import
    description: The Docker CLI command behind O(state=imported).
    link: https://docs.docker.com/reference/cli/docker/image/import/
"""

EXAMPLES = r"""
- name: Save two images into one gzip-compressed archive
  dockhand.registry.image_archive:
    state: saved
    names:
      - myapp:1.0
      - registry.example.com:5000/tools/helper:2
    path: /srv/archives/myapp-1.0.tar.gz
    compression: gzip
    mode: "0640"

- name: Load it on another host (no-op when the images are already there)
  dockhand.registry.image_archive:
    state: loaded
    path: /srv/archives/myapp-1.0.tar.gz

- name: Export a container's filesystem
  dockhand.registry.image_archive:
    state: exported
    container: builder
    path: /srv/archives/builder-rootfs.tar

- name: Import it as an image with a command
  dockhand.registry.image_archive:
    state: imported
    path: /srv/archives/builder-rootfs.tar
    repository: myimage
    tag: "0.0"
    comment: imported from builder
    changes:
      - CMD ["/bin/sh"]

- name: Connection options for all engine modules at once
  module_defaults:
    group/dockhand.registry.engine:
      docker_host: tcp://192.0.2.10:2376
      validate_certs: true
  block:
    - name: Save by image ID
      dockhand.registry.image_archive:
        state: saved
        names: [sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef]
        path: /tmp/by-id.tar
"""

RETURN = r"""
path:
  description: Absolute path of the archive.
  returned: always
  type: str
  sample: /srv/archives/myapp-1.0.tar.gz
size:
  description: Size of the archive file in bytes. Not returned in check mode when the file would be written.
  returned: when state is saved or exported
  type: int
  sample: 2157056
sha256:
  description:
    - SHA-256 of the archive file (as C(sha256sum) computes it).
    - With O(state=imported), of the file that was imported.
    - Not returned in check mode when the file would be written.
  returned: when state is saved, exported or imported
  type: str
  sample: 5b1f1f0b35d9a3b6ce9b9ee0c8e3c3d7d5c1d2f1e5a8e0a3b7c4b2e1f0d9c8b7
compression:
  description: Compression of the archive.
  returned: when state is saved, exported or loaded
  type: str
  sample: gzip
images:
  description:
    - With O(state=saved), the images in the archive; in check mode, the images it would hold.
    - With O(state=loaded), the images in the archive, present in the engine after the task.
  returned: when state is saved or loaded
  type: list
  elements: dict
  contains:
    id:
      description:
        - The engine's own ID of the image, as C(docker image inspect) shows it. With a graph driver it
          equals RV(images[].config_digest), with the containerd image store RV(images[].manifest_digest).
        - With O(state=loaded), V(null) for an image that is not loaded yet (check mode) when its ID
          cannot be known before (the containerd store loading an archive without C(index.json)).
      type: str
      sample: sha256:bf2e6d1ed39062d15c7ba50d4c6074e49469495ed53a4c99b66cb49df021652c
    config_digest:
      description:
        - Digest of the image configuration in the archive.
        - V(null) in check mode when the archive would be written.
      type: str
      sample: sha256:bf2e6d1ed39062d15c7ba50d4c6074e49469495ed53a4c99b66cb49df021652c
    manifest_digest:
      description:
        - Digest of the image's manifest or index in the archive's C(index.json); V(null) for an archive
          without C(index.json) (Docker before 25), and in check mode when the archive would be written.
      type: str
      sample: sha256:5fe2e6352cfe9d399b66391f6d612610614e3d73ed813af21acae934fcb1a018
    tags:
      description: Tags of the image in the archive, in the engine's short form (C(busybox:latest)).
      type: list
      elements: str
      sample: [myapp:1.0]
loaded:
  description:
    - The images that were loaded (or would be, in check mode), with the keys of RV(images); empty when
      nothing was needed.
  returned: when state is loaded
  type: list
  elements: dict
  sample:
    - id: sha256:bf2e6d1ed39062d15c7ba50d4c6074e49469495ed53a4c99b66cb49df021652c
      config_digest: sha256:bf2e6d1ed39062d15c7ba50d4c6074e49469495ed53a4c99b66cb49df021652c
      manifest_digest: null
      tags: [myapp:1.0]
container:
  description: Full ID of the exported container.
  returned: when state is exported
  type: str
  sample: 9f1c4b0c8e7a6d5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7
image:
  description: Inspect data of the imported image (not in check mode when an import would happen).
  returned: when state is imported
  type: dict
  sample: {"Id": "sha256:0f3...", "RepoTags": ["myimage:0.0"]}
removed_temp_files:
  description: Temporary files of earlier, killed runs for the same O(path) that this run removed.
  returned: when there were any
  type: list
  elements: str
  sample: [/srv/archives/.myapp-1.0.tar.gz.dockhand-tmp-k2j4h1x8.tmp]
reason:
  description: Why the task changed something (or would, in check mode); absent when nothing was needed.
  returned: when changed
  type: str
  sample: the archive holds other images or tags
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.registry.plugins.module_utils.archive_index import (
    ArchiveError,
    ArchiveSink,
    detect_compression,
    familiar_name,
    inspect_fingerprint,
    read_archive_index,
    read_content_digest,
    verify_tar_file,
)
from ansible_collections.dockhand.registry.plugins.module_utils.atomic_file import (
    AtomicFile,
    AtomicFileError,
    WriteInterrupted,
    apply_file_attributes,
    check_parent_directory,
    file_sha256,
    interrupted_write,
    remember_sha256,
    remove_stale_temp_files,
    validate_file_attributes,
)
from ansible_collections.dockhand.registry.plugins.module_utils.commit_changes import (
    ChangeError,
    parse_changes,
    sha256_of_json,
)
from ansible_collections.dockhand.registry.plugins.module_utils.engine_client import (
    EngineError,
    connect_engine,
    container_export_digest,
    engine_argument_spec,
    export_container,
    image_store,
    import_archive,
    inspect_container,
    inspect_image,
    list_images,
    load_archive,
    require_engine_libraries,
    save_images,
)
from ansible_collections.dockhand.registry.plugins.module_utils.errors import (
    DockhandError,
    one_line,
    run_or_fail,
)
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import (
    ImageReferenceError,
    is_image_id,
    normalize_image_name,
    validate_target_name,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import created_ns

IMPORT_LABEL_PREFIX = "dockhand.registry.import."
IMPORT_ARCHIVE_LABEL = IMPORT_LABEL_PREFIX + "archive"
IMPORT_REQUEST_LABEL = IMPORT_LABEL_PREFIX + "request"


class ArchiveTaskError(DockhandError):
    """Bad input found before anything was touched."""


# --------------------------------------------------------------------------- decide steps (pure)


def engine_id_of(image, engine_ids):
    """The ID among ``engine_ids`` that the engine gives archive image ``image``, or None.

    A graph-driver engine calls an image by its configuration digest, the
    containerd image store by the digest of its manifest or index.
    """
    for digest in (image.manifest_digest, image.config_digest):
        if digest and digest in engine_ids:
            return digest
    return None


def archive_view(images, engine_ids):
    """{ID: frozenset of tags} of an archive's images, each named by the ID it has in the engine.

    Images the engine does not know (by these IDs) keep their config digest,
    so they never equal a requested image.
    """
    merged = {}
    for image in images:
        key = engine_id_of(image, engine_ids) or "unknown:" + image.config_digest
        merged.setdefault(key, set()).update(image.tags)
    return {key: frozenset(tags) for key, tags in merged.items()}


def decide_save(desired, existing, existing_error, compression, force):
    """Why the archive must be (re)written, or None when it already holds ``desired``.

    ``desired`` maps each requested image's engine ID to its requested tags.
    """
    if force:
        return "force is set"
    if existing_error:
        return "the file at path is not a readable image archive (%s)" % existing_error
    if existing is None:
        return "the archive does not exist"
    if existing.compression != compression:
        return "the archive is compressed with %s, %s is requested" % (existing.compression, compression)
    if archive_view(existing.images, desired) != desired:
        return "the archive holds other images or tags"
    return None


def images_to_load(images, engine_ids, tag_targets, force=False):
    """The archive images the engine lacks: no image of theirs, or a tag pointing elsewhere.

    ``engine_ids[i]`` is the engine's ID of ``images[i]`` (None when it has no
    such image); ``tag_targets`` maps a tag to the ID it points at in the
    engine (absent or None when the tag does not exist).
    """
    missing = []
    for image, engine_id in zip(images, engine_ids):
        if force or engine_id is None or any(tag_targets.get(tag) != engine_id for tag in image.tags):
            missing.append(image)
    return missing


def describe_image(image, engine_id):
    """An archive image as the module returns it."""
    return dict(image.as_dict(), id=engine_id)


def decide_export(force, existing_digest, existing_compression, new_digest, compression):
    """Why the export must be written, or None when the file holds the same tar already."""
    if force:
        return "force is set"
    if existing_digest is None:
        return "the archive does not exist"
    if existing_compression != compression:
        return "the archive is compressed with %s, %s is requested" % (existing_compression, compression)
    if existing_digest != new_digest:
        return "the container's filesystem differs from the archive"
    return None


def import_labels(archive_sha256, changes, comment):
    """The labels that record what an imported image was made from."""
    return {
        IMPORT_ARCHIVE_LABEL: "sha256:" + archive_sha256,
        IMPORT_REQUEST_LABEL: sha256_of_json({"changes": [str(c) for c in changes], "message": comment or ""}),
    }


def decide_import(existing_image, wanted_labels, force):
    """Why an import is needed, or None when the image carries this run's labels."""
    if force:
        return "force is set"
    if existing_image is None:
        return "the image does not exist"
    labels = (existing_image.get("Config") or {}).get("Labels") or {}
    if labels.get(IMPORT_ARCHIVE_LABEL) != wanted_labels[IMPORT_ARCHIVE_LABEL]:
        return "the image was not imported from this archive"
    if labels.get(IMPORT_REQUEST_LABEL) != wanted_labels[IMPORT_REQUEST_LABEL]:
        return "the image was imported with other changes or comment"
    return None


def requested_images(resolved):
    """{engine ID: frozenset of tags} of (tag or None, engine ID) pairs, as docker save groups them."""
    by_id = {}
    for tag, image_id in resolved:
        tags = by_id.setdefault(image_id, set())
        if tag:
            tags.add(tag)
    return {image_id: frozenset(tags) for image_id, tags in by_id.items()}


def requested_list(desired):
    """The requested images as the module returns them before the archive exists."""
    return [{"id": image_id, "config_digest": None, "manifest_digest": None, "tags": sorted(tags)}
            for image_id, tags in sorted(desired.items())]


def loaded_message_names(messages):
    """(tags, image IDs) that the engine's load messages report as loaded (``Loaded image: ...``)."""
    tags, ids = [], []
    for message in messages:
        text = message.get("stream") if isinstance(message, dict) else None
        for line in (text or "").splitlines():
            if line.startswith("Loaded image ID: "):
                ids.append(line[len("Loaded image ID: "):].strip())
            elif line.startswith("Loaded image: "):
                tags.append(line[len("Loaded image: "):].strip())
    return tags, ids


def parse_names(names):
    """[(engine name, tag in archive or None)]; raises ArchiveTaskError for a bad reference."""
    parsed = []
    for name in names:
        try:
            engine_name = normalize_image_name(name)
        except ImageReferenceError as exc:
            raise ArchiveTaskError("invalid image reference %r: %s" % (name, exc))
        if is_image_id(name) or "@" in engine_name:
            parsed.append((engine_name, None))
        else:
            parsed.append((engine_name, familiar_name(engine_name)))
    return parsed


class ImageArchiveManager:
    """Decides what a task needs, then does it (outside check mode)."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.path = os.path.abspath(self.params["path"])
        self.check_mode = module.check_mode
        self.diff = {"before": {}, "after": {}}
        self.result = {"changed": False, "path": self.path}
        self._image_store = None
        self._image_list = None

    def run(self):
        state = self.params["state"]
        getattr(self, "_" + state)()
        if self.module._diff:
            self.result["diff"] = self.diff
        return self.result

    # ---- helpers

    def _stream_to_file(self, what, response_chunks, compression, scan=True, keep=lambda sink: True):
        """Write an engine tar stream atomically; returns (sink, index, committed)."""
        with AtomicFile(self.path) as out:
            sink = ArchiveSink(out, compression=compression, scan=scan)
            for chunk in response_chunks:
                sink.write(chunk)
            try:
                index = sink.close()
            except ArchiveError as exc:
                raise EngineError("%s: the engine's stream is incomplete (%s)" % (what, exc))
            if not keep(sink):
                return sink, index, False
            out.commit()
        remember_sha256(self.path, sink.sha256)
        return sink, index, True

    def _file_sha256(self):
        sha256 = file_sha256(self.path)
        if not self.check_mode:
            remember_sha256(self.path, sha256)  # next run gets it without reading the file
        return sha256

    def _finish_file(self, changed, reason):
        """Apply file attributes and fill the common file results."""
        if os.path.exists(self.path):
            changed = apply_file_attributes(self.module, self.path, changed,
                                            diff=self.diff if self.module._diff else None)
            if not (self.check_mode and reason):
                self.result["size"] = os.path.getsize(self.path)
        self.result["changed"] = changed
        if reason and changed:
            self.result["reason"] = reason

    # ---- saved

    def _remove_stale_temp_files(self):
        """Remove what runs killed while writing this archive left; a live run's file stays."""
        if self.check_mode:
            return
        removed = remove_stale_temp_files(self.path)
        if removed:
            self.result["removed_temp_files"] = removed
            self.module.warn("removed %d temporary file(s) left by an interrupted run: %s"
                             % (len(removed), ", ".join(removed)))

    def _saved(self):
        compression = self.params["compression"]
        check_parent_directory(self.path)
        self._remove_stale_temp_files()
        names = parse_names(self.params["names"])
        resolved = []
        for engine_name, tag in names:
            image = inspect_image(self.client, engine_name)
            if image is None:
                raise ArchiveTaskError("image %s not found in the engine" % engine_name)
            resolved.append((tag, image["Id"]))
        desired = requested_images(resolved)

        existing = existing_error = None
        if os.path.exists(self.path):
            try:
                existing = read_archive_index(self.path)
            except ArchiveError as exc:
                existing_error = str(exc)
        reason = decide_save(desired, existing, existing_error, compression, self.params["force"])
        before = [describe_image(i, engine_id_of(i, desired)) for i in existing.images] if existing else []
        self.diff["before"] = {"path": self.path, "images": before}
        self.diff["after"] = {"path": self.path, "images": requested_list(desired)}
        self.result["compression"] = compression

        if reason is None:
            self.result["images"] = before
            self.diff["after"]["images"] = before
            self._finish_file(False, None)
            self.result["sha256"] = self._file_sha256()
            return
        self.result["images"] = requested_list(desired)
        if self.check_mode:
            self._finish_file(True, reason)
            return
        engine_names = [image_id for image_id, tags in desired.items() if not tags]
        engine_names += [tag for tags in desired.values() for tag in sorted(tags)]
        sink, index, _committed = self._stream_to_file(
            "save images", save_images(self.client, engine_names), compression)
        if index is None:
            raise EngineError("save images: the engine's archive has no manifest.json or index.json")
        self.result["images"] = [describe_image(i, engine_id_of(i, desired)) for i in index.images]
        self.diff["after"]["images"] = self.result["images"]
        self.result["sha256"] = sink.sha256
        self._finish_file(True, reason)

    # ---- loaded

    def _store(self):
        if self._image_store is None:
            self._image_store = image_store(self.client)
        return self._image_store

    def _listed_ids_created_at(self, seconds):
        if self._image_list is None:
            self._image_list = list_images(self.client)
        return [summary["Id"] for summary in self._image_list
                if isinstance(summary, dict) and summary.get("Created") == seconds]

    def _id_by_digest(self, image):
        for digest in (image.manifest_digest, image.config_digest):
            if digest:
                found = inspect_image(self.client, digest)
                if found is not None and found["Id"] == digest:
                    return digest
        return None

    def _id_by_fingerprint(self, image, candidates, extra_ids):
        """The containerd store's ID of an archive image it gave a manifest of its own."""
        for found in candidates:
            if found is not None and inspect_fingerprint(found) == image.fingerprint:
                return found["Id"]
        created = created_ns(image.created)
        image_ids = list(extra_ids)
        if created is not None:
            image_ids += self._listed_ids_created_at(created // 10 ** 9)
        for image_id in dict.fromkeys(image_ids):
            found = inspect_image(self.client, image_id)
            if found is not None and inspect_fingerprint(found) == image.fingerprint:
                return found["Id"]
        return None

    def _find_in_engine(self, images, loaded_ids=()):
        """(engine ID or None for each image, {tag: engine ID or None}); see the DOCUMENTATION."""
        tag_images = {}
        for image in images:
            for tag in image.tags:
                if tag not in tag_images:
                    tag_images[tag] = inspect_image(self.client, tag)
        tag_targets = {tag: found["Id"] if found else None for tag, found in tag_images.items()}
        engine_ids = []
        for image in images:
            engine_id = engine_id_of(image, set(tag_targets.values())) or self._id_by_digest(image)
            if engine_id is None and image.fingerprint and self._store() == "containerd":
                engine_id = self._id_by_fingerprint(
                    image, [tag_images[tag] for tag in image.tags], loaded_ids)
            engine_ids.append(engine_id)
        return engine_ids, tag_targets

    def _predicted_id(self, image):
        """The ID a load would give the image, when it can be known before."""
        return image.manifest_digest if self._store() == "containerd" else image.config_digest

    def _loaded(self):
        if not os.path.isfile(self.path):
            raise ArchiveTaskError("archive %s does not exist" % self.path)
        index = read_archive_index(self.path)
        engine_ids, tag_targets = self._find_in_engine(index.images)
        if (None in engine_ids and index.source == "gzip-footer" and self._store() == "containerd"
                and any(image.fingerprint is None for image in index.images)):
            # written before the footer recorded fingerprints: read the index itself once
            index = read_archive_index(self.path, use_footer=False)
            engine_ids, tag_targets = self._find_in_engine(index.images)
        missing = images_to_load(index.images, engine_ids, tag_targets, self.params["force"])
        described = [describe_image(image, engine_id or self._predicted_id(image))
                     for image, engine_id in zip(index.images, engine_ids)]
        self.result.update(images=described, compression=index.compression,
                           loaded=[entry for entry, image in zip(described, index.images) if any(image is m for m in missing)])
        self.diff["before"] = {"images": [
            entry for entry, engine_id in zip(described, engine_ids) if engine_id is not None]}
        self.diff["after"] = {"images": described}
        if not missing:
            return
        self.result["changed"] = True
        self.result["reason"] = "force is set" if self.params["force"] else (
            "the engine lacks %d of the archive's images or tags" % len(missing))
        if self.check_mode:
            return
        loaded_tags, loaded_ids = loaded_message_names(load_archive(self.client, self.path))
        self._image_list = None
        engine_ids, tag_targets = self._find_in_engine(index.images, loaded_ids)
        for position, image in enumerate(index.images):
            reported = {tag_targets.get(tag) for tag in image.tags}
            if engine_ids[position] is None and image.tags and set(image.tags) <= set(loaded_tags) \
                    and len(reported) == 1 and None not in reported:
                # the engine says it loaded every tag of the image, and they agree
                engine_ids[position] = reported.pop()
        still_missing = images_to_load(index.images, engine_ids, tag_targets)
        if still_missing:
            raise EngineError("load archive: the engine did not load %s" % ", ".join(
                "%s (%s)" % (" ".join(sorted(image.tags)) or "untagged", image.config_digest)
                for image in still_missing))
        described = [describe_image(image, engine_id) for image, engine_id in zip(index.images, engine_ids)]
        self.result["images"] = described
        self.result["loaded"] = [entry for entry, image in zip(described, index.images) if any(image is m for m in missing)]
        self.diff["after"] = {"images": described}

    # ---- exported

    def _exported(self):
        compression = self.params["compression"]
        check_parent_directory(self.path)
        self._remove_stale_temp_files()
        container = inspect_container(self.client, self.params["container"])
        self.result.update(container=container["Id"], compression=compression)

        existing_digest = existing_compression = None
        if os.path.exists(self.path) and not self.params["force"]:
            try:
                existing_digest, existing_compression = self._content_digest()
            except (ArchiveError, AtomicFileError):
                existing_digest = "unreadable"
        self.diff["before"] = {"path": self.path, "sha256": existing_digest}

        if self.check_mode:
            new_digest = None
            if existing_digest is not None and existing_compression == compression:
                new_digest = container_export_digest(
                    self.client, container["Id"], "export container")[len("sha256:"):]
            reason = decide_export(self.params["force"], existing_digest, existing_compression,
                                   new_digest, compression)
            self.diff["after"] = {"path": self.path, "sha256": new_digest}
            self._finish_file(bool(reason), reason)
            if not reason:
                self.result["sha256"] = file_sha256(self.path)
            return

        def keep(sink):
            return decide_export(self.params["force"], existing_digest, existing_compression,
                                 sink.content_digest.hexdigest(), compression) is not None

        sink, _index, committed = self._stream_to_file(
            "export container", export_container(self.client, container["Id"]), compression,
            scan=False, keep=keep)
        self.diff["after"] = {"path": self.path, "sha256": sink.content_digest.hexdigest()}
        reason = decide_export(self.params["force"], existing_digest, existing_compression,
                               sink.content_digest.hexdigest(), compression)
        self._finish_file(committed, reason)
        self.result["sha256"] = sink.sha256 if committed else self._file_sha256()

    def _content_digest(self):
        """(sha256 of the uncompressed tar at path, compression), as cheaply as possible."""
        with open(self.path, "rb") as fileobj:
            compression = detect_compression(fileobj)
        if compression == "none":
            return self._file_sha256(), compression  # remembered digest when still valid
        digest, _size, compression = read_content_digest(self.path)
        return digest, compression

    # ---- imported

    def _imported(self):
        repository, tag = self._import_target()
        try:
            changes = parse_changes(self.params["changes"], reserved_label_prefix=IMPORT_LABEL_PREFIX)
        except ChangeError as exc:
            raise ArchiveTaskError(str(exc))
        if not os.path.isfile(self.path):
            raise ArchiveTaskError("archive %s does not exist" % self.path)
        verify_tar_file(self.path)
        archive_sha256 = self._file_sha256()
        self.result["sha256"] = archive_sha256
        labels = import_labels(archive_sha256, changes, self.params["comment"])
        name = "%s:%s" % (repository, tag)
        existing = inspect_image(self.client, name)
        reason = decide_import(existing, labels, self.params["force"])
        self.diff["before"] = {"image": name, "id": existing["Id"] if existing else None}
        if reason is None:
            self.result["image"] = existing
            self.diff["after"] = dict(self.diff["before"])
            return
        self.result.update(changed=True, reason=reason)
        if self.check_mode:
            self.diff["after"] = {"image": name, "id": "(new image)"}
            return
        all_changes = [str(c) for c in changes] + ["LABEL %s=%s" % item for item in sorted(labels.items())]
        import_archive(self.client, self.path, repository, tag, all_changes, self.params["comment"])
        image = inspect_image(self.client, name)
        if image is None:
            raise EngineError("import archive: the engine did not create %s" % name)
        self.result["image"] = image
        self.diff["after"] = {"image": name, "id": image["Id"]}

    def _import_target(self):
        try:
            validate_target_name(self.params["repository"], self.params["tag"])
        except ImageReferenceError as exc:
            raise ArchiveTaskError(str(exc))
        return self.params["repository"], self.params["tag"]


def main():
    argument_spec = engine_argument_spec()
    argument_spec.update(
        state=dict(type="str", required=True, choices=["saved", "loaded", "exported", "imported"]),
        path=dict(type="path", required=True),
        names=dict(type="list", elements="str"),
        container=dict(type="str"),
        compression=dict(type="str", default="none", choices=["none", "gzip"]),
        repository=dict(type="str"),
        tag=dict(type="str", default="latest"),
        changes=dict(type="list", elements="str", default=[]),
        comment=dict(type="str", aliases=["commit_message"]),
        force=dict(type="bool", default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        add_file_common_args=True,
        required_if=[
            ("state", "saved", ["names"]),
            ("state", "exported", ["container"]),
            ("state", "imported", ["repository"]),
        ],
    )
    require_engine_libraries(module)
    if module.params["state"] == "saved" and not module.params["names"]:
        module.fail_json(msg="names must list at least one image")
    path = module.params["path"]

    def manage():
        try:
            # bad input fails before the engine is contacted or any file is touched
            if module.params["state"] == "saved":
                parse_names(module.params["names"])
            if module.params["state"] in ("saved", "exported"):
                validate_file_attributes(module.params)
            return ImageArchiveManager(module, connect_engine(module.params)).run()
        except ArchiveError as exc:
            text = one_line(exc)
            raise ArchiveTaskError(text if path in text else "%s: %s" % (path, text))
        except WriteInterrupted as exc:
            # A BaseException until here, so that no handler on the way swallowed it.
            raise interrupted_write(exc, path)

    module.exit_json(**run_or_fail(module, manage))


if __name__ == "__main__":
    main()
