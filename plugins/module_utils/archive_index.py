# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Index of image archives (``docker save`` output) without reading layer data.

Two layouts are understood: the classic docker-archive (``manifest.json`` and
``repositories``, as Docker before 25 writes it) and the OCI image layout
(``index.json`` and ``blobs/sha256/``), which Docker 25+ writes together with
``manifest.json`` (and ``repositories`` on the graph-driver store, not on the
containerd image store). Archives are plain or gzip-compressed tar files.

Each image is known by its configuration digest (what a graph-driver engine
calls its ID) and, when the archive has an ``index.json``, by the digest of
its manifest or index there (what the containerd image store calls its ID).
An engine with the containerd store gives an image loaded from an archive
without ``index.json`` a manifest of its own, so such an image is recognised
by ``configuration_fingerprint`` instead: its creation time, platform, layer
diff IDs and container configuration, all of which its inspect data shows.

How the index is found cheaply:

* plain tar: the member headers are read one by one and the file is seeked
  over the member data, so only a few 512-byte blocks plus the small JSON
  files are read, however big the layers are;
* gzip written by this collection: the file ends with an extra, empty gzip
  member whose header carries the index (FEXTRA subfield ``DH``) together
  with the offset and the CRC-32/ISIZE trailer of the data member. The index
  is trusted only when the file size and that trailer match, so a truncated
  or rewritten file falls back to the full read. Decompressors concatenate
  gzip members, so the tar stream stays exactly what the engine produced;
* any other gzip file (for example ``docker save | gzip``) is decompressed
  once as a stream and its tar headers scanned on the fly.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from ansible_collections.dockhand.registry.plugins.module_utils.atomic_file import READ_CHUNK_SIZE
from ansible_collections.dockhand.registry.plugins.module_utils.commit_changes import sha256_of_json
from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import (
    ImageReferenceError,
    parse_reference,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    DOCKER_HUB_NAMES,
    INDEX_MEDIA_TYPES,
    created_ns,
    sha256_digest,
)

BLOCK_SIZE = 512
GZIP_MAGIC = b"\x1f\x8b"
INDEX_FILE_NAMES = ("manifest.json", "repositories", "index.json", "oci-layout")
MAX_INDEX_FILE_SIZE = 8 * 1024 * 1024
# OCI manifests and indexes are small JSON blobs; layer blobs are never kept.
MAX_SMALL_BLOB_SIZE = 512 * 1024
MAX_CAPTURED_TOTAL = 32 * 1024 * 1024
MAX_DECOMPRESSED_PIECE = 4 * 1024 * 1024

FOOTER_SUBFIELD_ID = b"DH"
FOOTER_MAGIC = b"DHIX"
FOOTER_VERSION = 1
# deflate of nothing (final empty fixed block) + CRC-32 0 + ISIZE 0
_EMPTY_MEMBER_TAIL = b"\x03\x00" + b"\x00" * 8
_FOOTER_TRAILER = struct.Struct("<I4s")  # payload length, magic
_MAX_FOOTER_PAYLOAD = 65535 - 4 - _FOOTER_TRAILER.size

_REGULAR_TYPES = (b"0", b"\x00", b"7")
_DATA_LESS_TYPES = (b"1", b"2", b"3", b"4", b"5", b"6")
# The classic layout keeps each image configuration at the top as <64 hex>.json.
_CLASSIC_CONFIG_RE = re.compile(r"^[0-9a-f]{64}\.json$")
# The parts of an image's container configuration that docker image inspect
# shows alike on every store (see configuration_fingerprint).
_FINGERPRINT_CONFIG_KEYS = (
    "Cmd", "Entrypoint", "Env", "Labels", "User", "WorkingDir", "StopSignal", "OnBuild",
)
_FINGERPRINT_CONFIG_SETS = ("ExposedPorts", "Volumes")


class ArchiveError(DockhandError):
    """The archive cannot be read as an image or filesystem archive."""


class ArchiveTruncated(ArchiveError):
    """The archive ends before its end-of-archive marker."""


@dataclass
class ArchiveImage:
    """One image in an archive: its digests, its ``name:tag`` tags and its configuration's fingerprint."""

    config_digest: str
    tags: List[str] = field(default_factory=list)
    manifest_digest: Optional[str] = None  # the index.json descriptor's digest, when there is one
    created: Optional[str] = None  # the configuration's creation time, as written there
    fingerprint: Optional[str] = None  # see configuration_fingerprint

    def digests(self):
        """The IDs an engine may give this image: config digest (graph driver), manifest digest (containerd)."""
        return {digest for digest in (self.config_digest, self.manifest_digest) if digest}

    def as_dict(self):
        return {"config_digest": self.config_digest, "manifest_digest": self.manifest_digest,
                "tags": sorted(self.tags)}


@dataclass
class ArchiveIndex:
    """What an archive holds and how that was learned."""

    images: List[ArchiveImage]
    layout: str  # docker-archive or oci
    compression: str  # none or gzip
    source: str  # tar-headers, gzip-footer or full-read
    content_sha256: Optional[str] = None  # of the uncompressed tar, when known
    content_size: Optional[int] = None

    def as_list(self):
        return [image.as_dict() for image in self.images]


def familiar_name(reference):
    """The engine's short spelling of ``reference`` (``docker.io/library/x:t`` -> ``x:t``)."""
    ref = parse_reference(reference)
    repository = ref.repository
    if ref.registry in DOCKER_HUB_NAMES or ref.registry is None:
        if repository.startswith("library/") and repository.count("/") == 1:
            repository = repository[len("library/"):]
        name = repository
    else:
        name = ref.registry + "/" + repository
    if ref.digest and not ref.tag:
        return name + "@" + ref.digest
    return name + ":" + (ref.tag or "latest")


def configuration_fingerprint(created, os_name, architecture, diff_ids, container_config):
    """Hash of what both an image configuration and the engine's inspect data of it show.

    The creation time (to the nanosecond), platform, layer diff IDs and the
    container configuration (command, environment, labels, ports, ...): an
    image that agrees in all of them has the same configuration.
    """
    config = container_config if isinstance(container_config, dict) else {}
    normalized = {key: config.get(key) or None for key in _FINGERPRINT_CONFIG_KEYS}
    for key in _FINGERPRINT_CONFIG_SETS:
        normalized[key] = sorted(config.get(key) or {}) or None
    return sha256_of_json({
        "created": created_ns(created), "os": os_name or None, "architecture": architecture or None,
        "diff_ids": list(diff_ids or []), "config": normalized,
    })


def inspect_fingerprint(image_inspect):
    """configuration_fingerprint of an image as ``docker image inspect`` shows it."""
    return configuration_fingerprint(
        image_inspect.get("Created"), image_inspect.get("Os"), image_inspect.get("Architecture"),
        (image_inspect.get("RootFS") or {}).get("Layers"), image_inspect.get("Config"),
    )


def _config_fingerprint(config_document):
    if not isinstance(config_document, dict):
        return None
    rootfs = config_document.get("rootfs") if isinstance(config_document.get("rootfs"), dict) else {}
    return configuration_fingerprint(
        config_document.get("created"), config_document.get("os"), config_document.get("architecture"),
        rootfs.get("diff_ids"), config_document.get("config"),
    )


# --------------------------------------------------------------------------- tar headers


@dataclass
class TarHeader:
    name: str
    size: int
    typeflag: bytes
    data_size: int  # bytes of data that follow the header block (before padding)


def _parse_number(field_bytes):
    if field_bytes[:1] and field_bytes[0] & 0x80:
        # base-256 (GNU) for sizes over 8 GiB
        value = int.from_bytes(field_bytes[1:], "big")
        return value
    text = field_bytes.split(b"\x00", 1)[0].strip(b" \x00")
    if not text:
        return 0
    return int(text, 8)


def _cstring(field_bytes):
    return field_bytes.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def parse_tar_header(block, offset):
    """Parse one 512-byte header block; raise ArchiveError for anything that is not one."""
    if len(block) < BLOCK_SIZE:
        raise ArchiveTruncated("archive is truncated: header at byte %d is incomplete" % offset)
    try:
        stored = _parse_number(block[148:156])
    except ValueError:
        stored = -1
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:BLOCK_SIZE])
    if stored != computed:
        if offset == 0:
            raise ArchiveError("not a tar archive (no valid tar header at the start)")
        raise ArchiveError("archive is corrupt: bad tar header checksum at byte %d" % offset)
    try:
        size = _parse_number(block[124:136])
    except ValueError:
        raise ArchiveError("archive is corrupt: bad size field in tar header at byte %d" % offset)
    name = _cstring(block[0:100])
    if block[257:262] == b"ustar":
        prefix = _cstring(block[345:500])
        if prefix:
            name = prefix + "/" + name
    typeflag = block[156:157]
    data_size = 0 if typeflag in _DATA_LESS_TYPES else size
    return TarHeader(name=name, size=size, typeflag=typeflag, data_size=data_size)


def _padded(size):
    return (size + BLOCK_SIZE - 1) // BLOCK_SIZE * BLOCK_SIZE


def _parse_pax(data):
    """Records of a pax extended header (``len key=value\\n``)."""
    records = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise ArchiveError("archive is corrupt: bad pax header")
        if length <= 0:
            break
        record = data[space + 1:pos + length - 1]
        key, _sep, value = record.partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _normalize_member_name(name):
    name = posixpath.normpath(name.lstrip("/")) if name else name
    return "" if name == "." else name


def is_small_file_of_interest(name, size):
    """Members worth keeping while streaming: the index files, small JSON blobs and configs."""
    if name in INDEX_FILE_NAMES:
        return size <= MAX_INDEX_FILE_SIZE
    return (name.startswith("blobs/sha256/") or bool(_CLASSIC_CONFIG_RE.match(name))) \
        and size <= MAX_SMALL_BLOB_SIZE


class TarStreamScanner:
    """Push parser for a tar stream: finds member headers while the data passes by.

    Only small members accepted by ``want(name, size)`` are kept in
    ``files``; layer data is skipped without being stored.
    """

    def __init__(self, want=is_small_file_of_interest):
        self._want = want
        self.files: Dict[str, bytes] = {}
        self.member_count = 0
        self.ended = False
        self.offset = 0
        self._captured_total = 0
        self._header = bytearray()
        self._zero_blocks = 0
        self._remaining = 0
        self._padding = 0
        self._capture: Optional[bytearray] = None
        self._current: Optional[TarHeader] = None
        self._long_name: Optional[str] = None
        self._pax: Dict[str, str] = {}

    def feed(self, data):
        view = memoryview(data)
        pos = 0
        end = len(view)
        while pos < end and not self.ended:
            if self._remaining:
                take = min(self._remaining, end - pos)
                if self._capture is not None:
                    self._capture += view[pos:pos + take]
                self._remaining -= take
                pos += take
                if not self._remaining:
                    self._member_done()
                continue
            if self._padding:
                take = min(self._padding, end - pos)
                self._padding -= take
                pos += take
                continue
            take = min(BLOCK_SIZE - len(self._header), end - pos)
            self._header += view[pos:pos + take]
            pos += take
            if len(self._header) == BLOCK_SIZE:
                self._header_complete(bytes(self._header))
                self._header.clear()
        self.offset += len(view)

    def _header_complete(self, block):
        header_offset = self.offset  # approximate: offset of the chunk, good enough for messages
        if block.count(0) == BLOCK_SIZE:
            # Go's and GNU tar's writers end with two zero blocks
            self._zero_blocks += 1
            self.ended = self._zero_blocks == 2
            return
        if self._zero_blocks:
            raise ArchiveError("archive is corrupt: data after an empty tar block")
        header = parse_tar_header(block, header_offset if self.member_count else 0)
        self.member_count += 1
        self._current = header
        self._remaining = header.data_size
        self._padding = _padded(header.data_size) - header.data_size
        self._capture = None
        if header.typeflag in (b"x", b"L", b"g"):
            if header.data_size > MAX_INDEX_FILE_SIZE:
                raise ArchiveError("archive is corrupt: oversized tar extension header")
            self._capture = bytearray()
        elif header.typeflag in _REGULAR_TYPES:
            name = self._member_name(header)
            if self._want(name, header.data_size) and (
                name in INDEX_FILE_NAMES
                or self._captured_total + header.data_size <= MAX_CAPTURED_TOTAL
            ):
                self._capture = bytearray()
        if not self._remaining:
            self._member_done()

    def _member_name(self, header):
        name = self._pax.get("path") or self._long_name or header.name
        return _normalize_member_name(name)

    def _member_done(self):
        header = self._current
        data = bytes(self._capture) if self._capture is not None else None
        self._capture = None
        if header.typeflag == b"x":
            self._pax = _parse_pax(data or b"")
            if "size" in self._pax:
                raise ArchiveError("archive uses pax size overrides, which are not supported")
            return
        if header.typeflag == b"L":
            self._long_name = (data or b"").split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
            return
        if header.typeflag == b"g":
            return
        name = self._member_name(header)
        # Of the blobs only JSON documents (manifests, indexes, configs) are
        # kept; a small layer is dropped as soon as it has been seen.
        if data is not None and (name in INDEX_FILE_NAMES or data[:1] == b"{"):
            self.files[name] = data
            self._captured_total += len(data)
        self._long_name = None
        self._pax = {}

    def finish(self):
        """Raise unless the stream reached the tar end-of-archive marker."""
        if self.ended:
            return
        if self.offset == 0:
            raise ArchiveError("archive is empty")
        if self.member_count == 0 and not self._zero_blocks:
            raise ArchiveError("not a tar archive (shorter than one tar block)")
        pending = self._remaining or self._padding or self._header
        if self._zero_blocks == 1 and not pending:
            return  # a single end block, then EOF: some writers stop there
        raise ArchiveTruncated(
            "archive is truncated: the tar stream ends without its end-of-archive marker")


def scan_seekable_tar(fileobj, file_size):
    """Member name -> (data offset, size) of a plain tar file, seeking over member data."""
    members = {}
    offset = 0
    long_name = None
    pax = {}
    first = True
    while True:
        if offset + BLOCK_SIZE > file_size:
            if first and file_size == 0:
                raise ArchiveError("archive is empty")
            if first:
                raise ArchiveError("not a tar archive (file is shorter than one tar block)")
            raise ArchiveTruncated(
                "archive is truncated: the tar stream ends without its end-of-archive marker")
        fileobj.seek(offset)
        block = fileobj.read(BLOCK_SIZE)
        if block.count(0) == BLOCK_SIZE:
            if first:
                raise ArchiveError("not a tar archive (starts with an empty block)")
            return members
        header = parse_tar_header(block, 0 if first else offset)
        first = False
        data_offset = offset + BLOCK_SIZE
        offset = data_offset + _padded(header.data_size)
        if data_offset + header.data_size > file_size:
            raise ArchiveTruncated(
                "archive is truncated: member %r needs %d bytes past the end of the file"
                % (header.name, data_offset + header.data_size - file_size))
        if header.typeflag in (b"x", b"L"):
            if header.data_size > MAX_INDEX_FILE_SIZE:
                raise ArchiveError("archive is corrupt: oversized tar extension header")
            fileobj.seek(data_offset)
            data = fileobj.read(header.data_size)
            if header.typeflag == b"x":
                pax = _parse_pax(data)
                if "size" in pax:
                    raise ArchiveError("archive uses pax size overrides, which are not supported")
            else:
                long_name = data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
            continue
        if header.typeflag == b"g":
            continue
        name = _normalize_member_name(pax.get("path") or long_name or header.name)
        long_name = None
        pax = {}
        if header.typeflag in _REGULAR_TYPES:
            members[name] = (data_offset, header.data_size)


# --------------------------------------------------------------------------- index building


def _load_json(data, what):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArchiveError("archive is corrupt: %s is not valid JSON (%s)" % (what, exc))


def _hex_id(text, what):
    hex_part = text[len("sha256:"):] if text.startswith("sha256:") else text
    if len(hex_part) != 64 or any(c not in "0123456789abcdef" for c in hex_part):
        raise ArchiveError("archive is corrupt: %s %r is not a sha256 digest" % (what, text))
    return "sha256:" + hex_part


def _familiar_or_none(name):
    try:
        return familiar_name(name)
    except ImageReferenceError:
        return None


def _config_details(read_member, member_name, digest):
    """(created, fingerprint) of the image configuration stored as ``member_name``, or (None, None)."""
    data = read_member(member_name)
    if data is None:
        return None, None  # not kept (too big for an index read): the image is known by digest only
    if sha256_digest(data) != digest:
        raise ArchiveError("archive is corrupt: image configuration %s does not match its digest" % digest)
    document = _load_json(data, member_name)
    created = document.get("created") if isinstance(document, dict) else None
    return (created if isinstance(created, str) else None), _config_fingerprint(document)


def _images_from_docker_manifest(manifest, repositories, read_member):
    if not isinstance(manifest, list):
        raise ArchiveError("archive is corrupt: manifest.json is not a list")
    images: Dict[str, ArchiveImage] = {}
    top_layers = {}
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise ArchiveError("archive is corrupt: manifest.json entry without Config")
        config_member = _normalize_member_name(entry["Config"])
        config = posixpath.basename(config_member)
        if config.endswith(".json"):
            config = config[:-len(".json")]
        config_digest = _hex_id(config, "config")
        image = images.get(config_digest)
        if image is None:
            created, fingerprint = _config_details(read_member, config_member, config_digest)
            image = images[config_digest] = ArchiveImage(
                config_digest=config_digest, created=created, fingerprint=fingerprint)
        for tag in entry.get("RepoTags") or []:
            familiar = _familiar_or_none(tag) if isinstance(tag, str) else None
            if familiar and familiar not in image.tags:
                image.tags.append(familiar)
        layers = entry.get("Layers") or []
        if layers and isinstance(layers[-1], str):
            top_layers[posixpath.dirname(layers[-1])] = image
    # ``repositories`` (v1 format) maps repo -> tag -> top layer ID; older
    # writers put tags only there.
    if isinstance(repositories, dict):
        for repo, tags in repositories.items():
            if not isinstance(tags, dict):
                continue
            for tag, layer_id in tags.items():
                image = top_layers.get(layer_id) if isinstance(layer_id, str) else None
                familiar = _familiar_or_none("%s:%s" % (repo, tag))
                if image is not None and familiar and familiar not in image.tags:
                    image.tags.append(familiar)
    return list(images.values())


def _oci_tag(annotations):
    for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
        value = annotations.get(key)
        # a bare ref.name such as "latest" carries no repository, so it names nothing
        if isinstance(value, str) and (":" in value or "/" in value):
            familiar = _familiar_or_none(value)
            if familiar:
                return familiar
    return None


def _images_from_oci_index(index, read_blob):
    """The images of index.json, one per descriptor digest (the containerd store's image ID)."""
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ArchiveError("archive is corrupt: index.json has no manifests list")
    images: Dict[str, ArchiveImage] = {}
    for descriptor in index["manifests"]:
        if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
            raise ArchiveError("archive is corrupt: index.json descriptor without digest")
        digest = _hex_id(descriptor["digest"], "descriptor digest")
        image = images.get(digest)
        if image is None:
            config_digest = _oci_config_digest(descriptor, read_blob, depth=0)
            if config_digest is None:
                continue
            created, fingerprint = _config_details(
                read_blob, "blobs/sha256/" + config_digest[len("sha256:"):], config_digest)
            image = images[digest] = ArchiveImage(
                config_digest=config_digest, manifest_digest=digest, created=created,
                fingerprint=fingerprint)
        tag = _oci_tag(descriptor.get("annotations") or {})
        if tag and tag not in image.tags:
            image.tags.append(tag)
    return list(images.values())


def _oci_config_digest(descriptor, read_blob, depth):
    if depth > 4:
        raise ArchiveError("archive is corrupt: index nesting too deep")
    digest = _hex_id(descriptor["digest"], "descriptor digest")
    data = read_blob("blobs/sha256/" + digest[len("sha256:"):])
    if data is None:
        return None  # another platform's manifest, not stored in this archive
    if sha256_digest(data) != digest:
        raise ArchiveError("archive is corrupt: blob %s does not match its digest" % digest)
    document = _load_json(data, "blob " + digest)
    if not isinstance(document, dict):
        raise ArchiveError("archive is corrupt: blob %s is not a manifest or index" % digest)
    media_type = descriptor.get("mediaType") or document.get("mediaType")
    if media_type in INDEX_MEDIA_TYPES or "manifests" in document:
        for child in document.get("manifests") or []:
            if isinstance(child, dict) and isinstance(child.get("digest"), str):
                found = _oci_config_digest(child, read_blob, depth + 1)
                if found:
                    return found
        return None
    config = document.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
        raise ArchiveError("archive is corrupt: manifest %s has no config" % digest)
    return _hex_id(config["digest"], "config digest")


def build_index(read_member: Callable[[str], Optional[bytes]], compression, source):
    """Build an ArchiveIndex from a function that returns a member's bytes (or None)."""
    manifest = read_member("manifest.json")
    index_json = read_member("index.json")
    if manifest is None and index_json is None:
        raise ArchiveError(
            "not an image archive: neither manifest.json nor index.json found"
            " (a filesystem tar from export is loaded with state=imported)")
    images = []
    if index_json is not None:
        images = _images_from_oci_index(_load_json(index_json, "index.json"), read_member)
    if manifest is not None:
        repositories = read_member("repositories")
        classic_images = _images_from_docker_manifest(
            _load_json(manifest, "manifest.json"),
            _load_json(repositories, "repositories") if repositories is not None else None,
            read_member,
        )
        for classic in classic_images:
            # Docker 25+ writes both; manifest.json and repositories may carry more names.
            same = [image for image in images if image.config_digest == classic.config_digest]
            if len(same) == 1:
                same[0].tags.extend(tag for tag in classic.tags if tag not in same[0].tags)
            elif not same:
                images.append(classic)
            # with several manifests of one configuration, index.json's own names decide
    layout = "oci" if index_json is not None else "docker-archive"
    return ArchiveIndex(images=images, layout=layout, compression=compression, source=source)


# --------------------------------------------------------------------------- gzip footer


def build_gzip_footer(payload):
    """An empty gzip member whose FEXTRA carries ``payload`` (a dict), or None if too big."""
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(data) > _MAX_FOOTER_PAYLOAD:
        return None
    subfield = data + _FOOTER_TRAILER.pack(len(data), FOOTER_MAGIC)
    extra = FOOTER_SUBFIELD_ID + struct.pack("<H", len(subfield)) + subfield
    # ID1 ID2 CM=deflate FLG=FEXTRA MTIME=0 XFL=0 OS=unknown
    header = GZIP_MAGIC + b"\x08\x04" + b"\x00\x00\x00\x00" + b"\x00\xff"
    return header + struct.pack("<H", len(extra)) + extra + _EMPTY_MEMBER_TAIL


def read_gzip_footer(fileobj, file_size):
    """The payload of a footer written by build_gzip_footer, or None when absent or stale."""
    tail_size = min(file_size, 65536 + 32)
    if tail_size < 64:
        return None
    fileobj.seek(file_size - tail_size)
    tail = fileobj.read(tail_size)
    if not tail.endswith(_EMPTY_MEMBER_TAIL):
        return None
    trailer_end = len(tail) - len(_EMPTY_MEMBER_TAIL)
    length, magic = _FOOTER_TRAILER.unpack(tail[trailer_end - _FOOTER_TRAILER.size:trailer_end])
    if magic != FOOTER_MAGIC:
        return None
    payload_start = trailer_end - _FOOTER_TRAILER.size - length
    if payload_start < 0:
        return None
    try:
        payload = json.loads(tail[payload_start:payload_start + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("v") != FOOTER_VERSION:
        return None
    footer = build_gzip_footer(payload)
    member_end = payload.get("data_end")
    if footer is None or not isinstance(member_end, int) or member_end + len(footer) != file_size:
        return None
    # The data member's own trailer (CRC-32, ISIZE) must be the one recorded:
    # a file rewritten by another tool, or cut and re-padded, does not match.
    if member_end < 18:
        return None
    fileobj.seek(member_end - 8)
    crc, isize = struct.unpack("<II", fileobj.read(8))
    if crc != payload.get("crc32") or isize != (payload.get("size", -1) & 0xFFFFFFFF):
        return None
    fileobj.seek(member_end)
    if fileobj.read(len(footer)) != footer:
        return None
    return payload


# --------------------------------------------------------------------------- reading


def detect_compression(fileobj):
    fileobj.seek(0)
    magic = fileobj.read(2)
    fileobj.seek(0)
    return "gzip" if magic == GZIP_MAGIC else "none"


def iter_decompressed(fileobj, chunk_size=READ_CHUNK_SIZE):
    """Yield the uncompressed bytes of a (multi-member) gzip stream in bounded pieces."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    seen_member = False
    while True:
        chunk = fileobj.read(chunk_size)
        if not chunk:
            break
        while chunk:
            try:
                piece = decompressor.decompress(chunk, MAX_DECOMPRESSED_PIECE)
            except zlib.error as exc:
                raise ArchiveError("archive is corrupt: gzip data error (%s)" % exc)
            seen_member = True
            if piece:
                yield piece
            if decompressor.unconsumed_tail:
                chunk = decompressor.unconsumed_tail
                continue
            if decompressor.eof:
                chunk = decompressor.unused_data
                decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                seen_member = False
                continue
            chunk = b""
    if seen_member and not decompressor.eof:
        raise ArchiveTruncated("archive is truncated: the gzip stream ends early")


def _index_from_stream(pieces, compression, source):
    scanner = TarStreamScanner()
    digest = hashlib.sha256()
    size = 0
    for piece in pieces:
        digest.update(piece)
        size += len(piece)
        if not scanner.ended:
            scanner.feed(piece)
    scanner.finish()
    index = build_index(scanner.files.get, compression, source)
    index.content_sha256 = digest.hexdigest()
    index.content_size = size
    return index


def read_archive_index(path, use_footer=True):
    """Read the image index of the archive at ``path`` (see the module docstring).

    ``use_footer=False`` ignores a gzip footer (one written before the footer
    held fingerprints, when one is needed) and reads the archive in full.
    """
    try:
        with open(path, "rb") as fileobj:
            file_size = os.fstat(fileobj.fileno()).st_size
            if file_size == 0:
                raise ArchiveError("archive is empty")
            if detect_compression(fileobj) == "gzip":
                payload = read_gzip_footer(fileobj, file_size) if use_footer else None
                if payload is not None and isinstance(payload.get("images"), list):
                    return _index_from_footer(payload)
                fileobj.seek(0)
                return _index_from_stream(iter_decompressed(fileobj), "gzip", "full-read")
            members = scan_seekable_tar(fileobj, file_size)

            def read_member(name):
                location = members.get(name)
                if location is None:
                    return None
                offset, size = location
                if name not in INDEX_FILE_NAMES and size > MAX_SMALL_BLOB_SIZE:
                    return None  # a layer, or a blob too big to be a manifest or configuration
                if size > MAX_INDEX_FILE_SIZE:
                    raise ArchiveError("archive member %s is too large to be an index" % name)
                fileobj.seek(offset)
                return fileobj.read(size)

            return build_index(read_member, "none", "tar-headers")
    except (IOError, OSError) as exc:
        raise ArchiveError("cannot read archive %s: %s" % (path, exc.strerror or exc))


def _footer_entry(image):
    return {"id": image.config_digest, "manifest_digest": image.manifest_digest,
            "tags": sorted(image.tags), "created": image.created, "fingerprint": image.fingerprint}


def _index_from_footer(payload):
    images = []
    for entry in payload["images"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ArchiveError("archive footer is malformed")
        # footers written before created and fingerprint were recorded lack them
        images.append(ArchiveImage(
            config_digest=entry["id"], tags=list(entry.get("tags") or []),
            manifest_digest=entry.get("manifest_digest"), created=entry.get("created"),
            fingerprint=entry.get("fingerprint")))
    return ArchiveIndex(
        images=images, layout=payload.get("layout") or "docker-archive", compression="gzip",
        source="gzip-footer", content_sha256=payload.get("sha256"), content_size=payload.get("size"),
    )


def read_content_digest(path):
    """sha256 and size of the uncompressed tar stream of ``path``.

    Cheap for gzip files with a footer; otherwise one streaming pass.
    Returns (sha256 hex, size, compression).
    """
    try:
        with open(path, "rb") as fileobj:
            file_size = os.fstat(fileobj.fileno()).st_size
            if detect_compression(fileobj) == "gzip":
                payload = read_gzip_footer(fileobj, file_size)
                if payload is not None and payload.get("sha256"):
                    return payload["sha256"], payload.get("size"), "gzip"
                fileobj.seek(0)
                pieces = iter_decompressed(fileobj)
                compression = "gzip"
            else:
                pieces = iter(lambda: fileobj.read(READ_CHUNK_SIZE), b"")
                compression = "none"
            digest = hashlib.sha256()
            size = 0
            for piece in pieces:
                digest.update(piece)
                size += len(piece)
            return digest.hexdigest(), size, compression
    except (IOError, OSError) as exc:
        raise ArchiveError("cannot read archive %s: %s" % (path, exc.strerror or exc))


def verify_tar_file(path):
    """Raise ArchiveError unless ``path`` is a complete tar (plain or gzip)."""
    try:
        fileobj = open(path, "rb")
    except (IOError, OSError) as exc:
        raise ArchiveError("cannot read archive %s: %s" % (path, exc.strerror or exc))
    with fileobj:
        size = os.fstat(fileobj.fileno()).st_size
        if size == 0:
            raise ArchiveError("archive %s is empty" % path)
        if fileobj.read(2) != GZIP_MAGIC:
            scan_seekable_tar(fileobj, size)
            return
        if read_gzip_footer(fileobj, size) is not None:
            return
        fileobj.seek(0)
        scanner = TarStreamScanner(want=lambda name, size: False)
        for piece in iter_decompressed(fileobj, READ_CHUNK_SIZE):
            scanner.feed(piece)
            if scanner.ended:
                break
        scanner.finish()


# --------------------------------------------------------------------------- writing


class ArchiveSink:
    """Receives an engine tar stream and writes it (optionally gzip-compressed) to ``out``.

    Tracks while streaming: the tar structure (so a stream cut short is an
    error), the small index members, the sha256 and size of the tar stream and
    of the bytes written. ``out`` needs ``write(bytes)``.
    """

    def __init__(self, out, compression="none", gzip_level=1, scan=True):
        self._out = out
        self.compression = compression
        self._compressor = (
            zlib.compressobj(gzip_level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            if compression == "gzip" else None
        )
        self.scanner = TarStreamScanner() if scan else TarStreamScanner(want=lambda n, s: False)
        self.content_digest = hashlib.sha256()
        self.file_digest = hashlib.sha256() if compression == "gzip" else self.content_digest
        self.content_size = 0
        self.file_size = 0
        self._data_trailer = None

    def _emit(self, data):
        if data:
            self._out.write(data)
            if self.file_digest is not self.content_digest:
                self.file_digest.update(data)
            self.file_size += len(data)

    def write(self, chunk):
        self.content_size += len(chunk)
        self.content_digest.update(chunk)
        if not self.scanner.ended:
            self.scanner.feed(chunk)
        if self._compressor is None:
            self._out.write(chunk)
            self.file_size += len(chunk)
        else:
            self._emit(self._compressor.compress(chunk))

    def close(self, footer_extra=None):
        """Check the stream was complete and finish compression. Returns the index or None."""
        self.scanner.finish()
        index = None
        if "manifest.json" in self.scanner.files or "index.json" in self.scanner.files:
            index = build_index(self.scanner.files.get, self.compression, "stream")
        if self._compressor is not None:
            tail = self._compressor.flush()
            self._emit(tail)
            crc, isize = struct.unpack("<II", tail[-8:])
            payload = {
                "v": FOOTER_VERSION, "data_end": self.file_size, "crc32": crc,
                "size": self.content_size, "sha256": self.content_digest.hexdigest(),
            }
            if index is not None:
                payload["images"] = [_footer_entry(image) for image in index.images]
                payload["layout"] = index.layout
            payload.update(footer_extra or {})
            footer = build_gzip_footer(payload)
            if footer is not None:
                self._emit(footer)
        if index is not None:
            index.content_sha256 = self.content_digest.hexdigest()
            index.content_size = self.content_size
        return index

    @property
    def sha256(self):
        return self.file_digest.hexdigest()
