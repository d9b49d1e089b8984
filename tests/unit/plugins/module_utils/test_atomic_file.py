# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import fcntl
import grp
import hashlib
import os
import pwd
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils import atomic_file as atomic_file_module
from ansible_collections.dockhand.registry.plugins.module_utils.atomic_file import (
    AtomicFile,
    AtomicFileError,
    WriteInterrupted,
    apply_file_attributes,
    cached_sha256,
    file_sha256,
    remember_sha256,
    remove_stale_temp_files,
    temp_prefix,
    validate_file_attributes,
)

# A real writer in its own process: it writes part of the archive, says so, and waits.
WRITER = textwrap.dedent("""
    import sys, time
    from ansible_collections.dockhand.registry.plugins.module_utils.atomic_file import (
        AtomicFile, WriteInterrupted)
    try:
        with AtomicFile(sys.argv[1]) as out:
            out.write(b"partial archive")
            out._file.flush()
            print(out.temp_path, flush=True)
            time.sleep(120)
    except WriteInterrupted as exc:
        print("stopped: %s" % exc, flush=True)
        sys.exit(3)
""")


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


def test_a_new_file_for_secrets_is_never_readable_by_others(tmp_path):
    target = tmp_path / "htpasswd"
    old_umask = os.umask(0o022)
    try:
        with AtomicFile(str(target), new_file_mode=0o600) as out:
            out.write(b"user:hash\n")
            out.commit()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    # A file that exists keeps its mode; the module applies the one asked for afterwards.
    os.chmod(target, 0o640)
    with AtomicFile(str(target), new_file_mode=0o600) as out:
        out.write(b"user:other\n")
        out.commit()
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


def start_writer(target):
    """A process writing ``target`` through AtomicFile; returns (process, its temporary file)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    temp_path = process.stdout.readline().strip()
    assert temp_path, process.stderr.read()
    return process, temp_path


def test_temp_file_is_named_after_the_target_and_locked(tmp_path):
    target = tmp_path / "archive.tar"
    with AtomicFile(str(target)) as out:
        name = os.path.basename(out.temp_path)
        assert name.startswith(".archive.tar.dockhand-tmp-") and name.endswith(".tmp")
        assert name.startswith(temp_prefix(str(target)))
        fd = os.open(out.temp_path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        out.write(b"x")
        out.commit()
    assert leftovers(tmp_path) == []


def test_a_live_writers_file_is_kept_and_a_killed_ones_removed(tmp_path):
    target = tmp_path / "archive.tar"
    target.write_bytes(b"previous archive")
    process, temp_path = start_writer(target)
    try:
        assert os.path.exists(temp_path)
        assert remove_stale_temp_files(str(target)) == [], "a live run's file must stay"
        assert os.path.exists(temp_path)
        process.kill()  # SIGKILL: the writer cannot clean up
        process.wait(timeout=30)
        assert os.path.exists(temp_path), "a killed writer leaves its file"
        assert remove_stale_temp_files(str(target)) == [temp_path]
        assert not os.path.exists(temp_path)
        assert target.read_bytes() == b"previous archive"
        assert leftovers(tmp_path) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()


def test_sigterm_in_another_process_cleans_up_and_says_one_line(tmp_path):
    target = tmp_path / "archive.tar"
    target.write_bytes(b"previous archive")
    process, temp_path = start_writer(target)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 3, stderr
    assert stdout == "stopped: interrupted by signal %d\n" % signal.SIGTERM
    assert not os.path.exists(temp_path)
    assert target.read_bytes() == b"previous archive"
    assert leftovers(tmp_path) == []


def test_stale_cleanup_leaves_other_files_alone(tmp_path):
    target = tmp_path / "archive.tar"
    prefix = temp_prefix(str(target))
    other_target = tmp_path / (prefix + "x.tmp.real")  # does not end in .tmp
    other_target.write_bytes(b"keep")
    other_archive = tmp_path / ".other.tar.dockhand-tmp-abc.tmp"
    other_archive.write_bytes(b"another archive's file")
    old_style = tmp_path / ".archive.tar.k2j4h1x8.tmp"  # older releases' random names
    old_style.write_bytes(b"cannot tell whether its writer lives")
    link = tmp_path / (prefix + "link.tmp")
    link.symlink_to(other_archive)
    stale = tmp_path / (prefix + "dead.tmp")
    stale.write_bytes(b"left by a killed run")
    assert remove_stale_temp_files(str(target)) == [str(stale)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (other_target, other_archive, old_style, link))


def test_a_temp_file_removed_before_its_lock_is_made_again(tmp_path, monkeypatch):
    # a cleaner that runs between mkstemp and flock removes the brand-new file
    real_mkstemp = tempfile.mkstemp
    calls = []

    def mkstemp_raced(**kwargs):
        fd, path = real_mkstemp(**kwargs)
        calls.append(path)
        if len(calls) == 1:
            assert remove_stale_temp_files(str(tmp_path / "archive.tar")) == [path]
        return fd, path

    monkeypatch.setattr(atomic_file_module.tempfile, "mkstemp", mkstemp_raced)
    target = tmp_path / "archive.tar"
    with AtomicFile(str(target)) as out:
        assert out.temp_path == calls[1]
        out.write(b"complete")
        out.commit()
    assert target.read_bytes() == b"complete"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("params", [
    {}, {"mode": "0644"}, {"mode": "644"}, {"mode": 0o640}, {"mode": "u=rw,g=r,o="},
    {"mode": "a+rX"}, {"mode": "u+x-w"},
    {"mode": "0o644"},  # int(mode, 8), as Ansible reads it
    {"owner": "0", "group": "0"},
    {"owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name},
])
def test_valid_file_attributes(params):
    validate_file_attributes(dict({"mode": None, "owner": None, "group": None}, **params))


@pytest.mark.parametrize("params, message", [
    ({"mode": "rw-r--r--"}, "mode must be in octal or symbolic form"),
    ({"mode": "u=rwz"}, "mode must be in octal or symbolic form"),
    ({"mode": "0999"}, "mode must be in octal or symbolic form"),
    ({"mode": "17777"}, "only permission bits"),
    ({"mode": 0o100644}, "only permission bits"),
    ({"owner": "no-such-user-dockhand"}, "failed to look up user no-such-user-dockhand"),
    ({"group": "no-such-group-dockhand"}, "failed to look up group no-such-group-dockhand"),
])
def test_bad_file_attributes_are_refused_first(params, message):
    with pytest.raises(AtomicFileError, match=message):
        validate_file_attributes(dict({"mode": None, "owner": None, "group": None}, **params))
