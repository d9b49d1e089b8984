# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import stat

import pytest

bcrypt = pytest.importorskip("bcrypt")

from ansible_collections.dockhand.registry.plugins.modules import registry_htpasswd  # noqa: E402
from ansible_collections.dockhand.registry.plugins.modules.registry_htpasswd import (  # noqa: E402
    HtpasswdError,
    hash_matches,
    make_hash,
    parse_htpasswd,
    plan_entries,
    render_htpasswd,
    validate_users,
)
from ansible_collections.dockhand.registry.tests.unit.plugins.modules.module_runner import (  # noqa: E402
    run_module as run_htpasswd,
)


def users(*pairs):
    return [dict(name=name, password=password) for name, password in pairs]


def test_parse_skips_comments_blank_and_malformed_lines():
    text = "# comment\n\nalice:$2y$05$abc\nnocolon\nbob:x:y\n"
    assert parse_htpasswd(text) == [("alice", "$2y$05$abc"), ("bob", "x:y")]


def test_render_round_trips():
    entries = [("a", "h1"), ("b", "h2")]
    assert parse_htpasswd(render_htpasswd(entries)) == entries


def test_make_hash_is_y_variant_and_verifies():
    hashed = make_hash("s3cret", 4)
    assert hashed.startswith("$2y$04$")
    assert hash_matches("s3cret", hashed)
    assert not hash_matches("other", hashed)


def test_non_bcrypt_entries_never_match():
    assert not hash_matches("pw", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=")
    assert not hash_matches("pw", "$apr1$abc$def")
    assert not hash_matches("pw", "$2y$garbage")


def test_plan_keeps_matching_entry_unchanged():
    existing = [("alice", make_hash("pw", 4))]
    entries, added, updated, removed = plan_entries(existing, users(("alice", "pw")), True, 4)
    assert entries == existing
    assert (added, updated, removed) == ([], [], [])


def test_plan_rehashes_changed_password_and_md5_entries():
    existing = [("alice", make_hash("old", 4)), ("bob", "$apr1$x$y")]
    entries, added, updated, removed = plan_entries(existing, users(("alice", "new"), ("bob", "pw")), True, 4)
    assert updated == ["alice", "bob"]
    assert hash_matches("new", dict(entries)["alice"])
    assert hash_matches("pw", dict(entries)["bob"])


def test_plan_exclusive_removes_unlisted_and_duplicates():
    hashed = make_hash("pw", 4)
    existing = [("alice", hashed), ("old", hashed), ("alice", hashed)]
    entries, added, updated, removed = plan_entries(existing, users(("alice", "pw"), ("new", "x")), True, 4)
    assert [name for name, dummy in entries] == ["alice", "new"]
    assert added == ["new"]
    assert removed == ["alice", "old"]


def test_plan_not_exclusive_keeps_unlisted():
    existing = [("old", "whatever")]
    entries, added, updated, removed = plan_entries(existing, users(("new", "x")), False, 4)
    assert [name for name, dummy in entries] == ["old", "new"]
    assert removed == []


@pytest.mark.parametrize("bad", ["", "a:b", "a\nb"])
def test_validate_rejects_bad_names(bad):
    with pytest.raises(HtpasswdError):
        validate_users(users((bad, "pw")))


def test_validate_rejects_duplicates():
    with pytest.raises(HtpasswdError):
        validate_users(users(("a", "1"), ("a", "2")))


def run_module(monkeypatch, args):
    return run_htpasswd(monkeypatch, registry_htpasswd, args)


def test_module_creates_0600_file_then_is_idempotent(monkeypatch, tmp_path):
    path = str(tmp_path / "htpasswd")
    args = dict(path=path, rounds=4, users=users(("alice", "pw")))
    ok, result = run_module(monkeypatch, args)
    assert ok and result["changed"] and result["added"] == ["alice"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    content = open(path).read()
    assert content.startswith("alice:$2y$04$")
    ok, result = run_module(monkeypatch, args)
    assert ok and not result["changed"]
    assert open(path).read() == content


def test_module_check_mode_writes_nothing(monkeypatch, tmp_path):
    path = str(tmp_path / "htpasswd")
    ok, result = run_module(monkeypatch, dict(path=path, rounds=4, users=users(("a", "b")), _ansible_check_mode=True))
    assert ok and result["changed"]
    assert not os.path.exists(path)


def test_module_fixes_mode_only(monkeypatch, tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text("alice:%s\n" % make_hash("pw", 4))
    os.chmod(str(path), 0o644)
    ok, result = run_module(monkeypatch, dict(path=str(path), rounds=4, users=users(("alice", "pw"))))
    assert ok and result["changed"]
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600


def test_module_fails_with_one_line_on_bad_name(monkeypatch, tmp_path):
    ok, result = run_module(monkeypatch, dict(path=str(tmp_path / "h"), users=users(("a:b", "pw"))))
    assert not ok
    assert "\n" not in result["msg"] and "a:b" in result["msg"]


def test_module_result_and_diff_hold_no_password_or_hash(monkeypatch, tmp_path):
    path = str(tmp_path / "htpasswd")
    args = dict(path=path, rounds=4, users=users(("alice", "s3cret-pw")), _ansible_diff=True)
    ok, result = run_module(monkeypatch, args)
    assert ok and result["diff"]["after"] == "alice\n"
    text = repr(result)
    assert "s3cret-pw" not in text and "$2y$" not in text
