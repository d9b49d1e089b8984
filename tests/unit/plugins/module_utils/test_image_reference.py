# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cases follow the distribution project's reference grammar and its test table."""

from __future__ import annotations

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import (
    ImageReference,
    ImageReferenceError,
    is_image_id,
    normalize_image_name,
    parse_reference,
    split_domain,
    validate_digest,
    validate_repository,
    validate_tag,
)

SHA256 = "sha256:" + "f" * 64
SHA512 = "sha512:" + "f" * 128


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("test_com", None, "test_com", None, None),
    ("test.com:tag", None, "test.com", "tag", None),
    ("test.com:5000", None, "test.com", "5000", None),
    ("test.com/repo:tag", "test.com", "repo", "tag", None),
    ("test:5000/repo", "test:5000", "repo", None, None),
    ("test:5000/repo:tag", "test:5000", "repo", "tag", None),
    ("test:5000/repo@" + SHA256, "test:5000", "repo", None, SHA256),
    ("test:5000/repo:tag@" + SHA256, "test:5000", "repo", "tag", SHA256),
    ("lowercase:Uppercase", None, "lowercase", "Uppercase", None),
    ("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", None, None),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", None),
    ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app",
     "test.example.com", None),
    ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", None),
    ("xn--7o8h.com/myimage:xn--7o8h.com@" + SHA512, "xn--7o8h.com", "myimage", "xn--7o8h.com", SHA512),
    ("foo_bar.com:8080", None, "foo_bar.com", "8080", None),
    ("foo/foo_bar.com:8080", None, "foo/foo_bar.com", "8080", None),
    ("192.168.1.1/repo", "192.168.1.1", "repo", None, None),
    ("192.168.1.1:5000/repo", "192.168.1.1:5000", "repo", None, None),
    ("[2001:db8::1]/repo", "[2001:db8::1]", "repo", None, None),
    ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag", None),
    ("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", None, None),
    ("[::1]:5000/repo", "[::1]:5000", "repo", None, None),
    ("localhost/repo", "localhost", "repo", None, None),
    ("localhost:5000/repo:tag", "localhost:5000", "repo", "tag", None),
    ("127.0.0.1:5000/team/app:v1.2_3-rc", "127.0.0.1:5000", "team/app", "v1.2_3-rc", None),
    ("Example.COM/repo", "Example.COM", "repo", None, None),
    ("foo__bar", None, "foo__bar", None, None),
    ("foo--bar---baz", None, "foo--bar---baz", None, None),
    ("ab_c-d/e.f", None, "ab_c-d/e.f", None, None),
    ("repo:" + "t" * 128, None, "repo", "t" * 128, None),
    ("repo:_tag", None, "repo", "_tag", None),
])
def test_valid_references(text, registry, repository, tag, digest):
    reference = parse_reference(text)
    assert reference == ImageReference(registry=registry, repository=repository, tag=tag, digest=digest)


@pytest.mark.parametrize("text", [
    "",
    "   ",
    ":justtag",
    "@" + SHA256,
    "repo@sha256:" + "f" * 63,
    "repo@sha256:" + "F" * 64,
    "repo@sha256",
    "repo@:" + "f" * 64,
    "Uppercase:tag",
    "test:5000/Uppercase/lowercase:tag",
    "aa/asdf$$^/aa",
    "a" * 256,
    "[fe80::1%eth0]:5000/repo",
    "[2001:db8::1]",
    "repo:-tag",
    "repo:.tag",
    "repo:" + "t" * 129,
    "repo:tag with space",
    "foo___bar",
    "foo..bar",
    "foo._bar",
    "-foo",
    "foo-",
    "foo/",
    "/foo",
    "foo//bar",
    "example.com:/foo",
    "example.com:port/foo",
    "-example.com/foo",
    "example-.com/foo",
    "exa_mple.com/foo",
    "registry/Repo",
])
def test_invalid_references(text):
    with pytest.raises(ImageReferenceError):
        parse_reference(text)


def test_non_string_reference():
    with pytest.raises(ImageReferenceError):
        parse_reference(None)


def test_name_length_limit_counts_the_whole_name():
    parse_reference("a" * 255)
    parse_reference("a" * 255 + ":tag")
    with pytest.raises(ImageReferenceError, match="255"):
        parse_reference("a" * 256)
    with pytest.raises(ImageReferenceError, match="255"):
        parse_reference("example.com/" + "a" * 250)


@pytest.mark.parametrize("text, repository", [
    ("docker.io/ubuntu", "library/ubuntu"),
    ("docker.io/library/ubuntu", "library/ubuntu"),
    ("docker.io/someone/ubuntu", "someone/ubuntu"),
    ("index.docker.io/ubuntu", "library/ubuntu"),
    ("registry-1.docker.io/ubuntu", "library/ubuntu"),
])
def test_docker_hub_library_normalization(text, repository):
    reference = parse_reference(text)
    assert reference.repository == repository


def test_default_registry_applies_library_prefix_only_for_docker_hub():
    assert parse_reference("ubuntu", default_registry="docker.io") == ImageReference(
        registry="docker.io", repository="library/ubuntu")
    assert parse_reference("ubuntu", default_registry="127.0.0.1:5000") == ImageReference(
        registry="127.0.0.1:5000", repository="ubuntu")
    assert parse_reference("example.com/ubuntu", default_registry="docker.io").registry == "example.com"
    assert parse_reference("ubuntu").registry is None


@pytest.mark.parametrize("text, domain, remainder", [
    ("foo/bar", None, "foo/bar"),
    ("foo.com/bar", "foo.com", "bar"),
    ("foo:5000/bar", "foo:5000", "bar"),
    ("localhost/bar", "localhost", "bar"),
    ("Foo/bar", "Foo", "bar"),
    ("[::1]/bar", "[::1]", "bar"),
    ("bar", None, "bar"),
    ("localhost", None, "localhost"),
])
def test_split_domain_like_the_docker_cli(text, domain, remainder):
    assert split_domain(text) == (domain, remainder)


def test_reference_properties():
    reference = parse_reference("127.0.0.1:5000/team/app:1.0@" + SHA256)
    assert reference.name == "127.0.0.1:5000/team/app"
    assert reference.reference == SHA256
    assert str(reference) == "127.0.0.1:5000/team/app:1.0@" + SHA256
    tagged = parse_reference("team/app:1.0")
    assert tagged.name == "team/app"
    assert tagged.reference == "1.0"
    assert str(tagged) == "team/app:1.0"
    assert parse_reference("team/app").reference == "latest"
    assert str(parse_reference("team/app")) == "team/app"


@pytest.mark.parametrize("name", ["a", "a/b", "a-b/c_d/e.f", "a__b", "0", "a" * 255])
def test_validate_repository_accepts(name):
    assert validate_repository(name) == name


@pytest.mark.parametrize("name", ["", "A", "a/", "a b", "a" * 256, "localhost:5000/a", None, "a:b"])
def test_validate_repository_refuses(name):
    with pytest.raises(ImageReferenceError):
        validate_repository(name)


@pytest.mark.parametrize("tag", ["latest", "1.0", "_x", "A-b.C_d", "x" * 128, "0"])
def test_validate_tag_accepts(tag):
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".x", "-x", "x" * 129, "a:b", "a/b", "a b", None, "ü"])
def test_validate_tag_refuses(tag):
    with pytest.raises(ImageReferenceError):
        validate_tag(tag)


@pytest.mark.parametrize("digest", [SHA256, SHA512, "sha256:" + "0123456789abcdef" * 4,
                                    "multihash+base58:" + "a" * 32])
def test_validate_digest_accepts(digest):
    assert validate_digest(digest) == digest


@pytest.mark.parametrize("digest", [
    "sha256:" + "f" * 63,
    "sha256:" + "f" * 65,
    "sha256:" + "F" * 64,
    "sha256",
    ":" + "f" * 64,
    "1sha:" + "f" * 64,
    "sha256:" + "g" * 64,
    "sha384:" + "f" * 31,
    None,
])
def test_validate_digest_refuses(digest):
    with pytest.raises(ImageReferenceError):
        validate_digest(digest)


@pytest.mark.parametrize("text, expected", [
    ("sha256:" + "a" * 64, True),
    ("a" * 64, True),
    ("abcdef012345", True),
    ("abcdef01234", False),
    ("ABCDEF012345", False),
    ("myimage", False),
    ("sha256:xyz", False),
    (None, False),
])
def test_is_image_id(text, expected):
    assert is_image_id(text) is expected


@pytest.mark.parametrize("text, expected", [
    ("ubuntu", "ubuntu:latest"),
    ("ubuntu:20.04", "ubuntu:20.04"),
    ("library/ubuntu:20.04", "ubuntu:20.04"),
    ("team/app", "team/app:latest"),
    ("127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app:1"),
    ("team/app@" + SHA256, "team/app@" + SHA256),
    ("team/app:1.0@" + SHA256, "team/app@" + SHA256),
    ("a" * 64, "sha256:" + "a" * 64),
    ("sha256:" + "a" * 64, "sha256:" + "a" * 64),
    ("abcdef012345", "abcdef012345"),
])
def test_normalize_image_name(text, expected):
    assert normalize_image_name(text) == expected


@pytest.mark.parametrize("text", ["docker.io/ubuntu", "docker.io/library/ubuntu:latest"])
def test_normalize_image_name_uses_the_engines_familiar_docker_hub_spelling(text):
    # The engine lists Docker Hub library images as "ubuntu:latest" in RepoTags.
    assert normalize_image_name(text) == "ubuntu:latest"


@pytest.mark.parametrize("text", ["Bad", "bad:-tag", "", "a//b"])
def test_normalize_image_name_refuses(text):
    with pytest.raises(ImageReferenceError):
        normalize_image_name(text)
