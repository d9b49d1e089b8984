# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared OCI vocabulary: creation times, digests, Docker Hub's names."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    AnswerError,
    check_descriptor,
    created_ns,
    is_valid_digest,
    normalize_registry_host,
    parse_created,
    sha256_digest,
    sha256_digest_of_chunks,
    url_for_message,
    without_queries,
)


@pytest.mark.parametrize("value, expected", [
    ("2024-05-01T10:20:30Z", datetime(2024, 5, 1, 10, 20, 30, tzinfo=timezone.utc)),
    # nanoseconds, as Go writes them, are cut to microseconds
    ("2024-05-01T10:20:30.123456789Z", datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=timezone.utc)),
    ("2024-05-01T12:20:30+02:00", datetime(2024, 5, 1, 10, 20, 30, tzinfo=timezone.utc)),
    # no zone: UTC
    ("2024-05-01T10:20:30", datetime(2024, 5, 1, 10, 20, 30, tzinfo=timezone.utc)),
    (None, None), ("", None), ("yesterday", None), ("2024-13-01T00:00:00Z", None), (1700000000, None),
])
def test_parse_created(value, expected):
    assert parse_created(value) == expected


@pytest.mark.parametrize("text, expected", [
    ("2026-12-04T18:39:45.305537835Z", 1796409585305537835),
    ("2026-12-04T18:39:45.3055Z", 1796409585305500000),
    ("2026-12-04T18:39:45Z", 1796409585000000000),
    ("2026-12-04T19:39:45.305537835+01:00", 1796409585305537835),
    ("2026-12-04T18:39:45.3055378351234Z", 1796409585305537835),
    ("yesterday", None),
    ("2026-13-04T18:39:45Z", None),
    (None, None),
])
def test_created_ns_keeps_the_nanoseconds_engines_write(text, expected):
    assert created_ns(text) == expected


def test_digests():
    empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_digest(b"") == empty
    assert sha256_digest_of_chunks(iter(())) == empty
    assert sha256_digest_of_chunks([b"ab", b"c"]) == sha256_digest(b"abc")
    assert is_valid_digest(empty)
    for bad in (None, "sha256:abc", "sha256:" + empty[7:].upper(), empty.replace(":", "-"), 42):
        assert not is_valid_digest(bad)


@pytest.mark.parametrize("registry", ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com",
                                      "https://Index.Docker.io/v1/"])
def test_every_docker_hub_name_reaches_its_api_host(registry):
    assert normalize_registry_host(registry) == "registry-1.docker.io"


DIGEST = "sha256:" + "a" * 64


def test_a_manifest_descriptor_may_lack_media_type_and_size_a_referrer_descriptor_may_not():
    assert check_descriptor({"digest": DIGEST}, "its config") == {"digest": DIGEST}
    with pytest.raises(AnswerError, match="^entry 0 has mediaType None, expected a string$"):
        check_descriptor({"digest": DIGEST, "size": 1}, "entry 0", complete=True)
    with pytest.raises(AnswerError, match="^entry 0 has size None, expected a whole number of bytes$"):
        check_descriptor({"digest": DIGEST, "mediaType": "x"}, "entry 0", complete=True)
    with pytest.raises(AnswerError, match="^entry 0 has artifactType 5, expected a string$"):
        check_descriptor({"digest": DIGEST, "mediaType": "x", "size": 1, "artifactType": 5}, "entry 0", complete=True)
    complete = {"digest": DIGEST, "mediaType": "x", "size": 1, "annotations": {"a": "b"}}
    assert check_descriptor(complete, "entry 0", complete=True) is complete


def test_url_for_message_drops_query_and_fragment():
    assert url_for_message("https://bucket.example/x/y?X-Amz-Signature=SECRET&a=b#frag") == "https://bucket.example/x/y"
    assert url_for_message("http://127.0.0.1:5000/v2/") == "http://127.0.0.1:5000/v2/"


def test_without_queries_drops_the_queries_from_an_exception_text():
    text = ("HTTPSConnectionPool(host='bucket.example', port=443): Max retries exceeded with url:"
            " /x?sv=2022&sig=SECRET (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection>:"
            " Failed to establish a new connection: [Errno 111] Connection refused'))")
    cleaned = without_queries(text)
    assert "SECRET" not in cleaned and "url: /x (Caused by" in cleaned and "Connection refused" in cleaned
