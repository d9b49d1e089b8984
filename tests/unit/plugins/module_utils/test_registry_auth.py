# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.registry_auth import (
    Credentials,
    RegistryAuth,
    credentials_from_docker_config,
    parse_www_authenticate,
    select_challenge,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryAuthError, RegistryError
from ansible_collections.dockhand.registry.plugins.module_utils.registry_transport import parse_link_header


# ---------------------------------------------------------------- WWW-Authenticate

def test_bearer_challenge_with_commas_inside_quotes():
    header = ('Bearer realm="https://auth.example.com/token",service="registry.example.com",'
              'scope="repository:team/app:pull,push"')
    [challenge] = parse_www_authenticate(header)
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:team/app:pull,push",
    }
    assert challenge.scopes == ["repository:team/app:pull,push"]


def test_insufficient_scope_and_several_scopes():
    header = ('Bearer realm="http://127.0.0.1:1/token", error="insufficient_scope",'
              ' scope="repository:a:pull repository:b:pull,push"')
    challenge = parse_www_authenticate(header)[0]
    assert challenge.params["error"] == "insufficient_scope"
    assert challenge.scopes == ["repository:a:pull", "repository:b:pull,push"]


def test_basic_challenge_and_case_insensitive_names():
    [challenge] = parse_www_authenticate('BASIC Realm="Registry Realm"')
    assert challenge.scheme == "basic"
    assert challenge.params == {"realm": "Registry Realm"}


def test_several_challenges_in_one_header_and_selection():
    challenges = parse_www_authenticate('Basic realm="x", Bearer realm="https://t/token",service="s"')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[1].params == {"realm": "https://t/token", "service": "s"}
    assert select_challenge(challenges).scheme == "bearer"
    assert select_challenge(parse_www_authenticate('Basic realm="x"')).scheme == "basic"
    assert select_challenge(parse_www_authenticate('Negotiate abc')) is None


def test_escaped_quote_and_unquoted_token_values():
    [challenge] = parse_www_authenticate(r'Bearer realm="a\"b",service=plain')
    assert challenge.params == {"realm": 'a"b', "service": "plain"}


@pytest.mark.parametrize("value", [None, "", "   "])
def test_empty_challenge(value):
    assert parse_www_authenticate(value) == []


# ---------------------------------------------------------------------- Link

def test_relative_next_link_of_distribution():
    header = '</v2/_catalog?last=bulk%2Fr0999&n=1000>; rel="next"'
    assert parse_link_header(header) == {"next": "/v2/_catalog?last=bulk%2Fr0999&n=1000"}


def test_several_links_and_unquoted_rel():
    header = ('<https://r.example.com/v2/x/tags/list?n=2&last=b>; rel=next, '
              '<https://r.example.com/v2/x/tags/list?n=2>; type="text/html"; rel="first prev"')
    assert parse_link_header(header) == {
        "next": "https://r.example.com/v2/x/tags/list?n=2&last=b",
        "first": "https://r.example.com/v2/x/tags/list?n=2",
        "prev": "https://r.example.com/v2/x/tags/list?n=2",
    }


@pytest.mark.parametrize("value", [None, "", "garbage", "<http://x/>"])
def test_link_without_rel(value):
    assert parse_link_header(value) == {}


# ------------------------------------------------------------- docker config

def write_config(tmp_path, data):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return str(path)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_auths_entry_with_auth_field_and_url_key(tmp_path):
    path = write_config(tmp_path, {"auths": {
        "https://127.0.0.1:5000/v2/": {"auth": b64("alice:s3cr:et")},
        "other.example.com": {"auth": b64("bob:x")},
    }})
    creds = credentials_from_docker_config("127.0.0.1:5000", path, explicit=True)
    assert (creds.username, creds.password) == ("alice", "s3cr:et")
    assert credentials_from_docker_config("127.0.0.1:5001", path, explicit=True) is None


def test_docker_hub_key(tmp_path):
    path = write_config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": b64("hub:pw")}}})
    creds = credentials_from_docker_config("registry-1.docker.io", path, explicit=True)
    assert (creds.username, creds.password) == ("hub", "pw")


def test_identity_token_entry(tmp_path):
    path = write_config(tmp_path, {"auths": {"r.example.com": {"identitytoken": "refresh-me"}}})
    creds = credentials_from_docker_config("r.example.com", path, explicit=True)
    assert creds.identity_token == "refresh-me"
    assert creds.basic_header() is None


def make_helper(tmp_path, monkeypatch, name, script):
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    helper = folder / ("docker-credential-" + name)
    helper.write_text("#!/bin/sh\n" + script)
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(folder) + os.pathsep + os.environ.get("PATH", ""))


def test_cred_helper_is_run_with_server_on_stdin(tmp_path, monkeypatch):
    make_helper(tmp_path, monkeypatch, "fake", (
        'read server\n[ "$1" = get ] || exit 3\n'
        'printf \'{"ServerURL":"%s","Username":"helper-user","Secret":"pw-for-%s"}\' "$server" "$server"\n'))
    path = write_config(tmp_path, {"credHelpers": {"127.0.0.1:5000": "fake"},
                                   "auths": {"127.0.0.1:5000": {"auth": b64("ignored:x")}}})
    creds = credentials_from_docker_config("127.0.0.1:5000", path, explicit=True)
    assert (creds.username, creds.password) == ("helper-user", "pw-for-127.0.0.1:5000")
    assert "docker-credential-fake" in creds.source


def test_creds_store_with_token_user_and_not_found(tmp_path, monkeypatch):
    make_helper(tmp_path, monkeypatch, "store", (
        'read server\n'
        'if [ "$server" = "known.example.com" ]; then\n'
        '  echo \'{"Username":"<token>","Secret":"idtok"}\'\n'
        'else\n  echo "credentials not found in native keychain"; exit 1\nfi\n'))
    path = write_config(tmp_path, {"credsStore": "store"})
    assert credentials_from_docker_config("known.example.com", path, explicit=True).identity_token == "idtok"
    assert credentials_from_docker_config("unknown.example.com", path, explicit=True) is None


def test_missing_helper_fails_only_for_explicit_config(tmp_path):
    path = write_config(tmp_path, {"credsStore": "does-not-exist-anywhere"})
    with pytest.raises(RegistryError, match="docker-credential-does-not-exist-anywhere"):
        credentials_from_docker_config("r.example.com", path, explicit=True)
    assert credentials_from_docker_config("r.example.com", path, explicit=False) is None


def test_missing_or_broken_config(tmp_path):
    with pytest.raises(RegistryError, match="does not exist"):
        credentials_from_docker_config("r", str(tmp_path / "nope.json"), explicit=True)
    assert credentials_from_docker_config("r", str(tmp_path / "nope.json"), explicit=False) is None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(RegistryError, match="cannot read docker_config"):
        credentials_from_docker_config("r", str(broken), explicit=True)


# -------------------------------------------------------- bearer token cache

class FakeRaw:
    """The urllib3 side of a streamed answer: its body in one read."""

    def __init__(self, body):
        self._body = body

    def read1(self, _size, decode_content=False):
        body, self._body = self._body, b""
        return body

    def release_conn(self):
        pass


class FakeResponse:
    def __init__(self, status, data=None, headers=None):
        self.status_code = status
        self._data = data
        self.headers = headers or {}
        self.text = json.dumps(data) if data is not None else ""
        self.raw = FakeRaw(self.text.encode())

    def json(self):
        return self._data


class FakeTokenSession:
    """Records token requests; answers 401 for the wrong password."""

    def __init__(self, lifetime=300):
        self.calls = []
        self.lifetime = lifetime

    def get(self, url, params=None, headers=None, timeout=None, allow_redirects=None, stream=False):
        self.calls.append((url, list(params or []), dict(headers or {})))
        if headers.get("Authorization") != "Basic " + b64("u:right"):
            return FakeResponse(401, {"details": "bad"})
        scopes = sorted(v for k, v in params if k == "scope")
        return FakeResponse(200, {"token": "tok-%d-%s" % (len(self.calls), ",".join(scopes)),
                                  "expires_in": self.lifetime})


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def bearer_auth(password="right", lifetime=300):
    session = FakeTokenSession(lifetime)
    clock = Clock()
    auth = RegistryAuth("r.example.com", Credentials("u", password), lambda: session, 10, clock=clock)
    auth.learn(FakeResponse(401, headers={
        "WWW-Authenticate": 'Bearer realm="https://auth.example.com/token",service="svc"'}))
    return auth, session, clock


def test_token_per_scope_is_cached_until_expiry():
    auth, session, clock = bearer_auth(lifetime=60)
    first = auth.headers(["repository:a:pull"])
    assert first == {"Authorization": "Bearer tok-1-repository:a:pull"}
    url, params, headers = session.calls[0]
    assert url == "https://auth.example.com/token"
    assert ("service", "svc") in params and ("scope", "repository:a:pull") in params
    assert auth.headers(["repository:a:pull"]) == first
    assert auth.headers(["repository:a:pull,push"]) == {"Authorization": "Bearer tok-2-repository:a:pull,push"}
    clock.now += 56  # inside the renewal margin of a 60 s token
    assert auth.headers(["repository:a:pull"]) == {"Authorization": "Bearer tok-3-repository:a:pull"}
    assert len(session.calls) == 3


def test_insufficient_scope_asks_again_with_the_union():
    auth, session, _clock = bearer_auth()
    sent = auth.headers(["repository:a:pull"])
    denied = FakeResponse(401, headers={"WWW-Authenticate": (
        'Bearer realm="https://auth.example.com/token",service="svc",'
        'scope="repository:b:pull",error="insufficient_scope"')})
    scopes = auth.handle_unauthorized(denied, ["repository:a:pull"], sent)
    assert scopes == ["repository:a:pull", "repository:b:pull"]
    assert auth.headers(scopes)["Authorization"].endswith("repository:a:pull,repository:b:pull")


def test_wrong_password_at_token_service():
    auth, _session, _clock = bearer_auth(password="wrong")
    with pytest.raises(RegistryAuthError, match="rejected the credentials of user 'u'"):
        auth.headers(["registry:catalog:*"])


def test_basic_challenge_handling():
    auth = RegistryAuth("r", Credentials("u", "p"), lambda: None, 10)
    challenge = FakeResponse(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    assert auth.handle_unauthorized(challenge, None, {}) == []
    assert auth.headers(None) == {"Authorization": "Basic " + b64("u:p")}
    with pytest.raises(RegistryAuthError, match="wrong username or password"):
        auth.handle_unauthorized(challenge, None, auth.headers(None))
    anonymous = RegistryAuth("r", None, lambda: None, 10)
    with pytest.raises(RegistryAuthError, match="requires authentication"):
        anonymous.handle_unauthorized(challenge, None, {})


class FakeRefreshSession:
    def __init__(self):
        self.posts = []

    def post(self, url, data=None, timeout=None, allow_redirects=None, stream=False):
        self.posts.append((url, dict(data)))
        return FakeResponse(200, {"access_token": "from-refresh", "expires_in": 120})


def test_identity_token_uses_the_oauth2_refresh_grant():
    session = FakeRefreshSession()
    auth = RegistryAuth("r", Credentials(identity_token="refresh-me"), lambda: session, 10)
    auth.learn(FakeResponse(401, headers={"WWW-Authenticate": 'Bearer realm="https://a/token",service="svc"'}))
    assert auth.headers(["repository:x:pull", "repository:y:pull"]) == {"Authorization": "Bearer from-refresh"}
    [(url, form)] = session.posts
    assert url == "https://a/token"
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "refresh-me"
    assert form["service"] == "svc" and form["scope"] == "repository:x:pull repository:y:pull"
