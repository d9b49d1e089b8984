# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.registry_copy import (
    COPY,
    MOUNT,
    SAME_REPOSITORY,
    CopyError,
    ImageCopier,
    copy_method,
    is_foreign_layer,
    unique_blobs,
)
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake import FakeRegistry, sha256


def calls_named(registry, name):
    return [call for call in registry.calls if call[0] == name]


def test_copy_method():
    assert copy_method(True, "a", "a") == SAME_REPOSITORY
    assert copy_method(True, "a", "b") == MOUNT
    assert copy_method(False, "a", "a") == COPY


def test_is_foreign_layer():
    assert is_foreign_layer({"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                             "urls": ["https://example.com/x"]})
    assert not is_foreign_layer({"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"})
    assert not is_foreign_layer({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"})


def test_same_repository_is_a_byte_exact_put():
    registry = FakeRegistry()
    digest = registry.add_image("app", ["v1"])
    manifest = registry.get_manifest("app", "v1")
    result = ImageCopier(registry, "app", registry, "app", True).copy(manifest, "stable")
    assert registry.tag_digest("app", "stable") == digest
    assert result.manifests_put == [digest]
    assert calls_named(registry, "blob_exists") == []


def test_cross_repository_mounts_blobs():
    registry = FakeRegistry()
    digest = registry.add_image("app", ["v1"], layers=(b"one", b"two"))
    manifest = registry.get_manifest("app", "v1")
    result = ImageCopier(registry, "app", registry, "mirror/app", True).copy(manifest, "v1")
    assert registry.tag_digest("mirror/app", "v1") == digest
    assert len(result.blobs_mounted) == 3 and result.blobs_copied == []
    assert calls_named(registry, "open_blob") == []


def test_cross_registry_streams_blobs_then_skips_them():
    source = FakeRegistry("127.0.0.1:5001")
    target = FakeRegistry("127.0.0.1:5002")
    digest = source.add_image("app", ["v1"], layers=(b"one", b"two", b"one"))
    manifest = source.get_manifest("app", "v1")
    result = ImageCopier(source, "app", target, "app", False).copy(manifest, "v1")
    # the repeated layer is copied once
    assert len(result.blobs_copied) == 3
    assert result.bytes_copied == sum(len(source.blobs[d]) for d in result.blobs_copied)
    assert target.tag_digest("app", "v1") == digest
    assert target.repos["app"]["manifests"][digest][0] == source.repos["app"]["manifests"][digest][0]
    assert calls_named(target, "mount_blob") == []

    again = ImageCopier(source, "app", target, "app", False).copy(manifest, "v2")
    assert again.blobs_copied == [] and len(again.blobs_present) == 3


def test_index_copies_children_first():
    source = FakeRegistry("127.0.0.1:5001")
    target = FakeRegistry("127.0.0.1:5002")
    amd = source.add_image("multi", [], marker="amd64", layers=(b"amd",))
    arm = source.add_image("multi", [], marker="arm64", layers=(b"arm",))
    index = source.add_index("multi", ["v1"], [amd, arm])
    manifest = source.get_manifest("multi", "v1")
    result = ImageCopier(source, "multi", target, "multi", False).copy(manifest, "v1")
    assert result.manifests_put == [amd, arm, index]
    puts = [call[2] for call in calls_named(target, "put_manifest")]
    assert puts == [amd, arm, "v1"]
    assert target.tag_digest("multi", "v1") == index

    # a second copy finds both children present and only re-puts the index
    target.calls.clear()
    again = ImageCopier(source, "multi", target, "multi", False).copy(manifest, "v1")
    assert again.manifests_put == [index]
    assert calls_named(target, "upload_blob") == []


def test_index_missing_child_in_source_is_an_error():
    source = FakeRegistry("127.0.0.1:5001")
    target = FakeRegistry("127.0.0.1:5002")
    amd = source.add_image("multi", [], marker="amd64")
    source.add_index("multi", ["v1"], [amd])
    manifest = source.get_manifest("multi", "v1")
    del source.repos["multi"]["manifests"][amd]
    with pytest.raises(CopyError, match="does not have"):
        ImageCopier(source, "multi", target, "multi", False).copy(manifest, "v1")
    assert target.tag_digest("multi", "v1") is None


def test_registry_errors_become_one_line_copy_errors():
    source = FakeRegistry("127.0.0.1:5001")
    target = FakeRegistry("127.0.0.1:5002")
    source.add_image("app", ["v1"])
    manifest = source.get_manifest("app", "v1")
    target.fail["upload_blob"] = lambda repo, digest: True
    with pytest.raises(CopyError, match="injected failure") as info:
        ImageCopier(source, "app", target, "app", False).copy(manifest, "v1")
    assert "\n" not in str(info.value)
    assert target.tag_digest("app", "v1") is None


def test_unique_blobs_skips_indexes_and_foreign_layers():
    registry = FakeRegistry()
    registry.add_image("app", ["v1"], layers=(b"x",))
    manifest = registry.get_manifest("app", "v1")
    foreign = dict(manifest.data)
    foreign["layers"] = manifest.data["layers"] + [{
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": sha256(b"win"), "size": 3, "urls": ["https://example.com/win"]}]
    body = json.dumps(foreign).encode()
    with_foreign = type(manifest)(sha256(body), manifest.media_type, body)
    assert [d["digest"] for d in unique_blobs([with_foreign])] == [d["digest"] for d in manifest.blob_descriptors]


def test_blob_without_content_length_uses_the_descriptor_size():
    source = FakeRegistry("127.0.0.1:5001")
    target = FakeRegistry("127.0.0.1:5002")
    source.chunked_blobs = True
    digest = source.add_image("app", ["v1"], layers=(b"streamed layer",))
    result = ImageCopier(source, "app", target, "app", False).copy(source.get_manifest("app", "v1"), "v1")
    assert target.tag_digest("app", "v1") == digest
    assert result.bytes_copied == sum(len(source.blobs[d]) for d in result.blobs_copied)
