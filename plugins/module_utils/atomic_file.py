# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replace a file atomically, and remember its sha256 cheaply.

``AtomicFile`` writes to a temporary file in the target's directory (same
file system, so the final ``rename`` is atomic), fsyncs it and renames it over
the target only on ``commit()``. Leaving the ``with`` block any other way
(exception, KeyboardInterrupt, SIGTERM) removes the temporary file, so the
previous content of the target is untouched and nothing is left behind.

A run killed with SIGKILL cannot clean up, so temporary files are findable:
they are named ``.<target name>.dockhand-tmp-<random>.tmp``, and their writer
holds an exclusive ``flock`` on them as long as it lives. The kernel drops
that lock when the process dies, so ``remove_stale_temp_files`` removes
exactly the files whose writer is gone, and never a live run's file.
"""

from __future__ import annotations

import errno
import fcntl
import grp
import hashlib
import json
import os
import pwd
import signal
import stat
import tempfile
import threading

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError

DIGEST_XATTR = "user.dockhand.registry.sha256"
# Reads of local files (hashing, archive members): big enough that per-read overhead is negligible.
READ_CHUNK_SIZE = 1024 * 1024
# Written data is handed to the kernel for writeback in windows of this size.
WRITEBACK_WINDOW = 32 * 1024 * 1024
TEMP_MARKER = ".dockhand-tmp-"
TEMP_SUFFIX = ".tmp"
# A cleaner may remove a new temporary file between its creation and its lock
# (see _create_locked_temp); that many fresh attempts are plenty.
TEMP_CREATE_ATTEMPTS = 5
# Checking a symbolic mode needs a file's mode to start from; whether it parses does not depend on it,
# so the check works before the file (or even its directory, in check mode) exists.
_REFERENCE_STAT = os.stat_result((stat.S_IFREG | 0o600, 0, 0, 1, 0, 0, 0, 0, 0, 0))


class AtomicFileError(DockhandError):
    """The file cannot be written or replaced; the message is one line."""


class WriteInterrupted(BaseException):
    """SIGTERM arrived while a file was being written.

    Not a DockhandError, and a BaseException like KeyboardInterrupt: it is raised from the
    signal handler at any point of the write, also inside code that catches Exception to
    clean up or to retry (the engine's stream reader, for one). It must pass them all: on
    its way AtomicFile.__exit__ removes the temporary file, and the module's top level says
    that the old file is unchanged.
    """


def interrupted_write(exc, path):
    """The AtomicFileError a module fails with once a WriteInterrupted reached its top level."""
    return AtomicFileError("%s while writing %s; the file that was there is unchanged and the partial"
                           " file was removed" % (exc, path))


def _raise_interrupted(signum, frame):
    raise WriteInterrupted("interrupted by signal %d" % signum)


def temp_prefix(path):
    """The name every temporary file for ``path`` starts with (in the same directory)."""
    return "." + os.path.basename(path) + TEMP_MARKER


def _try_lock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def remove_stale_temp_files(path):
    """Remove the temporary files for ``path`` whose writer is gone; returns their paths.

    A file is stale when nobody holds its lock. It is removed while this
    process holds the lock, so a writer that locks it afterwards sees it gone
    (see _create_locked_temp). Files that cannot be locked, or on a file
    system without locks, are left alone.
    """
    directory = os.path.dirname(os.path.abspath(path))
    prefix = temp_prefix(path)
    removed = []
    try:
        names = [name for name in os.listdir(directory)
                 if name.startswith(prefix) and name.endswith(TEMP_SUFFIX)]
    except OSError:
        return removed
    for name in sorted(names):
        candidate = os.path.join(directory, name)
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # gone already, a symlink, or not ours to open
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode) and _try_lock(fd):
                os.unlink(candidate)
                removed.append(candidate)
        except OSError:
            pass  # no locks here, or it vanished: never guess
        finally:
            os.close(fd)
    return removed


def validate_file_attributes(params):
    """Raise AtomicFileError for a ``mode``, ``owner`` or ``group`` that Ansible would refuse.

    Runs before anything is written, so bad input changes nothing; the
    messages are the ones Ansible gives when it applies the attributes.
    """
    mode = params.get("mode")
    if mode is not None:
        if isinstance(mode, int):
            value = mode
        else:
            try:
                value = int(str(mode), 8)
            except ValueError:
                value = None
                try:
                    # The parser set_mode_if_different uses, so what passes here passes there.
                    AnsibleModule._symbolic_mode_to_octal(_REFERENCE_STAT, str(mode))
                except ValueError as exc:
                    raise AtomicFileError("mode must be in octal or symbolic form: %r is neither (%s)" % (mode, exc))
        if value is not None and value != stat.S_IMODE(value):
            raise AtomicFileError("invalid mode %r: only permission bits are allowed" % (mode,))
    for name, look_up, failure in (
        (params.get("owner"), pwd.getpwnam, "chown failed: failed to look up user %s"),
        (params.get("group"), grp.getgrnam, "chgrp failed: failed to look up group %s"),
    ):
        if name is not None and not str(name).isdigit():  # numeric IDs need no entry
            try:
                look_up(str(name))
            except KeyError:
                raise AtomicFileError(failure % name)


def _describe(exc):
    return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)


def check_parent_directory(path):
    """Raise AtomicFileError unless the directory that will hold ``path`` exists."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise AtomicFileError("directory %s does not exist" % directory)
    if os.path.isdir(path):
        raise AtomicFileError("%s is a directory" % path)
    return directory


class AtomicFile:
    """``with AtomicFile(path) as out: out.write(data); out.commit()``.

    The new file gets the mode (and, as root, the owner) of the file it replaces. Where
    there was none, it gets ``new_file_mode``, by default what the umask leaves of 0666;
    a file holding secrets passes 0o600, so that it is never readable by others, not
    even before the module applies the mode the user asked for.
    """

    def __init__(self, path, new_file_mode=None):
        self.path = os.path.abspath(path)
        self.new_file_mode = new_file_mode
        self.directory = check_parent_directory(self.path)
        self.temp_path = None
        self.committed = False
        self._file = None
        self._lock_fd = None
        self._previous_handler = None
        self._written = 0
        self._writeback_started = 0
        self._writeback_done = 0

    def _create_locked_temp(self):
        """A new temporary file, locked; retried when a cleaner removed it before the lock."""
        for _attempt in range(TEMP_CREATE_ATTEMPTS):
            fd, temp_path = tempfile.mkstemp(
                prefix=temp_prefix(self.path), suffix=TEMP_SUFFIX, dir=self.directory)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.stat(temp_path).st_ino == os.fstat(fd).st_ino:
                    return fd, temp_path
            except FileNotFoundError:
                pass  # removed as stale between mkstemp and flock: make another
            except OSError:
                return fd, temp_path  # no locks on this file system: nothing cleans it up either
            os.close(fd)
        raise OSError(errno.EAGAIN, "temporary files keep disappearing")

    def __enter__(self):
        try:
            fd, self.temp_path = self._create_locked_temp()
        except OSError as exc:
            raise AtomicFileError("cannot create a temporary file in %s: %s"
                                  % (self.directory, _describe(exc)))
        # The lock lives on in a duplicate, so it is held until __exit__, also
        # after commit() closed the file and while it is renamed.
        self._lock_fd = os.dup(fd)
        self._file = os.fdopen(fd, "wb")
        if threading.current_thread() is threading.main_thread():
            # Ansible's task timeout and users stop modules with SIGTERM; turn it
            # into an exception so that __exit__ removes the temporary file.
            self._previous_handler = signal.signal(signal.SIGTERM, _raise_interrupted)
        return self

    def write(self, data):
        try:
            self._file.write(data)
            self._written += len(data)
            if self._written - self._writeback_started >= WRITEBACK_WINDOW:
                self._start_writeback()
        except OSError as exc:
            raise AtomicFileError("cannot write %s: %s" % (self.path, _describe(exc)))

    def _start_writeback(self):
        # Left alone, the kernel keeps the whole archive dirty and the final fsync
        # writes all of it while the module waits. POSIX_FADV_DONTNEED starts the
        # writeback of the newest window without waiting for it, and drops the
        # windows written back since, so fsync finds little left to do and the
        # archive does not crowd the page cache.
        if not hasattr(os, "posix_fadvise"):
            return
        self._file.flush()
        os.posix_fadvise(self._file.fileno(), self._writeback_done,
                         self._written - self._writeback_done, os.POSIX_FADV_DONTNEED)
        self._writeback_done = self._writeback_started
        self._writeback_started = self._written

    def commit(self):
        """Make the written data durable and move it to ``path``."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._copy_mode_of_target()
            os.rename(self.temp_path, self.path)
        except OSError as exc:
            raise AtomicFileError("cannot write %s: %s" % (self.path, _describe(exc)))
        self.committed = True
        self._fsync_directory()

    def _copy_mode_of_target(self):
        # mkstemp makes the file 0600; give it what the old file had, or what a
        # newly created file would get under the current umask.
        try:
            current = os.stat(self.path)
        except OSError:
            if self.new_file_mode is not None:
                os.chmod(self.temp_path, self.new_file_mode)
                return
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.temp_path, 0o666 & ~umask)
            return
        os.chmod(self.temp_path, stat.S_IMODE(current.st_mode))
        if os.geteuid() == 0:
            try:
                os.chown(self.temp_path, current.st_uid, current.st_gid)
            except OSError:
                pass

    def _fsync_directory(self):
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # some file systems refuse fsync on directories; the rename is done
        finally:
            os.close(fd)

    def __exit__(self, exc_type, exc_value, traceback):
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None
        if not self.committed:
            try:
                self._file.close()
            except OSError:
                pass
            try:
                os.unlink(self.temp_path)
            except OSError:
                pass
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        return False


def apply_file_attributes(module, path, changed, diff=None):
    """Apply mode/owner/group/... from the module's common file arguments."""
    file_args = module.load_file_common_arguments(module.params, path=path)
    return module.set_fs_attributes_if_different(file_args, changed, diff=diff)


def _stat_key(st):
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def remember_sha256(path, sha256):
    """Store ``sha256`` in an extended attribute bound to the file's size, mtime and inode."""
    if not hasattr(os, "setxattr"):
        return False
    try:
        value = dict(_stat_key(os.stat(path)), sha256=sha256)
        os.setxattr(path, DIGEST_XATTR, json.dumps(value, sort_keys=True).encode("ascii"))
    except OSError:
        return False  # file system without user xattrs: the digest is recomputed when needed
    return True


def cached_sha256(path):
    """The remembered sha256 of ``path`` if the file was not modified since, else None."""
    if not hasattr(os, "getxattr"):
        return None
    try:
        value = json.loads(os.getxattr(path, DIGEST_XATTR).decode("ascii"))
        st = os.stat(path)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict) or any(value.get(k) != v for k, v in _stat_key(st).items()):
        return None
    sha256 = value.get("sha256")
    return sha256 if isinstance(sha256, str) and len(sha256) == 64 else None


def file_sha256(path):
    """sha256 of the file at ``path``: remembered if still valid, else read as a stream."""
    cached = cached_sha256(path)
    if cached:
        return cached
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fileobj:
            for chunk in iter(lambda: fileobj.read(READ_CHUNK_SIZE), b""):
                digest.update(chunk)
    except OSError as exc:
        raise AtomicFileError("cannot read %s: %s" % (path, _describe(exc)))
    return digest.hexdigest()
