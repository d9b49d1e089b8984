# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.commit_changes import parse_changes
from ansible_collections.dockhand.registry.plugins.module_utils.image_reference import (
    ImageReferenceError,
    validate_target_name as validate_name,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import sha256_digest_of_chunks
from ansible_collections.dockhand.registry.plugins.modules.image_commit import (
    FINGERPRINT_LABELS,
    LABEL_CONFIG,
    LABEL_CONTAINER,
    LABEL_FILESYSTEM,
    LABEL_PREFIX,
    LABEL_REQUEST,
    commit_changes_with_labels,
    commit_config,
    config_fingerprint,
    decide_commit,
    fingerprint_labels,
    lineage_problem,
    request_fingerprint,
)

CONTAINER_ID = "c" * 64
NAME = "myapp:1.0"


def wanted(**overrides):
    labels = fingerprint_labels(CONTAINER_ID, "sha256:" + "1" * 64, "sha256:" + "2" * 64, "sha256:" + "3" * 64)
    labels.update(overrides)
    return labels


def image_with_labels(labels, **extra):
    image = {"Id": "sha256:" + "a" * 64, "Config": {"Labels": dict(labels, **extra)}}
    return image


def test_unchanged_container_needs_no_commit():
    assert decide_commit(NAME, image_with_labels(wanted(), other="kept"), wanted(), force=False) is None


def test_force_always_commits():
    assert decide_commit(NAME, image_with_labels(wanted()), wanted(), force=True) == "force is set"
    assert decide_commit(NAME, None, wanted(), force=True) == "force is set"


def test_missing_image_needs_commit():
    assert decide_commit(NAME, None, wanted(), force=False) == "myapp:1.0 does not exist"


@pytest.mark.parametrize("image", [
    {"Id": "sha256:x", "Config": {"Labels": None}},
    {"Id": "sha256:x", "Config": None},
    {"Id": "sha256:x"},
    image_with_labels({key: value for key, value in wanted().items() if key != LABEL_FILESYSTEM}),
    image_with_labels(wanted(**{LABEL_REQUEST: ""})),
])
def test_image_not_made_by_the_module_needs_commit(image):
    assert decide_commit(NAME, image, wanted(), force=False) == (
        "myapp:1.0 was not committed by dockhand.registry.image_commit"
    )


@pytest.mark.parametrize("label, reason", [
    (LABEL_CONTAINER, "myapp:1.0 was committed from another container (dddddddddddd)"),
    (LABEL_CONFIG, "the container's configuration changed since myapp:1.0 was committed"),
    (LABEL_REQUEST, "author, comment or changes differ from those myapp:1.0 was committed with"),
    (LABEL_FILESYSTEM, "the container's filesystem changed since myapp:1.0 was committed"),
])
def test_each_fingerprint_part_decides(label, reason):
    existing = image_with_labels(wanted(**{label: "d" * 64}))
    assert decide_commit(NAME, existing, wanted(), force=False) == reason


def test_unread_filesystem_is_decided_on_the_other_parts():
    unread = wanted(**{LABEL_FILESYSTEM: None})
    assert decide_commit(NAME, image_with_labels(wanted()), unread, force=False) is None
    assert decide_commit(NAME, None, unread, force=False) == "myapp:1.0 does not exist"
    changed_request = image_with_labels(wanted(**{LABEL_REQUEST: "x"}))
    assert "author, comment or changes differ" in decide_commit(NAME, changed_request, unread, force=False)


BASE_LAYERS = ["sha256:" + "b" * 64]
BASE = {"Id": "sha256:" + "f" * 64, "RootFS": {"Type": "layers", "Layers": BASE_LAYERS}}
BASE_HISTORY = [{"Id": BASE["Id"], "Comment": "Imported from -"}]


def with_layers(image, layers):
    return dict(image, RootFS={"Type": "layers", "Layers": layers})


def history(length):
    return [{"Id": "<missing>"}] * length


def test_lineage_one_commit_on_the_base_is_ours():
    committed = with_layers(image_with_labels(wanted()), BASE_LAYERS + ["sha256:" + "9" * 64])
    assert lineage_problem(NAME, committed, history(2), BASE, BASE_HISTORY) is None
    # the containerd store adds no layer for an empty change, but still a history entry
    empty_commit = with_layers(image_with_labels(wanted()), BASE_LAYERS)
    assert lineage_problem(NAME, empty_commit, history(2), BASE, BASE_HISTORY) is None


@pytest.mark.parametrize("layers, entries", [
    # committed with the plain CLI from a container of our image: one more history entry
    (BASE_LAYERS + ["sha256:" + "9" * 64], 3),
    (BASE_LAYERS + ["sha256:" + "9" * 64, "sha256:" + "8" * 64], 3),
    # built FROM our image with two more layers
    (BASE_LAYERS + ["sha256:" + "9" * 64, "sha256:" + "8" * 64, "sha256:" + "7" * 64], 4),
    # made on top of another image
    (["sha256:" + "6" * 64, "sha256:" + "9" * 64], 2),
])
def test_lineage_inherited_labels_are_found_without_the_container_field(layers, entries):
    # no "Container" key: Docker 25+ on the containerd store and API 1.45+ leave it out
    inherited = with_layers(image_with_labels(wanted()), layers)
    problem = lineage_problem(NAME, inherited, history(entries), BASE, BASE_HISTORY)
    assert problem == ("myapp:1.0 inherited its fingerprint labels: it is not one commit on top of the"
                       " image the container was created from")
    assert decide_commit(NAME, inherited, wanted(), False, problem) == problem


def test_lineage_unknown_when_the_base_image_is_gone():
    problem = lineage_problem(NAME, image_with_labels(wanted()), history(2), None, None)
    assert "no longer exists" in problem
    assert decide_commit(NAME, image_with_labels(wanted()), wanted(), False, problem) == problem


def test_lineage_is_checked_after_the_container_label():
    other = image_with_labels(wanted(**{LABEL_CONTAINER: "d" * 64}))
    assert "another container" in decide_commit(NAME, other, wanted(), False, "lineage problem")


def test_fingerprint_labels_live_under_the_reserved_prefix():
    assert set(wanted()) == set(FINGERPRINT_LABELS)
    assert all(key.startswith(LABEL_PREFIX) for key in FINGERPRINT_LABELS)


def test_config_fingerprint_ignores_key_order_and_state():
    first = {"Id": "x", "Image": "sha256:base", "State": {"Running": True},
             "Config": {"Cmd": ["sh"], "Env": ["A=1"]}}
    second = {"Id": "y", "Image": "sha256:base", "State": {"Running": False},
              "Config": {"Env": ["A=1"], "Cmd": ["sh"]}}
    assert config_fingerprint(first) == config_fingerprint(second)
    assert config_fingerprint(first).startswith("sha256:")


@pytest.mark.parametrize("change", [
    {"Config": {"Cmd": ["sh", "-c", "true"], "Env": ["A=1"]}},
    {"Config": {"Cmd": ["sh"], "Env": ["A=2"]}},
    {"Image": "sha256:other"},
])
def test_config_fingerprint_sees_config_and_base_image(change):
    base = {"Image": "sha256:base", "Config": {"Cmd": ["sh"], "Env": ["A=1"]}}
    assert config_fingerprint(base) != config_fingerprint(dict(base, **change))


def test_request_fingerprint():
    changes = parse_changes(["CMD true", "EXPOSE 80"])
    same_but_spelled_differently = parse_changes(["cmd   true ", "expose 80"])
    reference = request_fingerprint("me", "msg", changes)
    assert request_fingerprint("me", "msg", same_but_spelled_differently) == reference
    assert request_fingerprint("you", "msg", changes) != reference
    assert request_fingerprint("me", "other", changes) != reference
    assert request_fingerprint("me", "msg", changes[:1]) != reference
    assert request_fingerprint("me", "msg", list(reversed(changes))) != reference
    assert request_fingerprint(None, None, []) == request_fingerprint("", "", [])


def test_sha256_of_chunks_streams():
    chunks = (bytes([n]) * 1000 for n in range(256))
    expected = hashlib.sha256(b"".join(bytes([n]) * 1000 for n in range(256))).hexdigest()
    assert sha256_digest_of_chunks(chunks) == "sha256:" + expected
    assert sha256_digest_of_chunks(iter(())) == "sha256:" + hashlib.sha256(b"").hexdigest()


def test_fingerprint_labels_are_sent_last_as_one_label_change():
    changes = parse_changes(["LABEL a=b", "STOPSIGNAL SIGINT", "CMD true"])
    sent = commit_changes_with_labels(changes, wanted())
    assert sent[:2] == ["LABEL a=b", "CMD true"]
    assert sent[2].startswith("LABEL ")
    assert len(sent) == 3
    for key, value in wanted().items():
        assert '%s="%s"' % (key, value) in sent[2]
    assert parse_changes([sent[2]])[0].label_keys == tuple(sorted(wanted()))


def test_commit_config_only_for_stop_signal():
    container_config = {"Cmd": ["sh"], "StopSignal": "SIGTERM", "Labels": {"x": "y"}}
    assert commit_config(parse_changes(["CMD true"]), container_config) is None
    config = commit_config(parse_changes(["STOPSIGNAL SIGINT", "STOPSIGNAL 9"]), container_config)
    assert config == {"Cmd": ["sh"], "StopSignal": "9", "Labels": {"x": "y"}}
    assert container_config["StopSignal"] == "SIGTERM"
    assert commit_config(parse_changes(["STOPSIGNAL SIGINT"]), None) == {"StopSignal": "SIGINT"}


@pytest.mark.parametrize("repository, tag", [
    ("myapp", "latest"),
    ("team/myapp", "1.0"),
    ("localhost:5000/team/myapp", "v1_2-3"),
    ("127.0.0.1:5000/a/b/c", "x"),
    ("registry.example.com/myapp", "A" * 128),
])
def test_validate_name_accepts(repository, tag):
    validate_name(repository, tag)


@pytest.mark.parametrize("repository, tag, message", [
    ("myapp:1.0", "latest", "give the tag with the tag option"),
    ("myapp@sha256:" + "a" * 64, "latest", "give the tag with the tag option"),
    ("MyApp", "latest", "invalid"),
    ("my app", "latest", "invalid"),
    ("", "latest", "non-empty"),
    ("team//myapp", "latest", "invalid"),
    ("myapp", "-bad", "invalid tag"),
    ("myapp", "A" * 129, "invalid tag"),
    ("myapp", "", "invalid tag"),
])
def test_validate_name_refuses(repository, tag, message):
    with pytest.raises(ImageReferenceError, match=message):
        validate_name(repository, tag)
