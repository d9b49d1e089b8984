# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Referrers discovery, referrers tag upkeep and untag detection against distribution 2.8 and v3 fakes.

The v3 tag delete and the OCI referrers API exist only in these fakes (no Debian-packaged
registry has them); the 2.8 answers are checked against the real registry by the ``referrers``
integration target.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.referrers import (
    FOUND_BY_API,
    FOUND_BY_COSIGN_TAG,
    FOUND_BY_REFERRERS_TAG,
    MAX_UNTAG_PROBES,
    REMOVED_BY_DIGEST,
    REMOVED_BY_TAG_DELETE,
    UntagSupport,
    apply_index_change,
    classify_tag,
    cosign_tag,
    delete_tag,
    discover_referrers,
    plan_add_referrer,
    plan_remove_referrer,
    push_referrer,
    referrer_tags_by_subject,
    referrers_tag,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_delete import (
    THROWAWAY_CONFIG,
    THROWAWAY_CONFIG_DIGEST,
    throwaway_manifest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import (
    RegistryDeleteDisabled,
    RegistryError,
)
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake import sha256
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake_oci import (
    OCI_EMPTY,
    FakeDistribution2,
    FakeDistribution3,
    FakeResponse,
)
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.test_registry_client import (
    FakeRegistry as HttpRegistry,
    client_for,
)

REPO = "team/app"
SBOM = "application/spdx+json"
SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
HEX = "ab" * 32


def image(registry, tags=("v1",), marker=""):
    return registry.add_image(REPO, list(tags), marker=marker)


def one_line(exc_info):
    text = str(exc_info.value)
    assert "\n" not in text and text
    return text


# ------------------------------------------------------------------ tag names

def test_referrers_tag_follows_the_spec_table():
    assert referrers_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64
    assert referrers_tag("sha512:" + "a" * 128) == "sha512-" + "a" * 64
    odd = ("test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:"
           "alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation")
    assert referrers_tag(odd) == ("test-algorithm-using-algorithm-s-"
                                  "alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot")


def test_cosign_tags_are_never_truncated():
    assert cosign_tag("sha256:" + HEX, "sig") == "sha256-%s.sig" % HEX
    assert cosign_tag("sha512:" + "c" * 128, "att") == "sha512-%s.att" % ("c" * 128)


def test_classify_tag():
    fallback = classify_tag("sha256-" + HEX)
    assert fallback.kind == FOUND_BY_REFERRERS_TAG and fallback.subject_digest == "sha256:" + HEX
    assert fallback.belongs_to("sha256:" + HEX) and not fallback.belongs_to("sha256:" + "cd" * 32)
    for suffix in ("sig", "att", "sbom"):
        found = classify_tag("sha256-%s.%s" % (HEX, suffix))
        assert (found.kind, found.suffix, found.subject_digest) == (FOUND_BY_COSIGN_TAG, suffix, "sha256:" + HEX)
        assert found.belongs_to("sha256:" + HEX)
    truncated = classify_tag("sha512-" + "e" * 64)
    assert truncated.subject_digest is None and truncated.belongs_to("sha512:" + "e" * 128)
    assert classify_tag("sha512-%s.sig" % ("e" * 128)).subject_digest == "sha512:" + "e" * 128
    for tag in ("latest", "sha256-" + HEX[:-1], "sha256-%s.foo" % HEX, "sha256-" + HEX.upper(),
                "md5-" + HEX, "sha512-%s.sig" % ("e" * 64), "xsha256-" + HEX, "sha256-" + HEX + "0", None, 5):
        assert classify_tag(tag) is None, tag


def test_referrer_tags_by_subject_groups_the_tags_of_each_subject():
    other = "cd" * 32
    tags = ["v1", "sha256-" + HEX, "sha256-%s.sig" % HEX, "sha256-%s.att" % other, "latest"]
    grouped = referrer_tags_by_subject(tags)
    assert sorted(grouped) == ["sha256:" + HEX, "sha256:" + other]
    assert [t.tag for t in grouped["sha256:" + HEX]] == ["sha256-" + HEX, "sha256-%s.sig" % HEX]


# ------------------------------------------------------------------ distribution 2.8: the referrers tag

def test_no_referrers_on_2x():
    registry = FakeDistribution2()
    subject = image(registry)
    found = discover_referrers(registry, REPO, subject)
    assert found.referrers == [] and found.referrers_api is False


def test_push_referrer_on_2x_writes_the_referrers_tag_per_the_spec_and_converges():
    registry = FakeDistribution2()
    subject = image(registry)
    config = registry.add_oci_blob(REPO, b"{}", SBOM)
    layer = registry.add_oci_blob(REPO, b"sbom", "application/octet-stream")
    body = json.dumps(dict(schemaVersion=2, mediaType=OCI_MANIFEST, config=config, layers=[layer],
                           annotations={"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
                           subject=dict(mediaType="application/vnd.docker.distribution.manifest.v2+json",
                                        digest=subject, size=10))).encode()
    change = push_referrer(registry, REPO, body, OCI_MANIFEST)
    assert change.changed and change.tag == "sha256-" + subject.split(":")[1]
    index = json.loads(registry.get_manifest(REPO, change.tag).body)
    assert index == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": sha256(body), "size": len(body), "artifactType": SBOM,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}}]}
    # a second push changes nothing
    puts = [call for call in registry.calls if call[0] == "put_manifest"]
    assert not push_referrer(registry, REPO, body, OCI_MANIFEST).changed
    assert [call for call in registry.calls if call[0] == "put_manifest"] == puts + [("put_manifest", REPO, sha256(body))]
    found = discover_referrers(registry, REPO, subject, verify=True)
    assert [(r.digest, r.artifact_type, r.found_by, r.tag) for r in found.referrers] == [
        (sha256(body), SBOM, FOUND_BY_REFERRERS_TAG, change.tag)]
    assert found.referrers[0].to_result()["annotations"] == {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}


def referrers_in_tag(registry, subject, count=2):
    digests = []
    for number in range(count):
        digest, body = registry.add_referrer(REPO, subject, artifact_type=SBOM if number % 2 == 0 else None,
                                             payload=b"payload %d" % number)
        apply_index_change(registry, REPO, plan_add_referrer(registry, REPO, Manifest(digest, OCI_MANIFEST, body)))
        digests.append(digest)
    return digests


def test_removing_a_referrer_keeps_the_index_consistent_and_converges():
    registry = FakeDistribution2()
    subject = image(registry)
    first, second = referrers_in_tag(registry, subject)
    change = plan_remove_referrer(registry, REPO, subject, first)
    assert change.changed and apply_index_change(registry, REPO, change)
    assert [r.digest for r in discover_referrers(registry, REPO, subject).referrers] == [second]
    assert not plan_remove_referrer(registry, REPO, subject, first).changed
    assert apply_index_change(registry, REPO, plan_remove_referrer(registry, REPO, subject, second))
    index = json.loads(registry.get_manifest(REPO, referrers_tag(subject)).body)
    assert index["manifests"] == [] and index["mediaType"] == OCI_INDEX
    assert not plan_remove_referrer(registry, REPO, image(registry, ["v2"], "other"), first).changed


def test_artifact_type_falls_back_to_the_config_media_type_and_filters():
    registry = FakeDistribution2()
    subject = image(registry)
    sbom, plain = referrers_in_tag(registry, subject)
    found = discover_referrers(registry, REPO, subject)
    assert [(r.digest, r.artifact_type) for r in found.referrers] == [(sbom, SBOM), (plain, OCI_EMPTY)]
    assert [r.digest for r in discover_referrers(registry, REPO, subject, artifact_type=OCI_EMPTY).referrers] == [plain]


def test_cosign_tags_are_found_with_or_without_a_tag_list_and_reported_once():
    registry = FakeDistribution2()
    subject = image(registry)
    listed = referrers_in_tag(registry, subject, count=1)
    signature, _body = registry.add_referrer(REPO, subject, tag=cosign_tag(subject, "sig"), subject_field=False,
                                             config_media_type=SIGNATURE, payload=b"signature")
    # the same manifest under the .att tag as well: reported once
    registry.repos[REPO]["tags"][cosign_tag(subject, "att")] = listed[0]
    found = discover_referrers(registry, REPO, subject)
    assert [(r.digest, r.found_by, r.tag) for r in found.referrers] == [
        (listed[0], FOUND_BY_REFERRERS_TAG, referrers_tag(subject)),
        (signature, FOUND_BY_COSIGN_TAG, cosign_tag(subject, "sig"))]
    registry.calls.clear()
    again = discover_referrers(registry, REPO, subject, tags=["v1", cosign_tag(subject, "sig")])
    assert [r.digest for r in again.referrers] == [listed[0], signature]
    assert ("get_manifest", REPO, cosign_tag(subject, "sbom")) not in registry.calls


@pytest.mark.parametrize("index, message", [
    ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": "nope"}, "is malformed: its 'manifests' is a string, expected a list"),
    ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [5]}, "is malformed: entry 0 of 'manifests' is a number, expected an object"),
    ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": "sha256:12", "mediaType": OCI_MANIFEST,
                                                                "size": 1}]}, "entry 0 of 'manifests' has digest 'sha256:12', which is not a digest"),
    ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": "sha256:" + HEX, "mediaType": OCI_MANIFEST,
                                                                "size": True}]}, "entry 0 of 'manifests' has size True, expected a whole number of bytes"),
    ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": "sha256:" + HEX, "mediaType": OCI_MANIFEST,
                                                                "size": 1, "annotations": {"a": 1}}]},
     "annotations must map strings to strings"),
    ({"schemaVersion": 3, "mediaType": OCI_INDEX, "manifests": []}, "has schemaVersion 3, not 2"),
])
def test_a_malformed_referrers_tag_is_one_line_and_changes_nothing(index, message):
    registry = FakeDistribution2()
    subject = image(registry)
    # stored raw, as a broken client could have left it (the fake checks no index children here)
    body = json.dumps(index).encode()
    registry.repos[REPO]["manifests"][sha256(body)] = (body, OCI_INDEX)
    registry.repos[REPO]["tags"][referrers_tag(subject)] = sha256(body)
    with pytest.raises(RegistryError) as failure:
        discover_referrers(registry, REPO, subject)
    text = one_line(failure)
    assert text.startswith("the referrers tag %s of %s on registry 127.0.0.1:5000" % (referrers_tag(subject), REPO))
    assert message in text
    digest, referrer_body = registry.add_referrer(REPO, subject)
    before = dict(registry.repos[REPO]["tags"])
    with pytest.raises(RegistryError):
        plan_add_referrer(registry, REPO, Manifest(digest, OCI_MANIFEST, referrer_body))
    with pytest.raises(RegistryError):
        plan_remove_referrer(registry, REPO, subject, digest)
    assert registry.repos[REPO]["tags"] == before


def test_a_referrers_tag_holding_an_image_is_refused():
    registry = FakeDistribution2()
    subject = image(registry)
    registry.repos[REPO]["tags"][referrers_tag(subject)] = subject
    with pytest.raises(RegistryError) as failure:
        discover_referrers(registry, REPO, subject)
    assert "has mediaType 'application/vnd.docker.distribution.manifest.v2+json', not an OCI image index" in one_line(
        failure)


def test_verify_refuses_a_listed_referrer_without_its_subject():
    registry = FakeDistribution2()
    subject = image(registry)
    listed = referrers_in_tag(registry, subject, count=1)
    orphan, orphan_body = registry.add_referrer(REPO, subject, subject_field=False, payload=b"no subject")
    index = json.loads(registry.get_manifest(REPO, referrers_tag(subject)).body)
    index["manifests"].append(dict(mediaType=OCI_MANIFEST, digest=orphan, size=len(orphan_body)))
    registry.put_manifest(REPO, referrers_tag(subject), json.dumps(index).encode(), OCI_INDEX)
    assert len(discover_referrers(registry, REPO, subject).referrers) == 2  # without verify: listed as is
    with pytest.raises(RegistryError) as failure:
        discover_referrers(registry, REPO, subject, verify=True)
    assert one_line(failure).endswith("lists %s as a referrer of %s, but that manifest has no subject" % (orphan, subject))
    # a referrer of another image listed here, and a listed manifest that is gone
    other = image(registry, ["v2"], "other")
    elsewhere, _body = registry.add_referrer(REPO, other, payload=b"elsewhere")
    index["manifests"][-1] = dict(mediaType=OCI_MANIFEST, digest=elsewhere, size=1)
    registry.put_manifest(REPO, referrers_tag(subject), json.dumps(index).encode(), OCI_INDEX)
    with pytest.raises(RegistryError) as failure:
        discover_referrers(registry, REPO, subject, verify=True)
    assert one_line(failure).endswith("but that manifest's subject is %s" % other)
    del registry.repos[REPO]["manifests"][listed[0]]
    with pytest.raises(RegistryError) as failure:
        discover_referrers(registry, REPO, subject, verify=True)
    assert "lists %s as a referrer of %s, but the registry does not have that manifest" % (listed[0], subject) in \
        one_line(failure)


def test_a_manifest_without_or_with_a_broken_subject_is_no_referrer():
    registry = FakeDistribution2()
    subject = image(registry)
    digest, body = registry.add_referrer(REPO, subject, subject_field=False)
    with pytest.raises(RegistryError) as failure:
        plan_add_referrer(registry, REPO, Manifest(digest, OCI_MANIFEST, body))
    assert one_line(failure) == "manifest %s for %s has no subject, so it is no referrer" % (digest, REPO)
    broken = json.loads(body)
    broken["subject"] = {"digest": "latest"}
    broken_body = json.dumps(broken).encode()
    with pytest.raises(RegistryError) as failure:
        push_referrer(registry, REPO, broken_body, OCI_MANIFEST)
    assert "has a malformed subject {'digest': 'latest'}" in one_line(failure)
    assert sha256(broken_body) not in registry.repos[REPO]["manifests"]


# ------------------------------------------------------------------ the referrers API (v3-like fake)

def test_the_referrers_api_lists_per_the_spec_and_the_tag_is_not_read():
    registry = FakeDistribution3(referrers_api=True)
    subject = image(registry)
    sbom, _body = registry.add_referrer(REPO, subject, artifact_type=SBOM, annotations={"k": "v"})
    plain, _body = registry.add_referrer(REPO, subject, payload=b"plain")
    registry.add_referrer(REPO, image(registry, ["v2"], "other"), payload=b"other")
    registry.calls.clear()
    found = discover_referrers(registry, REPO, subject, verify=True)
    assert found.referrers_api is True
    assert sorted((r.digest, r.artifact_type, r.annotations.get("k"), r.found_by) for r in found.referrers) == sorted([
        (sbom, SBOM, "v", FOUND_BY_API), (plain, OCI_EMPTY, None, FOUND_BY_API)])
    assert ("get_manifest", REPO, referrers_tag(subject)) not in registry.calls


@pytest.mark.parametrize("filters", [True, False])
def test_the_artifact_type_filter_holds_whether_the_registry_applies_it_or_not(filters):
    registry = FakeDistribution3(referrers_api=True, filters=filters)
    subject = image(registry)
    sbom, _body = registry.add_referrer(REPO, subject, artifact_type=SBOM)
    registry.add_referrer(REPO, subject, payload=b"plain")
    assert [r.digest for r in discover_referrers(registry, REPO, subject, artifact_type=SBOM).referrers] == [sbom]


def test_the_referrers_api_pages_are_followed_and_a_looping_link_fails():
    registry = FakeDistribution3(referrers_api=True, page_size=2)
    subject = image(registry)
    made = sorted(registry.add_referrer(REPO, subject, payload=b"p%d" % n)[0] for n in range(5))
    assert sorted(r.digest for r in discover_referrers(registry, REPO, subject).referrers) == made
    assert len([c for c in registry.calls if c[0] == "repository_request"]) == 3
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
    registry.referrers_answer = FakeResponse(200, body, {"Link": '</v2/x/referrers/y?last=z>; rel="next"'})
    with pytest.raises(RegistryError) as failure:
        discover_referrers(registry, REPO, subject)
    assert one_line(failure).endswith("the Link header loops")


@pytest.mark.parametrize("body, message", [
    (b"<html>oops</html>", "is not JSON (starts with b'<html>oops</html>')"),
    (b"[1, 2]", "is a list, not an OCI image index"),
    (b'{"manifests": [{"digest": "sha256:' + HEX.encode() + b'", "mediaType": 7, "size": 1}]}', "has mediaType 7"),
    (b'{"mediaType": "text/plain", "manifests": []}', "has mediaType 'text/plain', not an OCI image index"),
])
def test_garbage_from_the_referrers_api_is_one_line(body, message):
    registry = FakeDistribution3(referrers_api=True)
    subject = image(registry)
    registry.referrers_answer = FakeResponse(200, body, {"Content-Type": OCI_INDEX})
    with pytest.raises(RegistryError) as failure:
        discover_referrers(registry, REPO, subject)
    text = one_line(failure)
    assert text.startswith("the referrers API's answer for %s in %s on registry 127.0.0.1:5000" % (subject, REPO))
    assert message in text


def test_push_referrer_with_the_api_writes_no_referrers_tag():
    registry = FakeDistribution3(referrers_api=True)
    subject = image(registry)
    digest, body = registry.add_referrer(REPO, subject, artifact_type=SBOM)
    del registry.repos[REPO]["manifests"][digest]
    assert not push_referrer(registry, REPO, body, OCI_MANIFEST).changed
    assert referrers_tag(subject) not in registry.repos[REPO]["tags"]
    assert [r.digest for r in discover_referrers(registry, REPO, subject).referrers] == [digest]


# ------------------------------------------------------------------ untag detection

def repoint(registry, tag):
    """What the throw-away path does first: the tag now names a throw-away manifest of ours."""
    if not registry.blob_exists(REPO, THROWAWAY_CONFIG_DIGEST):
        registry.upload_blob(REPO, THROWAWAY_CONFIG_DIGEST, [THROWAWAY_CONFIG], len(THROWAWAY_CONFIG))
    return registry.put_manifest(REPO, tag, throwaway_manifest(REPO, tag), OCI_MANIFEST)


def tag_deletes(registry):
    return [c for c in registry.calls if c[0] == "repository_request" and c[2][0] == "DELETE" and ":" not in c[2][2]]


def test_2x_answers_400_digest_invalid_and_the_run_keeps_the_throwaway_path():
    registry = FakeDistribution2()
    shared = image(registry, ["keep", "a", "b"])
    support = UntagSupport()
    assert support.remove_repointed_tag(registry, REPO, "a", repoint(registry, "a")) == REMOVED_BY_DIGEST
    assert support.supported is False and "400 DIGEST_INVALID" in support.reason
    assert support.remove_repointed_tag(registry, REPO, "b", repoint(registry, "b")) == REMOVED_BY_DIGEST
    assert len(tag_deletes(registry)) == 1  # asked once per run
    assert registry.repos[REPO]["tags"] == {"keep": shared}
    assert set(registry.repos[REPO]["manifests"]) == {shared}


def test_2x_with_deletes_off_answers_405_and_the_digest_delete_says_why():
    registry = FakeDistribution2(deletes_enabled=False)
    image(registry, ["keep", "a"])
    support = UntagSupport()
    with pytest.raises(RegistryDeleteDisabled):
        support.remove_repointed_tag(registry, REPO, "a", repoint(registry, "a"))
    assert support.supported is False and "405 UNSUPPORTED" in support.reason


def test_v3_untags_and_only_the_throwaway_is_deleted():
    registry = FakeDistribution3()
    shared = image(registry, ["keep", "a", "b"])
    support = UntagSupport()
    assert support.remove_repointed_tag(registry, REPO, "a", repoint(registry, "a")) == REMOVED_BY_TAG_DELETE
    assert support.supported is True and "202" in support.reason
    assert registry.repos[REPO]["tags"] == {"keep": shared, "b": shared}
    assert set(registry.repos[REPO]["manifests"]) == {shared}  # the throw-away went, nothing else
    assert delete_tag(registry, REPO, "b") is True and delete_tag(registry, REPO, "b") is False
    assert registry.repos[REPO]["tags"] == {"keep": shared}


@pytest.mark.parametrize("settings, code", [
    (dict(read_only=True), "405 "), (dict(cache=True), "405 UNSUPPORTED"), (dict(deletes_enabled=False), "405 UNSUPPORTED"),
])
def test_v3_without_tag_delete_answers_405(settings, code):
    registry = FakeDistribution3(**settings)
    image(registry, ["keep", "a"])
    support = UntagSupport()
    with pytest.raises(RegistryError):  # the digest delete after it is refused just the same
        support.remove_repointed_tag(registry, REPO, "a", repoint(registry, "a"))
    assert support.supported is False and code in support.reason


def test_a_registry_whose_tag_delete_deletes_the_manifest_costs_only_the_throwaway():
    registry = FakeDistribution3(tag_delete_removes_manifest=True)
    shared = image(registry, ["keep", "a"])
    support = UntagSupport()
    assert support.remove_repointed_tag(registry, REPO, "a", repoint(registry, "a")) == REMOVED_BY_TAG_DELETE
    assert support.supported is False and "removed the manifest as well" in support.reason
    assert registry.repos[REPO]["tags"] == {"keep": shared}
    assert set(registry.repos[REPO]["manifests"]) == {shared}


def test_a_404_proves_nothing_and_probing_is_bounded():
    registry = FakeDistribution3()
    image(registry, ["keep"])
    support = UntagSupport()
    for number in range(MAX_UNTAG_PROBES + 2):
        tag = "gone%d" % number
        throwaway = repoint(registry, tag)
        del registry.repos[REPO]["tags"][tag]  # another run removed the tag meanwhile
        assert support.remove_repointed_tag(registry, REPO, tag, throwaway) == REMOVED_BY_DIGEST
    assert support.supported is None and "404" in support.reason
    assert len(tag_deletes(registry)) == MAX_UNTAG_PROBES


def test_a_server_error_is_raised_and_decides_nothing():
    registry = FakeDistribution3()
    image(registry, ["keep", "a"])
    registry.fail["repository_request"] = lambda repository, argument: argument[0] == "DELETE"
    support = UntagSupport()
    with pytest.raises(RegistryError):
        support.remove_repointed_tag(registry, REPO, "a", repoint(registry, "a"))
    assert support.supported is None


# ------------------------------------------------------------------ the client's repository_request over HTTP

def test_repository_request_over_http():
    def app(request):
        if request["method"] == "DELETE":
            return 400, {}, {"errors": [{"code": "DIGEST_INVALID", "message": "provided digest did not match"}]}
        return 200, {"Content-Type": OCI_INDEX, "OCI-Filters-Applied": "artifactType"}, {"manifests": []}

    server = HttpRegistry(app)
    try:
        client = client_for(server)
        response = client.repository_request("GET", REPO, ("referrers", "sha256:" + HEX), "list referrers",
                                             query=[("artifactType", SBOM)])
        assert json.loads(response.content) == {"manifests": []}
        assert response.headers.get("oci-filters-applied") == "artifactType"
        with pytest.raises(RegistryError) as failure:
            client.repository_request("DELETE", REPO, ("manifests", "v1"), "delete tag v1", ok=(202,))
        assert (failure.value.status, failure.value.code) == (400, "DIGEST_INVALID")
        paths = [request["path"] for request in server.log if request["path"] != "/v2/"]
        assert paths == ["/v2/team/app/referrers/sha256:%s?artifactType=application%%2Fspdx%%2Bjson" % HEX,
                         "/v2/team/app/manifests/v1"]
    finally:
        server.close()


def test_discovery_over_http_follows_link_pages_and_asks_cosign_tags():
    subject = "sha256:" + HEX
    entry = {"mediaType": OCI_MANIFEST, "size": 10, "artifactType": SBOM}
    pages = {
        "": ({"link": '</v2/team/app/referrers/%s?last=one>; rel="next"' % subject}, ["1" * 64]),
        "last=one": ({}, ["2" * 64]),
    }

    def app(request):
        path, _sep, query = request["path"].partition("?")
        if path == "/v2/team/app/referrers/" + subject:
            headers, digests = pages[query]
            manifests = [dict(entry, digest="sha256:" + digest) for digest in digests]
            return 200, dict(headers, **{"Content-Type": OCI_INDEX}), {"schemaVersion": 2, "manifests": manifests}
        if path.startswith("/v2/team/app/manifests/"):
            return 404, {}, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
        return 200, {}, {}

    server = HttpRegistry(app)
    try:
        found = discover_referrers(client_for(server), REPO, subject)
        assert found.referrers_api is True
        assert [r.digest for r in found.referrers] == ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
        asked = sorted(request["path"] for request in server.log if "/manifests/" in request["path"])
        assert asked == ["/v2/team/app/manifests/" + cosign_tag(subject, suffix) for suffix in ("att", "sbom", "sig")]
    finally:
        server.close()


@pytest.mark.parametrize("tag_left, outcome", [(False, True), (True, RegistryError)])
def test_delete_tag_trusts_a_404_after_a_retry_only_when_the_tag_is_gone(tag_left, outcome):
    registry = FakeDistribution3()
    shared = image(registry, ["keep", "a"])
    retried = FakeResponse(404, b"", {}, "DELETE")
    retried.attempts = 2

    def lost_answer(method, repository, parts, query):
        if not tag_left:
            del registry.repos[REPO]["tags"][parts[1]]  # the first attempt did it; its answer was lost
        return retried

    registry.answer = lost_answer
    if outcome is RegistryError:
        with pytest.raises(RegistryError) as failure:
            delete_tag(registry, REPO, "a")
        assert one_line(failure).endswith("it answered 404 after a retry, yet the tag is still there")
        assert registry.repos[REPO]["tags"] == {"keep": shared, "a": shared}
    else:
        assert delete_tag(registry, REPO, "a") is True
        assert registry.repos[REPO]["tags"] == {"keep": shared}
