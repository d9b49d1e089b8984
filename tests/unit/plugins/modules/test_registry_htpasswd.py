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


def test_parse_splits_lines_only_at_newline_like_the_registry():
    # Python's splitlines() would also split at these; the registry's reader does not.
    text = "a\x85b:h1\nc\u2028d:h2\r\n"
    assert parse_htpasswd(text) == [("a\x85b", "h1"), ("c\u2028d", "h2")]


@pytest.mark.parametrize("bad, reason", [
    ("", "empty"),
    ("a:b", "':'"),
    ("a\nb", "line break"),
    ("a\rb", "line break"),
    ("#admin", "comment"),
    (" bob", "whitespace"),
    ("\tbob", "whitespace"),
])
def test_validate_rejects_names_the_format_cannot_hold(bad, reason):
    with pytest.raises(HtpasswdError, match=reason):
        validate_users(users((bad, "pw")))


@pytest.mark.parametrize("name", ["a b", "bob ", "o'neil", "\u00e9l\u00e8ve", "user@example.com"])
def test_names_the_registry_reads_back_are_accepted_and_round_trip(name):
    validate_users(users((name, "pw")))
    entries = [(name, make_hash("pw", 4))]
    assert parse_htpasswd(render_htpasswd(entries)) == entries


@pytest.mark.parametrize("password", ["a" * 73, "\u20ac" * 25, "x" * 100])
def test_validate_rejects_passwords_over_72_bytes_without_repeating_them(password):
    with pytest.raises(HtpasswdError) as info:
        validate_users(users(("alice", password)))
    message = str(info.value)
    assert "72" in message and "alice" in message and password not in message


def test_a_72_byte_password_is_hashed_and_verifies():
    password = "\u20ac" * 24  # 72 bytes in UTF-8
    validate_users(users(("alice", password)))
    assert hash_matches(password, make_hash(password, 4))


@pytest.mark.parametrize("password", ["two\nlines", "cr\rhere"])
def test_validate_rejects_line_breaks_in_passwords_without_repeating_them(password):
    with pytest.raises(HtpasswdError) as info:
        validate_users(users(("alice", password)))
    assert "line break" in str(info.value) and password not in str(info.value)


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


def test_a_rewrite_keeps_the_files_selinux_context(monkeypatch, tmp_path):
    path = str(tmp_path / "htpasswd")
    ok, result = run_module(monkeypatch, dict(path=path, rounds=4, users=users(("alice", "pw"))))
    assert ok and result["changed"]
    relabelled = ["system_u", "object_r", "container_file_t", "s0"]
    restored = []
    monkeypatch.setattr(registry_htpasswd.AnsibleModule, "selinux_enabled", lambda self: True)
    monkeypatch.setattr(registry_htpasswd.AnsibleModule, "selinux_context", lambda self, where: list(relabelled))
    monkeypatch.setattr(registry_htpasswd.AnsibleModule, "set_context_if_different",
                        lambda self, where, context, changed, diff=None: restored.append((where, context)) or changed)
    ok, result = run_module(monkeypatch, dict(path=path, rounds=4, users=users(("alice", "changed"))))
    assert ok and result["changed"] and result["updated"] == ["alice"]
    assert restored[0] == (path, relabelled)


def test_module_check_mode_writes_nothing(monkeypatch, tmp_path):
    path = str(tmp_path / "htpasswd")
    ok, result = run_module(monkeypatch, dict(path=path, rounds=4, users=users(("a", "b")), _ansible_check_mode=True))
    assert ok and result["changed"]
    assert not os.path.exists(path)


def test_module_check_mode_works_before_the_directory_exists(monkeypatch, tmp_path):
    # The role's bcrypt check runs this way before it creates the config folder.
    path = str(tmp_path / "missing" / "htpasswd")
    ok, result = run_module(monkeypatch, dict(path=path, users=[], exclusive=False, _ansible_check_mode=True))
    assert ok
    assert not os.path.exists(str(tmp_path / "missing"))


def test_module_fails_in_one_line_when_the_directory_is_missing(monkeypatch, tmp_path):
    path = str(tmp_path / "missing" / "htpasswd")
    ok, result = run_module(monkeypatch, dict(path=path, rounds=4, users=users(("a", "b"))))
    assert not ok and "does not exist" in result["msg"]


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


@pytest.mark.parametrize("attributes, words", [
    (dict(mode="0999"), "octal or symbolic"),
    (dict(mode="u=rwz"), "octal or symbolic"),
    (dict(mode="07777777"), "only permission bits"),
    (dict(owner="no-such-user-dockhand"), "failed to look up user no-such-user-dockhand"),
    (dict(group="no-such-group-dockhand"), "failed to look up group no-such-group-dockhand"),
])
def test_module_rejects_bad_file_attributes_before_rewriting(monkeypatch, tmp_path, attributes, words):
    path = tmp_path / "htpasswd"
    before = "old:%s\n" % make_hash("pw", 4)
    path.write_text(before)
    # The users differ, so without the early check the file would be rewritten first.
    ok, result = run_module(monkeypatch, dict(path=str(path), rounds=4, users=users(("alice", "pw")), **attributes))
    assert not ok
    assert words in result["msg"] and "\n" not in result["msg"]
    assert path.read_text() == before
    assert sorted(os.listdir(str(tmp_path))) == ["htpasswd"]


def test_module_accepts_symbolic_mode(monkeypatch, tmp_path):
    path = str(tmp_path / "htpasswd")
    ok, result = run_module(monkeypatch, dict(path=path, rounds=4, users=users(("a", "b")), mode="u=rw,g=r,o="))
    assert ok and result["changed"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_module_says_in_one_line_that_a_password_is_too_long(monkeypatch, tmp_path):
    path = tmp_path / "htpasswd"
    password = "p" * 100
    ok, result = run_module(monkeypatch, dict(path=str(path), rounds=4, users=users(("alice", password))))
    assert not ok
    assert "72" in result["msg"] and "\n" not in result["msg"] and password not in repr(result)
    assert not path.exists()


def test_module_without_bcrypt_says_so_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(registry_htpasswd, "bcrypt", None)
    ok, result = run_module(monkeypatch, dict(path=str(tmp_path / "h"), users=users(("a", "pw"))))
    assert not ok
    assert "bcrypt" in result["msg"] and "\n" not in result["msg"]
    assert not (tmp_path / "h").exists()


def test_module_result_and_diff_hold_no_password_or_hash(monkeypatch, tmp_path):
    path = str(tmp_path / "htpasswd")
    args = dict(path=path, rounds=4, users=users(("alice", "s3cret-pw")), _ansible_diff=True)
    ok, result = run_module(monkeypatch, args)
    assert ok and result["diff"]["after"] == "alice\n"
    text = repr(result)
    assert "s3cret-pw" not in text and "$2y$" not in text
