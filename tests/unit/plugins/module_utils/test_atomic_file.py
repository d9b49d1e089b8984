# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import os
import signal
import stat

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.atomic_file import (
    AtomicFile,
    AtomicFileError,
    WriteInterrupted,
    apply_file_attributes,
    cached_sha256,
    file_sha256,
    remember_sha256,
)


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_commit_replaces_file_and_keeps_its_mode(tmp_path):
    target = tmp_path / "archive.tar"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with AtomicFile(str(target)) as out:
        out.write(b"new ")
        out.write(b"content")
        assert target.read_bytes() == b"old", "nothing is visible before commit"
        out.commit()
    assert target.read_bytes() == b"new content"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_new_file_gets_umask_mode(tmp_path):
    target = tmp_path / "new.tar"
    old_umask = os.umask(0o027)
    try:
        with AtomicFile(str(target)) as out:
            out.write(b"x")
            out.commit()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt, AtomicFileError])
def test_failure_keeps_previous_file_and_removes_temp(tmp_path, exc_type):
    target = tmp_path / "archive.tar"
    target.write_bytes(b"previous archive")
    with pytest.raises(exc_type):
        with AtomicFile(str(target)) as out:
            out.write(b"half written")
            assert len(leftovers(tmp_path)) == 1
            raise exc_type("boom")
    assert target.read_bytes() == b"previous archive"
    assert leftovers(tmp_path) == []


def test_sigterm_is_turned_into_cleanup(tmp_path):
    target = tmp_path / "archive.tar"
    target.write_bytes(b"previous archive")
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(WriteInterrupted):
        with AtomicFile(str(target)) as out:
            out.write(b"partial")
            os.kill(os.getpid(), signal.SIGTERM)
            out.write(b"never")  # the handler raises before or at this point
            for _attempt in range(1000):
                out.write(b"")
    assert target.read_bytes() == b"previous archive"
    assert leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == previous


def test_missing_directory(tmp_path):
    with pytest.raises(AtomicFileError, match="does not exist"):
        AtomicFile(str(tmp_path / "missing" / "a.tar"))


def test_path_is_a_directory(tmp_path):
    with pytest.raises(AtomicFileError, match="is a directory"):
        AtomicFile(str(tmp_path))


def test_remembered_digest_is_bound_to_the_file(tmp_path):
    target = tmp_path / "a.tar"
    target.write_bytes(b"content")
    digest = hashlib.sha256(b"content").hexdigest()
    if not remember_sha256(str(target), digest):
        pytest.skip("file system without user extended attributes")
    assert cached_sha256(str(target)) == digest
    assert file_sha256(str(target)) == digest
    target.write_bytes(b"changed!")  # new size and mtime
    assert cached_sha256(str(target)) is None
    assert file_sha256(str(target)) == hashlib.sha256(b"changed!").hexdigest()


def test_file_sha256_without_cache(tmp_path):
    target = tmp_path / "b.tar"
    target.write_bytes(b"x" * 3000000)
    assert file_sha256(str(target)) == hashlib.sha256(b"x" * 3000000).hexdigest()


def test_stale_cache_same_size_other_mtime(tmp_path):
    target = tmp_path / "c.tar"
    target.write_bytes(b"aaaa")
    if not remember_sha256(str(target), "0" * 64):
        pytest.skip("file system without user extended attributes")
    assert cached_sha256(str(target)) == "0" * 64
    st = os.stat(target)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    assert cached_sha256(str(target)) is None


class FakeModule:
    """Records what the file-attribute helper asks of AnsibleModule."""

    def __init__(self, params):
        self.params = params
        self.calls = []

    def load_file_common_arguments(self, params, path=None):
        return {"path": path, "mode": params.get("mode")}

    def set_fs_attributes_if_different(self, file_args, changed, diff=None):
        self.calls.append((file_args, changed, diff))
        return changed or file_args["mode"] is not None


def test_apply_file_attributes_passes_path_and_changed(tmp_path):
    module = FakeModule({"mode": "0600"})
    assert apply_file_attributes(module, str(tmp_path / "a"), False) is True
    assert module.calls == [({"path": str(tmp_path / "a"), "mode": "0600"}, False, None)]


def test_early_writeback_keeps_content_and_memoryviews(tmp_path, monkeypatch):
    # a tiny window makes every few writes start writeback and drop older pages
    monkeypatch.setattr("ansible_collections.dockhand.registry.plugins.module_utils.atomic_file.WRITEBACK_WINDOW", 4096)
    target = tmp_path / "big.tar"
    pieces = [os.urandom(3000 + n) for n in range(40)]
    with AtomicFile(str(target)) as out:
        for piece in pieces:
            out.write(memoryview(bytearray(piece)))
        out.commit()
    assert target.read_bytes() == b"".join(pieces)
    assert leftovers(tmp_path) == []
