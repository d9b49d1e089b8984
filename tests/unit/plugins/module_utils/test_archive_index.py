# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import tarfile

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.archive_index import (
    ArchiveError,
    ArchiveSink,
    ArchiveTruncated,
    TarStreamScanner,
    build_gzip_footer,
    configuration_fingerprint,
    familiar_name,
    inspect_fingerprint,
    iter_decompressed,
    read_archive_index,
    read_content_digest,
    read_gzip_footer,
    scan_seekable_tar,
    verify_tar_file,
)

LAYER_SIZE = 3 * 1024 * 1024
CREATED = "2026-12-04T18:39:45.305537835Z"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in members:
            add(tar, name, data)
    return buffer.getvalue()


def layer_data():
    return random.Random(7).randbytes(LAYER_SIZE)


def image_config(created=CREATED, cmd=("sh",), labels=None, diff_ids=None):
    """An image configuration as engines write it (keys as Docker 20.10 writes them)."""
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": created, "docker_version": "20.10.24",
        "config": {"Hostname": "", "Env": None, "Cmd": list(cmd), "Image": "", "Volumes": None,
                   "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": labels},
        "history": [{"created": created, "comment": "Imported from -"}],
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids or ["sha256:" + sha(layer_data())])},
    }).encode()


def matching_inspect(config):
    """What docker image inspect shows for an image with this configuration (any store)."""
    document = json.loads(config)
    return {
        "Id": "sha256:" + "0" * 64, "Created": document["created"], "Os": "linux", "Architecture": "amd64",
        "RootFS": {"Type": "layers", "Layers": document["rootfs"]["diff_ids"]},
        # the containerd store shows empty values where the configuration has null, and vice versa
        "Config": {"Cmd": document["config"]["Cmd"], "Env": [], "Labels": {}, "Volumes": None,
                   "ExposedPorts": {}, "WorkingDir": "", "Entrypoint": None, "OnBuild": []},
    }


def docker_archive(tags=("myapp:1.0",), repositories_only=False, config=None):
    """What Docker before 25 writes: <v1 id>/layer.tar, <config>.json, manifest.json, repositories."""
    config = config or image_config()
    config_hex = sha(config)
    layer_id = "ab" * 32
    manifest = [{
        "Config": config_hex + ".json",
        "RepoTags": None if repositories_only or not tags else list(tags),
        "Layers": [layer_id + "/layer.tar"],
    }]
    repositories = {}
    for tag in tags:
        repo, _sep, name = tag.rpartition(":")
        repositories.setdefault(repo, {})[name] = layer_id
    members = [
        (layer_id + "/VERSION", b"1.0"),
        (layer_id + "/json", b"{}"),
        (layer_id + "/layer.tar", layer_data()),
        (config_hex + ".json", config),
        ("manifest.json", json.dumps(manifest).encode()),
    ]
    if tags:
        members.append(("repositories", json.dumps(repositories).encode()))
    return tar_bytes(members), "sha256:" + config_hex


def oci_manifest(config, layer, layer_media_type="application/vnd.oci.image.layer.v1.tar"):
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + sha(config), "size": len(config)},
        "layers": [{"mediaType": layer_media_type, "digest": "sha256:" + sha(layer), "size": len(layer)}],
    }).encode()


def oci_archive(with_manifest_json=True, name="docker.io/library/myapp:1.0", nested=False,
                repositories=False, compressed_layer=False):
    """What Docker 25+ writes: OCI layout plus manifest.json; ``repositories`` only on overlay2.

    The containerd image store keeps layers compressed and writes no ``repositories``;
    ``name=None`` is a save by image ID (no annotations, RepoTags null).
    """
    layer = gzip.compress(layer_data(), 1, mtime=0) if compressed_layer else layer_data()
    config = image_config()
    manifest = oci_manifest(config, layer, "application/vnd.oci.image.layer.v1.tar"
                            + ("+gzip" if compressed_layer else ""))
    blobs = [(sha(layer), layer), (sha(config), config), (sha(manifest), manifest)]
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": "sha256:" + sha(manifest), "size": len(manifest)}
    if nested:
        index_blob = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                # another platform whose blobs are not in the archive
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": "sha256:" + "cd" * 32, "size": 10,
                 "platform": {"architecture": "arm64", "os": "linux"}},
                dict(top, platform={"architecture": "amd64", "os": "linux"}),
            ],
        }).encode()
        blobs.append((sha(index_blob), index_blob))
        top = {"mediaType": "application/vnd.oci.image.index.v1+json",
               "digest": "sha256:" + sha(index_blob), "size": len(index_blob)}
    if name:
        top["annotations"] = {"io.containerd.image.name": name,
                              "org.opencontainers.image.ref.name": name.rpartition(":")[2]}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [top]}
    members = [("blobs/sha256/" + hex_, data) for hex_, data in blobs]
    members.append(("index.json", json.dumps(index).encode()))
    members.append(("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'))
    if with_manifest_json:
        members.append(("manifest.json", json.dumps([{
            "Config": "blobs/sha256/" + sha(config),
            "RepoTags": [familiar_name(name)] if name else None,
            "Layers": ["blobs/sha256/" + sha(layer)],
        }]).encode()))
    if repositories and name:
        repo, _sep, tag = familiar_name(name).rpartition(":")
        members.append(("repositories", json.dumps({repo: {tag: sha(layer)}}).encode()))
    return tar_bytes(members), "sha256:" + sha(config), "sha256:" + top["digest"].split(":")[1]


def entry(config_digest, tags, manifest_digest=None):
    return {"config_digest": config_digest, "manifest_digest": manifest_digest, "tags": tags}


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def sink_gzip(data, chunk=65536):
    out = io.BytesIO()
    sink = ArchiveSink(out, compression="gzip")
    for pos in range(0, len(data), chunk):
        sink.write(data[pos:pos + chunk])
    sink.close()
    return out.getvalue(), sink


class CountingReader(io.FileIO):
    """A file that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size=-1):
        data = super().read(size)
        CountingReader.bytes_read += len(data)
        return data


@pytest.mark.parametrize("text, expected", [
    ("docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox", "busybox:latest"),
    ("index.docker.io/team/app:2", "team/app:2"),
    ("127.0.0.1:5000/app:1", "127.0.0.1:5000/app:1"),
    ("localhost/app", "localhost/app:latest"),
])
def test_familiar_name(text, expected):
    assert familiar_name(text) == expected


def test_docker_archive_index(tmp_path):
    data, config_id = docker_archive(tags=("myapp:1.0", "myapp:latest"))
    index = read_archive_index(write(tmp_path, "a.tar", data))
    assert index.layout == "docker-archive"
    assert index.compression == "none"
    assert index.source == "tar-headers"
    assert index.as_list() == [entry(config_id, ["myapp:1.0", "myapp:latest"])]
    image = index.images[0]
    assert image.created == CREATED
    assert image.digests() == {config_id}
    assert image.fingerprint == inspect_fingerprint(matching_inspect(image_config()))


def test_docker_archive_tags_from_repositories_only(tmp_path):
    data, config_id = docker_archive(tags=("old/app:v1",), repositories_only=True)
    index = read_archive_index(write(tmp_path, "a.tar", data))
    assert index.as_list() == [entry(config_id, ["old/app:v1"])]


def test_docker_archive_untagged(tmp_path):
    # docker save <image ID> on Docker 20.10: RepoTags null, no repositories file
    data, config_id = docker_archive(tags=())
    index = read_archive_index(write(tmp_path, "a.tar", data))
    assert index.as_list() == [entry(config_id, [])]
    assert index.images[0].fingerprint is not None


def test_plain_tar_index_skips_layer_data(tmp_path, monkeypatch):
    data, _config_id = docker_archive()
    path = write(tmp_path, "a.tar", data)
    CountingReader.bytes_read = 0
    monkeypatch.setattr("builtins.open", lambda p, mode="r", *a, **kw: CountingReader(p, "r"))
    read_archive_index(path)
    assert 0 < CountingReader.bytes_read < 16 * 1024, "the layer must be seeked over, not read"


def test_overlay2_25_archive_both_layouts(tmp_path):
    data, config_id, manifest_digest = oci_archive(repositories=True)
    index = read_archive_index(write(tmp_path, "o.tar", data))
    assert index.layout == "oci"
    assert index.as_list() == [entry(config_id, ["myapp:1.0"], manifest_digest)]
    assert index.images[0].digests() == {config_id, manifest_digest}
    assert index.images[0].fingerprint == inspect_fingerprint(matching_inspect(image_config()))


def test_containerd_store_archive_without_repositories(tmp_path):
    data, config_id, manifest_digest = oci_archive(name="docker.io/team/app:2", compressed_layer=True)
    index = read_archive_index(write(tmp_path, "o.tar", data))
    assert index.as_list() == [entry(config_id, ["team/app:2"], manifest_digest)]


def test_containerd_store_archive_saved_by_id(tmp_path):
    data, config_id, manifest_digest = oci_archive(name=None, compressed_layer=True)
    index = read_archive_index(write(tmp_path, "o.tar", data))
    assert index.as_list() == [entry(config_id, [], manifest_digest)]


def test_containerd_store_two_manifests_of_one_config_stay_two_images(tmp_path):
    layer, config = layer_data(), image_config()
    gz_layer = gzip.compress(layer, 1, mtime=0)
    plain = oci_manifest(config, layer)
    packed = oci_manifest(config, gz_layer, "application/vnd.oci.image.layer.v1.tar+gzip")
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(plain),
         "size": len(plain), "annotations": {"io.containerd.image.name": "docker.io/library/a:plain"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(packed),
         "size": len(packed), "annotations": {"io.containerd.image.name": "docker.io/library/a:packed"}},
    ]}
    data = tar_bytes([("blobs/sha256/" + sha(b), b) for b in (layer, gz_layer, config, plain, packed)]
                     + [("index.json", json.dumps(index).encode()), ("manifest.json", json.dumps([
                         {"Config": "blobs/sha256/" + sha(config), "RepoTags": ["a:plain"], "Layers": []},
                         {"Config": "blobs/sha256/" + sha(config), "RepoTags": ["a:packed"], "Layers": []},
                     ]).encode())])
    images = read_archive_index(write(tmp_path, "o.tar", data)).as_list()
    assert images == [entry("sha256:" + sha(config), ["a:plain"], "sha256:" + sha(plain)),
                      entry("sha256:" + sha(config), ["a:packed"], "sha256:" + sha(packed))]


def test_oci_layout_only(tmp_path):
    data, config_id, digest = oci_archive(with_manifest_json=False, name="127.0.0.1:5000/team/app:2")
    index = read_archive_index(write(tmp_path, "o.tar", data))
    assert index.layout == "oci"
    assert index.as_list() == [entry(config_id, ["127.0.0.1:5000/team/app:2"], digest)]


def test_oci_nested_index_picks_the_stored_platform(tmp_path):
    data, config_id, index_digest = oci_archive(with_manifest_json=False, nested=True)
    index = read_archive_index(write(tmp_path, "o.tar", data))
    assert [(image.config_digest, image.manifest_digest) for image in index.images] == [(config_id, index_digest)]
    assert index.images[0].tags == ["myapp:1.0"]


def test_config_that_does_not_match_its_digest_is_corrupt(tmp_path):
    data, config_id = docker_archive()
    broken = data.replace(b'"os": "linux"', b'"os": "Linux"', 1)
    with pytest.raises(ArchiveError, match="configuration %s does not match" % config_id):
        read_archive_index(write(tmp_path, "a.tar", broken))


def test_oci_blob_digest_mismatch_is_corrupt(tmp_path):
    data, _config_id, manifest_digest = oci_archive(with_manifest_json=False)
    hex_ = manifest_digest.split(":")[1].encode()
    # flip one byte inside the manifest blob's JSON ("schemaVersion": 2 -> 3)
    start = data.index(b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest')
    broken = data[:start] + data[start:].replace(b'"schemaVersion": 2', b'"schemaVersion": 3', 1)
    assert hex_ in broken
    with pytest.raises(ArchiveError, match="does not match its digest"):
        read_archive_index(write(tmp_path, "o.tar", broken))


def test_gzip_written_by_sink_uses_footer(tmp_path):
    data, config_id = docker_archive()
    compressed, sink = sink_gzip(data)
    assert gzip.decompress(compressed) == data, "the footer member adds no uncompressed bytes"
    path = write(tmp_path, "a.tar.gz", compressed)
    index = read_archive_index(path)
    assert index.source == "gzip-footer"
    assert index.compression == "gzip"
    assert index.as_list() == [entry(config_id, ["myapp:1.0"])]
    assert index.images[0].fingerprint == inspect_fingerprint(matching_inspect(image_config()))
    assert index.images[0].created == CREATED
    assert index.content_sha256 == sha(data)
    assert sink.sha256 == sha(compressed)
    assert read_content_digest(path) == (sha(data), len(data), "gzip")


def test_gzip_footer_index_read_is_cheap(tmp_path, monkeypatch):
    data, _config_id = oci_archive()[:2]
    path = write(tmp_path, "a.tar.gz", sink_gzip(data)[0])
    CountingReader.bytes_read = 0
    monkeypatch.setattr("builtins.open", lambda p, mode="r", *a, **kw: CountingReader(p, "r"))
    assert read_archive_index(path).source == "gzip-footer"
    assert CountingReader.bytes_read < 70 * 1024


def test_gzip_from_other_tools_is_read_in_full(tmp_path):
    data, config_id = docker_archive()
    index = read_archive_index(write(tmp_path, "a.tar.gz", gzip.compress(data, 1)))
    assert index.source == "full-read"
    assert index.as_list() == [entry(config_id, ["myapp:1.0"])]
    assert index.images[0].fingerprint is not None
    assert index.content_sha256 == sha(data)


@pytest.mark.parametrize("tamper", ["append", "recompress", "cut_footer"])
def test_stale_footer_is_not_trusted(tmp_path, tamper):
    data, config_id = docker_archive()
    compressed, _sink = sink_gzip(data)
    footer_start = len(compressed) - len(build_gzip_footer(read_gzip_footer(
        io.BytesIO(compressed), len(compressed))))
    if tamper == "append":
        # another tar appended as a gzip member: the footer is no longer at the end
        compressed = compressed + gzip.compress(b"")
    elif tamper == "recompress":
        # same footer glued to a different data member (other CRC/size)
        other, _other_id = docker_archive(tags=("other:1",))
        compressed = gzip.compress(other, 1) + compressed[footer_start:]
    else:
        compressed = compressed[:footer_start]
    path = write(tmp_path, "a.tar.gz", compressed)
    with open(path, "rb") as fileobj:
        assert read_gzip_footer(fileobj, len(compressed)) is None
    index = read_archive_index(path)
    assert index.source == "full-read"
    expected = ["other:1"] if tamper == "recompress" else ["myapp:1.0"]
    assert index.images[0].tags == expected


def test_truncated_gzip(tmp_path):
    data, _config_id = docker_archive()
    compressed = sink_gzip(data)[0]
    with pytest.raises(ArchiveTruncated):
        read_archive_index(write(tmp_path, "t.tar.gz", compressed[:len(compressed) // 2]))


def test_corrupt_gzip(tmp_path):
    data, _config_id = docker_archive()
    compressed = bytearray(gzip.compress(data, 1))
    for pos in range(100, 400):
        compressed[pos] ^= 0xFF
    with pytest.raises(ArchiveError):
        read_archive_index(write(tmp_path, "c.tar.gz", bytes(compressed)))


@pytest.mark.parametrize("cut", [700, 4096, LAYER_SIZE // 2, -1024])
def test_truncated_plain_tar(tmp_path, cut):
    data, _config_id = docker_archive()
    with pytest.raises(ArchiveTruncated):
        read_archive_index(write(tmp_path, "t.tar", data[:cut] if cut > 0 else data[:cut - 512 * 20]))


def test_not_a_tar(tmp_path):
    with pytest.raises(ArchiveError, match="not a tar archive"):
        read_archive_index(write(tmp_path, "x.txt", b"hello world\n" * 100))
    with pytest.raises(ArchiveError, match="empty"):
        read_archive_index(write(tmp_path, "e.tar", b""))


def test_tar_without_image_index(tmp_path):
    data = tar_bytes([("etc/hostname", b"box\n")])
    with pytest.raises(ArchiveError, match="not an image archive"):
        read_archive_index(write(tmp_path, "fs.tar", data))


def test_missing_file(tmp_path):
    with pytest.raises(ArchiveError, match="cannot read archive"):
        read_archive_index(str(tmp_path / "nope.tar"))


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_long_member_names(tmp_path, fmt):
    long_dir = "d" * 120
    data = tar_bytes([(long_dir + "/layer.tar", b"x" * 1000), ("manifest.json", json.dumps([{
        "Config": "ef" * 32 + ".json", "RepoTags": ["long:1"], "Layers": [long_dir + "/layer.tar"],
    }]).encode())], fmt=fmt)
    with open(write(tmp_path, "l.tar", data), "rb") as fileobj:
        members = scan_seekable_tar(fileobj, len(data))
    assert long_dir + "/layer.tar" in members
    scanner = TarStreamScanner()
    scanner.feed(data)
    scanner.finish()
    assert json.loads(scanner.files["manifest.json"])[0]["RepoTags"] == ["long:1"]


@pytest.mark.parametrize("piece_size", [1, 511, 512, 513, 100000])
def test_stream_scanner_any_chunking(piece_size):
    data, _config_id, _digest = oci_archive()
    scanner = TarStreamScanner()
    step = piece_size if piece_size > 1 else 1
    # feeding byte by byte is slow for 3 MiB; cut the layer short only in that case
    if step == 1:
        data = tar_bytes([("index.json", b"{}"), ("manifest.json", b"[]")])
    for pos in range(0, len(data), step):
        scanner.feed(data[pos:pos + step])
    scanner.finish()
    assert scanner.ended
    assert "manifest.json" in scanner.files
    assert not any(len(v) > 512 * 1024 for v in scanner.files.values())


def test_stream_scanner_detects_early_end():
    data, _config_id = docker_archive()
    scanner = TarStreamScanner()
    scanner.feed(data[:len(data) // 2])
    with pytest.raises(ArchiveTruncated):
        scanner.finish()


def test_sink_plain_digest_and_index():
    data, config_id = docker_archive()
    out = io.BytesIO()
    sink = ArchiveSink(out)
    for pos in range(0, len(data), 32768):
        sink.write(data[pos:pos + 32768])
    index = sink.close()
    assert out.getvalue() == data
    assert sink.sha256 == sha(data)
    assert sink.file_size == len(data)
    assert index.as_list() == [entry(config_id, ["myapp:1.0"])]


def test_iter_decompressed_bounds_pieces():
    data = b"\x00" * (20 * 1024 * 1024)  # compresses to a few KiB
    pieces = list(iter_decompressed(io.BytesIO(gzip.compress(data)), 1024))
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= 4 * 1024 * 1024


def test_read_content_digest_plain(tmp_path):
    data = tar_bytes([("etc/hostname", b"box\n")])
    assert read_content_digest(write(tmp_path, "fs.tar", data)) == (sha(data), len(data), "none")


def test_real_gzip_tool_reads_footer_archive(tmp_path):
    data, _config_id = docker_archive()
    path = write(tmp_path, "a.tar.gz", sink_gzip(data)[0])
    with tarfile.open(path, "r:gz") as tar:
        assert "manifest.json" in tar.getnames()
    assert os.path.getsize(path) > 0


def test_verify_tar_file(tmp_path):
    data = tar_bytes([("etc/hostname", b"box\n"), ("bin/sh", b"x" * 5000)])
    verify_tar_file(write(tmp_path, "fs.tar", data))
    verify_tar_file(write(tmp_path, "fs.tar.gz", gzip.compress(data)))
    verify_tar_file(write(tmp_path, "ours.tar.gz", sink_gzip(data)[0]))
    with pytest.raises(ArchiveTruncated):
        verify_tar_file(write(tmp_path, "cut.tar", data[:1500]))
    with pytest.raises(ArchiveError):
        verify_tar_file(write(tmp_path, "cut.tar.gz", gzip.compress(data)[:60]))
    with pytest.raises(ArchiveError, match="not a tar archive"):
        verify_tar_file(write(tmp_path, "text.txt", b"plain text " * 100))
    with pytest.raises(ArchiveError, match="cannot read archive"):
        verify_tar_file(str(tmp_path / "missing.tar"))


def test_stream_scanner_keeps_only_json_blobs_and_always_the_index():
    small_layers = [("blobs/sha256/%064x" % n, b"\x1f\x8b" + bytes(400 * 1024)) for n in range(120)]
    data = tar_bytes(small_layers + [("blobs/sha256/" + "e" * 64, b'{"a": 1}'),
                                     ("manifest.json", b"[]"), ("index.json", b"{}")])
    scanner = TarStreamScanner()
    for pos in range(0, len(data), 1 << 20):
        scanner.feed(data[pos:pos + (1 << 20)])
    scanner.finish()
    assert sorted(scanner.files) == ["blobs/sha256/" + "e" * 64, "index.json", "manifest.json"]


def test_footer_of_an_older_module_version_still_reads(tmp_path):
    # footers written before created/fingerprint were recorded: id, manifest_digest, tags only
    data, config_id = docker_archive()
    compressed, _sink = sink_gzip(data)
    payload = read_gzip_footer(io.BytesIO(compressed), len(compressed))
    old_payload = dict(payload, images=[{"id": config_id, "tags": ["myapp:1.0"], "manifest_digest": None}])
    old = compressed[:payload["data_end"]] + build_gzip_footer(old_payload)
    path = write(tmp_path, "old.tar.gz", old)
    index = read_archive_index(path)
    assert index.source == "gzip-footer"
    assert index.as_list() == [entry(config_id, ["myapp:1.0"])]
    assert index.images[0].fingerprint is None
    full = read_archive_index(path, use_footer=False)
    assert full.source == "full-read"
    assert full.images[0].fingerprint == inspect_fingerprint(matching_inspect(image_config()))


def test_fingerprint_tells_configurations_apart():
    base = json.loads(image_config())
    fingerprint = inspect_fingerprint(matching_inspect(image_config()))

    def of(document):
        return configuration_fingerprint(document["created"], document["os"], document["architecture"],
                                         document["rootfs"]["diff_ids"], document["config"])

    assert of(base) == fingerprint
    for change in (
        lambda d: d.update(created="2026-12-04T18:39:45.305537836Z"),
        lambda d: d.update(architecture="arm64"),
        lambda d: d["rootfs"]["diff_ids"].append("sha256:" + "1" * 64),
        lambda d: d["config"].update(Cmd=["sh", "-c", "true"]),
        lambda d: d["config"].update(Labels={"a": "b"}),
        lambda d: d["config"].update(Env=["A=1"]),
    ):
        changed = json.loads(image_config())
        change(changed)
        assert of(changed) != fingerprint
