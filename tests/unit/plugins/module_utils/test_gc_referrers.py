# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keeping referrers through --delete-untagged: the dry run's output, the decision, and the referrers tag writes.

The output is built the way distribution v3's registry/storage/garbagecollect.go prints it
(``emit("manifest eligible for deletion: %s", obj)`` of a ManifestDel{Name, Digest, Tags}, Go's
``%s`` of a struct being ``{name digest [tag tag]}``); v3's collector itself cannot run here, so
that it keeps what a tagged referrers index lists is reasoned from its source, not tested.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.dockhand.registry.plugins.module_utils.gc_referrers import (
    SKIP_SUBJECT_DELETED,
    SKIP_SUBJECT_MISSING,
    Eligible,
    GcOutputError,
    parse_eligible_manifests,
    plan_protection,
    protect_referrers,
)
from ansible_collections.dockhand.registry.plugins.module_utils.oci import OCI_INDEX, OCI_MANIFEST
from ansible_collections.dockhand.registry.plugins.module_utils.referrers import referrers_tag
from ansible_collections.dockhand.registry.plugins.module_utils.registry_errors import RegistryError
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake import sha256
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake_oci import FakeDistribution3

REPO = "team/app"
SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM = "application/spdx+json"
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


def dry_run(eligible, blobs=(), marked=7):
    """A v3 ``garbage-collect --delete-untagged --dry-run`` output listing ``eligible`` (repository, digest, tags)."""
    lines = []
    for repository in sorted({entry[0] for entry in eligible} | {REPO}):
        lines += [repository, "%s: marking manifest %s " % (repository, A), "%s: marking blob %s" % (repository, B)]
    lines += ["manifest eligible for deletion: {%s %s [%s]}" % (repository, digest, " ".join(tags))
              for repository, digest, tags in eligible]
    summary = "%d blobs marked, %d blobs and %d manifests eligible for deletion" % (marked, len(blobs), len(eligible))
    lines += ["", summary]
    lines += ["blob eligible for deletion: %s" % digest for digest in blobs]
    lines += ["%s: layer link eligible for deletion: %s" % (REPO, digest) for digest in blobs]
    return "\n".join(lines) + "\n"


def puts(registry):
    return [call for call in registry.calls if call[0] == "put_manifest"]


def referrers_listed(registry, subject):
    manifest = registry.get_manifest(REPO, referrers_tag(subject))
    return None if manifest is None else [entry["digest"] for entry in json.loads(manifest.body)["manifests"]]


# ------------------------------------------------------------------ the dry run's output


def test_parses_v3_eligible_manifest_lines_with_and_without_tags():
    output = dry_run([(REPO, A, ["v1", "sha256-" + "d" * 64]), ("other", B, []), (REPO, C, ["v1"])], blobs=[C])
    assert parse_eligible_manifests(output) == [Eligible(REPO, A), Eligible("other", B), Eligible(REPO, C)]


# distribution 2.8's output (Debian's docker-registry 2.8, two repositories, shortened): a bare digest per line,
# printed within the section its repository line opens.
DISTRIBUTION_2_OUTPUT = "\n".join([
    "multi",
    "manifest eligible for deletion: %(a)s",
    "multi: marking manifest %(b)s ",  # 2.8 ends this line with a space
    "multi: marking blob %(c)s",
    "manifest eligible for deletion: %(c)s",
    "zz/other",
    "manifest eligible for deletion: %(a)s",
    "zz/other: marking manifest %(b)s ",
    "",
    "2 blobs marked, 3 blobs and 3 manifests eligible for deletion",
    "blob eligible for deletion: %(c)s",
    "",
]) % dict(a=A, b=B, c=C)


def test_parses_distribution_2_eligible_digests_under_their_repository_line():
    assert parse_eligible_manifests(DISTRIBUTION_2_OUTPUT) == [
        Eligible("multi", A), Eligible("multi", C), Eligible("zz/other", A)]


def test_a_bare_digest_before_any_repository_line_fails():
    with pytest.raises(GcOutputError, match="line 1 .*a bare digest before any repository line"):
        parse_eligible_manifests(DISTRIBUTION_2_OUTPUT.split("\n", 1)[1])


def test_an_output_without_eligible_manifests_is_fine():
    assert parse_eligible_manifests(dry_run([])) == []


@pytest.mark.parametrize("line, why", [
    ("manifest eligible for deletion: {%s}" % A, "not {name digest [tags]}"),
    ("manifest eligible for deletion: %s [v1]" % A, "not {name digest [tags]}"),
    ("manifest eligible for deletion: {%s sha256:abc [v1]}" % REPO, "is no digest"),
    ("manifest eligible for deletion: {Team/App %s [v1]}" % A, "Team/App"),
    ("manifest eligible for deletion: {%s %s v1}" % (REPO, A), "not {name digest [tags]}"),
])
def test_a_malformed_eligible_line_fails_with_one_line_before_any_request(line, why):
    output = dry_run([]).replace("\n\n", "\n%s\n\n" % line)
    registry = FakeDistribution3()
    with pytest.raises(GcOutputError) as caught:
        protect_referrers(registry, output, check_mode=False)
    message = str(caught.value)
    assert why in message and "line 4 of the garbage-collect dry run" in message
    assert "nothing was changed" in message and "\n" not in message
    assert registry.calls == []


def test_an_output_cut_short_or_miscounted_fails():
    full = dry_run([(REPO, A, ["v1"])])
    with pytest.raises(GcOutputError, match="printed no .* line, so its output is incomplete; nothing was changed"):
        parse_eligible_manifests(full.split("\n\n", maxsplit=1)[0])
    with pytest.raises(GcOutputError, match="counts 2 manifests eligible for deletion but lists 1"):
        parse_eligible_manifests(full.replace("and 1 manifests", "and 2 manifests"))


# ------------------------------------------------------------------ the decision


def test_a_referrer_whose_subject_stays_is_protected_one_whose_subject_goes_is_not():
    eligible = [Eligible(REPO, A), Eligible(REPO, B), Eligible(REPO, C)]
    # A: signature of a kept image; B: an untagged image going; C: signature of B.
    kept_image = "sha256:" + "e" * 64
    protected, skipped = plan_protection(eligible, {eligible[0]: kept_image, eligible[1]: None, eligible[2]: B},
                                         present={(REPO, kept_image)})
    assert [(p.digest, p.subject) for p in protected] == [(A, kept_image)]
    assert [(s.digest, s.subject, s.reason) for s in skipped] == [(C, B, SKIP_SUBJECT_DELETED)]


def test_a_referrer_of_a_protected_referrer_is_protected_too_in_any_order():
    kept_image = "sha256:" + "e" * 64
    signature_of_sbom, sbom = Eligible(REPO, A), Eligible(REPO, B)
    protected, skipped = plan_protection([signature_of_sbom, sbom], {signature_of_sbom: B, sbom: kept_image},
                                         present={(REPO, kept_image)})
    assert sorted(p.digest for p in protected) == [A, B] and skipped == []


def test_a_referrer_of_a_subject_not_in_the_repository_is_not_protected():
    protected, skipped = plan_protection([Eligible(REPO, A)], {Eligible(REPO, A): C}, present=set())
    assert protected == [] and [(s.digest, s.reason) for s in skipped] == [(A, SKIP_SUBJECT_MISSING)]


# ------------------------------------------------------------------ against a registry


def signed_image(registry, tags=("v1",)):
    image = registry.add_image(REPO, list(tags))
    signature, _body = registry.add_referrer(REPO, image, artifact_type=SIGNATURE)
    return image, signature


def test_protects_a_digest_only_signature_of_a_tagged_image_and_converges():
    registry = FakeDistribution3()
    image, signature = signed_image(registry)
    output = dry_run([(REPO, signature, ["v1"])])

    before = len(puts(registry))
    planned = protect_referrers(registry, output, check_mode=True).to_result()
    assert planned["changed"] and len(puts(registry)) == before
    assert referrers_listed(registry, image) is None

    done = protect_referrers(registry, output, check_mode=False).to_result()
    assert done == planned
    assert done["protected"] == [dict(repository=REPO, digest=signature, subject=image,
                                      referrers_tag=referrers_tag(image), referrers_tag_updated=True)]
    assert referrers_listed(registry, image) == [signature]
    index = json.loads(registry.get_manifest(REPO, referrers_tag(image)).body)
    assert index["mediaType"] == OCI_INDEX and index["manifests"][0]["artifactType"] == SIGNATURE
    assert registry.get_manifest(REPO, signature) is not None

    before = len(puts(registry))
    again = protect_referrers(registry, output, check_mode=False).to_result()
    assert not again["changed"] and len(puts(registry)) == before
    assert again["protected"][0]["referrers_tag_updated"] is False


def test_an_existing_referrers_tag_keeps_its_entries_and_gets_one_put_for_several_referrers():
    registry = FakeDistribution3()
    image, listed = signed_image(registry)
    registry.put_manifest(REPO, referrers_tag(image), json.dumps(dict(
        schemaVersion=2, mediaType=OCI_INDEX, manifests=[dict(mediaType=OCI_MANIFEST, digest=listed, size=1)])).encode(),
        OCI_INDEX)
    sbom, _body = registry.add_referrer(REPO, image, artifact_type=SBOM, payload=b"sbom")
    signature, _body = registry.add_referrer(REPO, image, artifact_type=SIGNATURE, payload=b"sig2")
    before = len(puts(registry))
    result = protect_referrers(registry, dry_run([(REPO, sbom, []), (REPO, signature, [])]), check_mode=False)
    assert result.changed and len(puts(registry)) == before + 1
    assert referrers_listed(registry, image) == [listed, sbom, signature]


def test_referrers_of_an_untagged_image_go_with_it_and_nothing_is_written():
    registry = FakeDistribution3()
    image, signature = signed_image(registry, tags=())
    before = len(puts(registry))
    result = protect_referrers(registry, dry_run([(REPO, image, []), (REPO, signature, [])]),
                               check_mode=False).to_result()
    assert not result["changed"] and result["protected"] == [] and len(puts(registry)) == before
    assert result["skipped"] == [dict(repository=REPO, digest=signature, subject=image, reason=SKIP_SUBJECT_DELETED)]
    assert result["manifests_eligible"] == 2


def test_eligible_manifests_without_subject_or_gone_meanwhile_are_left_to_the_collector():
    registry = FakeDistribution3()
    child = registry.add_image(REPO, [])
    registry.add_index(REPO, ["multi"], [child])
    result = protect_referrers(registry, dry_run([(REPO, child, ["multi"]), (REPO, C, ["multi"])]), check_mode=False)
    assert result.protected == [] and result.skipped == [] and not result.changed
    assert [call[0] for call in registry.calls] == ["get_manifest", "get_manifest"]


def test_a_referrers_tag_that_is_no_index_fails_before_any_put():
    registry = FakeDistribution3()
    first, first_signature = signed_image(registry, tags=("v1",))
    second = registry.add_image(REPO, ["v2"], layers=(b"other",))
    second_signature, _body = registry.add_referrer(REPO, second, artifact_type=SIGNATURE, payload=b"s2")
    # An image, not an index, under the second subject's referrers tag name.
    registry.repos[REPO]["tags"][referrers_tag(second)] = second
    before = len(puts(registry))
    with pytest.raises(RegistryError, match="the referrers tag sha256-.* has mediaType .*, not an OCI image index"):
        protect_referrers(registry, dry_run([(REPO, first_signature, []), (REPO, second_signature, [])]),
                          check_mode=False)
    assert len(puts(registry)) == before and referrers_listed(registry, first) is None


def test_a_referrer_of_a_subject_that_is_gone_is_skipped():
    registry = FakeDistribution3()
    config = registry.add_oci_blob(REPO, b"{}", "application/vnd.oci.empty.v1+json")
    body = json.dumps(dict(schemaVersion=2, mediaType=OCI_MANIFEST, config=config, layers=[],
                           subject=dict(mediaType=OCI_MANIFEST, digest=C, size=3))).encode()
    orphan = registry.put_manifest(REPO, sha256(body), body, OCI_MANIFEST)
    result = protect_referrers(registry, dry_run([(REPO, orphan, [])]), check_mode=False)
    assert [(s["digest"], s["reason"]) for s in result.to_result()["skipped"]] == [(orphan, SKIP_SUBJECT_MISSING)]
    assert not result.changed and puts(registry)[-1] == ("put_manifest", REPO, orphan)
