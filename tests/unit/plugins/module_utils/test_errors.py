# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One exception base, and the one way a module fails with it."""

from __future__ import annotations

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.archive_index import ArchiveError
from ansible_collections.dockhand.registry.plugins.module_utils.atomic_file import AtomicFileError, WriteInterrupted
from ansible_collections.dockhand.registry.plugins.module_utils.commit_changes import ChangeError
from ansible_collections.dockhand.registry.plugins.module_utils.engine_client import EngineError
from ansible_collections.dockhand.registry.plugins.module_utils.errors import DockhandError, run_or_fail
from ansible_collections.dockhand.registry.plugins.module_utils.http_body import BodyDeadline, BodyTooLarge
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import ImageReferenceError
from ansible_collections.dockhand.registry.plugins.module_utils.oci import AnswerError
from ansible_collections.dockhand.registry.plugins.module_utils.redis_cache import RedisCacheError
from ansible_collections.dockhand.registry.plugins.module_utils.registry_copy import CopyError
from ansible_collections.dockhand.registry.plugins.module_utils.registry_delete import TagDeleteError
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryError
from ansible_collections.dockhand.registry.plugins.module_utils.retention import RetentionError
from ansible_collections.dockhand.registry.plugins.modules.image_archive import ArchiveTaskError
from ansible_collections.dockhand.registry.plugins.modules.registry_htpasswd import HtpasswdError


class Failed(Exception):
    pass


class FakeModule:
    def fail_json(self, **result):
        raise Failed(result)


@pytest.mark.parametrize("family", [
    AnswerError, ArchiveError, ArchiveTaskError, AtomicFileError, BodyDeadline, BodyTooLarge, ChangeError,
    CopyError, EngineError, HtpasswdError, ImageReferenceError, RedisCacheError, RegistryError, RetentionError,
    TagDeleteError,
])
def test_every_family_is_a_dockhand_error(family):
    assert issubclass(family, DockhandError)


def test_write_interrupted_stays_out_of_reach_of_except_exception():
    assert not issubclass(WriteInterrupted, Exception)


def test_image_reference_error_no_longer_shadows_the_builtin():
    assert not issubclass(ImageReferenceError, ReferenceError)


def test_an_expected_failure_is_one_line_with_the_partial_result():
    def work():
        raise TagDeleteError("cannot delete v1:\n  the registry\tsaid no")

    with pytest.raises(Failed) as info:
        run_or_fail(FakeModule(), work, lambda: dict(changed=True, deleted_tags=["v0"]))
    assert info.value.args[0] == dict(msg="cannot delete v1: the registry said no", changed=True,
                                      deleted_tags=["v0"])


def test_a_bug_is_one_line_with_its_traceback():
    with pytest.raises(Failed) as info:
        run_or_fail(FakeModule(), lambda: {}["missing"])
    result = info.value.args[0]
    assert result["msg"] == "unexpected error, please report it: KeyError: 'missing'"
    assert "Traceback" in result["exception"] and "KeyError" in result["exception"]


def test_a_bug_after_deletions_still_reports_them():
    done = dict(changed=False, deleted_tags=[])

    def work():
        done.update(changed=True, deleted_tags=["v0"])
        return {}["missing"]

    with pytest.raises(Failed) as info:
        run_or_fail(FakeModule(), work, lambda: dict(done))
    result = info.value.args[0]
    assert result["changed"] is True and result["deleted_tags"] == ["v0"]
    assert result["msg"] == "unexpected error, please report it: KeyError: 'missing'"
    assert "KeyError" in result["exception"]


def test_success_returns_what_the_work_returned():
    assert run_or_fail(FakeModule(), lambda: dict(changed=False)) == dict(changed=False)
