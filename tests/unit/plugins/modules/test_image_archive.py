# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.archive_index import (
    ArchiveImage,
    ArchiveIndex,
)
from ansible_collections.dockhand.registry.plugins.modules.image_archive import (
    IMPORT_ARCHIVE_LABEL,
    IMPORT_REQUEST_LABEL,
    ArchiveTaskError,
    archive_view,
    decide_export,
    decide_import,
    decide_save,
    describe_image,
    engine_id_of,
    images_to_load,
    import_labels,
    loaded_message_names,
    parse_names,
    requested_images,
)

ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64
MANIFEST_A = "sha256:" + "c" * 64
MANIFEST_B = "sha256:" + "d" * 64


def index(*images, compression="none"):
    return ArchiveIndex(images=list(images), layout="docker-archive", compression=compression,
                        source="tar-headers")


def test_parse_names():
    assert parse_names(["busybox", "127.0.0.1:5000/app:1", "docker.io/library/alpine:3"]) == [
        ("busybox:latest", "busybox:latest"),
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000/app:1"),
        ("alpine:3", "alpine:3"),
    ]
    assert parse_names(["a" * 64]) == [("sha256:" + "a" * 64, None)]
    assert parse_names(["abcdef012345"]) == [("abcdef012345", None)]
    assert parse_names(["app@sha256:" + "c" * 64])[0][1] is None


@pytest.mark.parametrize("bad", ["Bad/Name", "app:", "app::1", "", "app:-x"])
def test_parse_names_rejects_bad_references(bad):
    with pytest.raises(ArchiveTaskError, match="invalid image reference"):
        parse_names([bad])


def test_requested_images_merge_by_id():
    desired = requested_images([("app:1", ID_A), (None, ID_A), ("app:latest", ID_A), (None, ID_B)])
    assert desired == {ID_A: frozenset({"app:1", "app:latest"}), ID_B: frozenset()}


def test_engine_id_of_each_store():
    image = ArchiveImage(ID_A, ["app:1"], manifest_digest=MANIFEST_A)
    assert engine_id_of(image, {ID_A}) == ID_A, "graph driver: the config digest"
    assert engine_id_of(image, {MANIFEST_A}) == MANIFEST_A, "containerd store: the manifest digest"
    assert engine_id_of(image, {ID_B}) is None
    assert engine_id_of(ArchiveImage(ID_A, []), {MANIFEST_A}) is None
    assert describe_image(image, MANIFEST_A) == {
        "id": MANIFEST_A, "config_digest": ID_A, "manifest_digest": MANIFEST_A, "tags": ["app:1"]}


def test_archive_view_names_images_by_their_engine_id():
    images = [ArchiveImage(ID_A, ["app:1"], manifest_digest=MANIFEST_A),
              ArchiveImage(ID_A, ["app:2"], manifest_digest=MANIFEST_A),
              ArchiveImage(ID_B, [])]
    assert archive_view(images, {MANIFEST_A: None}) == {
        MANIFEST_A: frozenset({"app:1", "app:2"}), "unknown:" + ID_B: frozenset()}


def test_decide_save_noop_when_archive_matches():
    desired = {ID_A: frozenset({"app:1"}), ID_B: frozenset()}
    existing = index(ArchiveImage(ID_B, []), ArchiveImage(ID_A, ["app:1"]))
    assert decide_save(desired, existing, None, "none", False) is None


def test_decide_save_noop_by_image_id():
    assert decide_save({ID_A: frozenset()}, index(ArchiveImage(ID_A, [])), None, "none", False) is None


def test_decide_save_noop_on_the_containerd_store():
    # the engine's IDs are manifest digests there; the archive knows both digests
    desired = {MANIFEST_A: frozenset({"app:1", "app:2"}), MANIFEST_B: frozenset()}
    existing = index(ArchiveImage(ID_A, ["app:1"], manifest_digest=MANIFEST_A),
                     ArchiveImage(ID_A, ["app:2"], manifest_digest=MANIFEST_A),
                     ArchiveImage(ID_B, [], manifest_digest=MANIFEST_B), compression="gzip")
    assert decide_save(desired, existing, None, "gzip", False) is None
    # another manifest of the same configuration is another image on that store
    other_manifest = "sha256:" + "e" * 64
    assert "other images" in decide_save({other_manifest: frozenset({"app:1", "app:2"}), MANIFEST_B: frozenset()},
                                         existing, None, "gzip", False)


@pytest.mark.parametrize("existing, error, compression, force, expected", [
    (None, None, "none", False, "does not exist"),
    (None, "not a tar archive", "none", False, "not a readable image archive"),
    (index(ArchiveImage(ID_A, ["app:1"])), None, "none", True, "force"),
    (index(ArchiveImage(ID_A, ["app:1"])), None, "gzip", False, "compressed with none"),
    (index(ArchiveImage(ID_B, ["app:1"])), None, "none", False, "other images or tags"),
    (index(ArchiveImage(ID_A, ["app:1", "app:2"])), None, "none", False, "other images or tags"),
    (index(ArchiveImage(ID_A, [])), None, "none", False, "other images or tags"),
    (index(ArchiveImage(ID_A, ["app:1"]), ArchiveImage(ID_B, [])), None, "none", False, "other images"),
])
def test_decide_save_reasons(existing, error, compression, force, expected):
    reason = decide_save({ID_A: frozenset({"app:1"})}, existing, error, compression, force)
    assert expected in reason


def test_images_to_load():
    images = [ArchiveImage(ID_A, ["app:1"]), ArchiveImage(ID_B, [])]
    assert images_to_load(images, [ID_A, ID_B], {"app:1": ID_A}) == []
    assert images_to_load(images, [ID_A, None], {"app:1": ID_A}) == [images[1]]
    assert images_to_load(images, [ID_A, ID_B], {"app:1": ID_B}) == [images[0]], "tag moved"
    assert images_to_load(images, [ID_A, ID_B], {"app:1": None}) == [images[0]], "tag missing"
    assert images_to_load(images, [ID_A, ID_B], {"app:1": ID_A}, force=True) == images


def test_images_to_load_on_the_containerd_store():
    # there the engine's ID of the image (a manifest digest) is what its tags point at
    image = ArchiveImage(ID_A, ["app:1"], manifest_digest=ID_B)
    assert images_to_load([image], [ID_B], {"app:1": ID_B}) == []
    assert images_to_load([image], [ID_B], {"app:1": ID_A}) == [image]


def test_loaded_message_names():
    messages = [{"stream": "Loaded image: app:1\n"}, {"stream": "Loaded image ID: %s\n" % ID_A},
                {"stream": "Loaded image: 127.0.0.1:5000/x/y:2\nLoaded image ID: %s\n" % ID_B},
                {"status": "Loading layer"}, "not a dict"]
    assert loaded_message_names(messages) == (["app:1", "127.0.0.1:5000/x/y:2"], [ID_A, ID_B])


@pytest.mark.parametrize("args, expected", [
    ((True, "d1", "none", "d1", "none"), "force"),
    ((False, None, None, "d1", "none"), "does not exist"),
    ((False, "d1", "gzip", "d1", "none"), "compressed with gzip"),
    ((False, "d1", "none", "d2", "none"), "differs"),
    ((False, "d1", "none", "d1", "none"), None),
])
def test_decide_export(args, expected):
    reason = decide_export(*args)
    assert reason == expected if expected is None else expected in reason


def test_import_labels_depend_on_archive_changes_and_message():
    base = import_labels("1" * 64, ["CMD sh"], "msg")
    assert base[IMPORT_ARCHIVE_LABEL] == "sha256:" + "1" * 64
    assert import_labels("1" * 64, ["CMD sh"], "msg") == base
    assert import_labels("2" * 64, ["CMD sh"], "msg")[IMPORT_REQUEST_LABEL] == base[IMPORT_REQUEST_LABEL]
    assert import_labels("1" * 64, ["CMD bash"], "msg")[IMPORT_REQUEST_LABEL] != base[IMPORT_REQUEST_LABEL]
    assert import_labels("1" * 64, ["CMD sh"], None)[IMPORT_REQUEST_LABEL] != base[IMPORT_REQUEST_LABEL]


def test_decide_import():
    wanted = import_labels("1" * 64, [], None)
    image = {"Id": ID_A, "Config": {"Labels": dict(wanted, other="x")}}
    assert decide_import(image, wanted, False) is None
    assert "force" in decide_import(image, wanted, True)
    assert "does not exist" in decide_import(None, wanted, False)
    assert "not imported from this archive" in decide_import(
        image, import_labels("2" * 64, [], None), False)
    assert "other changes" in decide_import(image, import_labels("1" * 64, ["CMD sh"], None), False)
    assert decide_import({"Id": ID_A, "Config": {"Labels": None}}, wanted, False) is not None


def test_import_labels_keep_their_values_across_the_shared_helper():
    # images imported before the helper was shared must still be recognized
    request = json.dumps({"changes": ["CMD [\"/bin/sh\"]"], "message": "m"}, sort_keys=True, separators=(",", ":"))
    labels = import_labels("f" * 64, ["CMD [\"/bin/sh\"]"], "m")
    assert labels[IMPORT_REQUEST_LABEL] == "sha256:" + hashlib.sha256(request.encode("utf-8")).hexdigest()
    assert labels[IMPORT_ARCHIVE_LABEL] == "sha256:" + "f" * 64
