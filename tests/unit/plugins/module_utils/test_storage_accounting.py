# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import json

from ansible_collections.dockhand.registry.plugins.module_utils.oci import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
)
from ansible_collections.dockhand.registry.plugins.module_utils.storage_accounting import (
    account,
    blobs_of,
    reachable,
    unlinked,
    unlinked_by_deleting,
)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(name: str, size: int) -> dict:
    """A config or layer descriptor; the blob itself is never needed, only its declared size."""
    return {"mediaType": "application/octet-stream", "digest": digest_of(name.encode()), "size": size}


def image(config: dict, *layers: dict, subject: Manifest = None) -> Manifest:
    data = {"schemaVersion": 2, "mediaType": OCI_MANIFEST if subject else DOCKER_MANIFEST,
            "config": config, "layers": list(layers)}
    if subject is not None:
        data["subject"] = {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size}
    body = json.dumps(data).encode()
    return Manifest(digest_of(body), data["mediaType"], body)


def index(*children: Manifest) -> Manifest:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": child.media_type, "digest": child.digest, "size": child.size} for child in children]}).encode()
    return Manifest(digest_of(body), OCI_INDEX, body)


def known(*manifests: Manifest) -> dict:
    return dict((manifest.digest, manifest) for manifest in manifests)


BASE = blob("base layer", 1000)
APP = blob("app layer", 300)
OTHER = blob("other layer", 70)
CONFIG_A = blob("config a", 11)
CONFIG_B = blob("config b", 13)


def test_an_image_takes_itself_its_config_and_its_layers():
    app = image(CONFIG_A, BASE, APP)
    assert blobs_of([app]) == {app.digest: app.size, CONFIG_A["digest"]: 11, BASE["digest"]: 1000,
                               APP["digest"]: 300}


def test_a_layer_two_tags_of_one_repository_share_counts_once():
    first = image(CONFIG_A, BASE, APP)
    second = image(CONFIG_B, BASE, OTHER)
    report = account({"app": [first, second]})
    figures = report.repositories["app"]
    assert figures.blobs == 7
    assert figures.bytes_total == first.size + second.size + 11 + 13 + 1000 + 300 + 70
    assert figures.bytes_unique == figures.bytes_total
    assert figures.bytes_shared == 0


def test_two_tags_on_one_manifest_count_it_once():
    app = image(CONFIG_A, BASE)
    assert account({"app": [app, app]}).repositories["app"].bytes_total == app.size + 11 + 1000


def test_shared_and_unique_between_repositories_and_the_total_counts_each_blob_once():
    app = image(CONFIG_A, BASE, APP)
    tool = image(CONFIG_B, BASE, OTHER)
    report = account({"team/app": [app], "team/tool": [tool], "empty": []})
    app_figures = report.repositories["team/app"]
    tool_figures = report.repositories["team/tool"]
    assert (app_figures.bytes_shared, app_figures.bytes_unique) == (1000, app.size + 11 + 300)
    assert (tool_figures.bytes_shared, tool_figures.bytes_unique) == (1000, tool.size + 13 + 70)
    assert report.repositories["empty"].to_result() == dict(blobs=0, bytes_total=0, bytes_unique=0, bytes_shared=0)
    assert report.total_result() == dict(
        repositories=3, blobs=7, bytes_shared=1000,
        bytes_total=app.size + tool.size + 11 + 13 + 1000 + 300 + 70)


def test_one_image_in_two_repositories_is_all_shared():
    app = image(CONFIG_A, BASE)
    report = account({"a": [app], "b": [app]})
    assert report.repositories["a"].bytes_shared == report.repositories["a"].bytes_total == app.size + 1011
    assert report.repositories["a"].bytes_unique == 0
    assert report.total_result()["bytes_total"] == app.size + 1011


def test_index_children_are_reached_and_their_shared_blobs_counted_once():
    amd64 = image(CONFIG_A, BASE, APP)
    arm64 = image(CONFIG_B, BASE, OTHER)
    multi = index(amd64, arm64)
    reach = reachable([multi.digest], known(multi, amd64, arm64))
    assert sorted(manifest.digest for manifest in reach.manifests) == sorted([multi.digest, amd64.digest, arm64.digest])
    assert reach.missing == []
    figures = account({"multi": reach.manifests}).repositories["multi"]
    # Three manifests, two configs, three layers: the base layer of both platforms once.
    assert figures.blobs == 8
    assert figures.bytes_total == multi.size + amd64.size + arm64.size + 11 + 13 + 1000 + 300 + 70


def test_a_child_the_registry_lost_counts_nothing_and_is_named():
    amd64 = image(CONFIG_A, BASE)
    arm64 = image(CONFIG_B, OTHER)
    multi = index(amd64, arm64)
    lookup = known(multi, amd64)
    lookup[arm64.digest] = None  # answered 404
    reach = reachable([multi.digest, "sha256:" + "0" * 64], lookup)
    assert reach.missing == sorted([arm64.digest, "sha256:" + "0" * 64])
    assert blobs_of(reach.manifests) == blobs_of([multi, amd64])


def test_referrers_a_referrers_tag_lists_count_but_not_their_subject():
    app = image(CONFIG_A, BASE)
    sbom = image(blob("{}", 2), blob("sbom payload", 400), subject=app)
    referrers_tag = index(sbom)
    # The repository's tags: the image's and the referrers tag sha256-<hex>.
    reach = reachable([app.digest, referrers_tag.digest], known(app, sbom, referrers_tag))
    assert account({"app": reach.manifests}).repositories["app"].bytes_total == (
        app.size + 1011 + referrers_tag.size + sbom.size + 2 + 400)
    # Only the referrer: the subject's manifest and layers are the image's, not the signature's.
    assert blobs_of(reachable([referrers_tag.digest], known(app, sbom, referrers_tag)).manifests) == {
        referrers_tag.digest: referrers_tag.size, sbom.digest: sbom.size, digest_of(b"{}"): 2,
        digest_of(b"sbom payload"): 400}


def test_an_index_listing_itself_ends_the_walk():
    app = image(CONFIG_A, BASE)
    multi = index(app)
    lookup = known(multi, app)
    loop = Manifest(multi.digest, OCI_INDEX, json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_INDEX, "digest": multi.digest, "size": multi.size}]}).encode())
    lookup[multi.digest] = loop
    assert [manifest.digest for manifest in reachable([multi.digest], lookup).manifests] == [multi.digest]


def test_conflicting_declared_sizes_take_the_largest_and_a_missing_size_counts_zero():
    small = dict(BASE, size=10)
    unsized = {"mediaType": "x", "digest": digest_of(b"unsized")}
    first = image(CONFIG_A, BASE)
    second = image(CONFIG_A, small, unsized)
    sizes = blobs_of([second, first])
    assert sizes[BASE["digest"]] == 1000
    assert sizes[unsized["digest"]] == 0


def test_unlinked_excludes_what_a_kept_manifest_takes():
    old = image(CONFIG_A, BASE, APP)
    new = image(CONFIG_B, BASE, OTHER)
    figures = unlinked([old], [new])
    assert (figures.manifests, figures.blobs, figures.size) == (1, 3, old.size + 11 + 300)
    assert unlinked([old], [old]).to_result() == dict(manifests=0, unlinked_blobs=0, unlinked_bytes=0)


def test_deleting_an_image_with_its_referrers():
    old = image(CONFIG_A, BASE, APP)
    kept = image(CONFIG_B, BASE)
    signature = image(blob("{}", 2), blob("signature of old", 250), subject=old)
    referrers_tag = index(signature)
    lookup = known(old, kept, signature, referrers_tag)
    figures = unlinked_by_deleting([old.digest, signature.digest, referrers_tag.digest], [kept.digest], lookup)
    assert figures.manifests == 3
    assert figures.size == old.size + 11 + 300 + signature.size + 2 + 250 + referrers_tag.size
    assert figures.blobs == 7


def test_deleting_an_index_leaves_its_platform_manifests_and_their_blobs():
    amd64 = image(CONFIG_A, BASE, APP)
    multi = index(amd64)
    figures = unlinked_by_deleting([multi.digest], [], known(multi, amd64))
    assert (figures.manifests, figures.blobs, figures.size) == (1, 1, multi.size)
    # Emptying the repository deletes the platform manifests as well.
    everything = unlinked_by_deleting([multi.digest, amd64.digest], [], known(multi, amd64))
    assert everything.size == multi.size + amd64.size + 11 + 1000 + 300


def test_a_kept_index_keeps_a_platform_manifest_also_tagged_for_deletion():
    amd64 = image(CONFIG_A, BASE)
    multi = index(amd64)
    figures = unlinked_by_deleting([amd64.digest], [multi.digest], known(multi, amd64))
    assert figures.to_result() == dict(manifests=0, unlinked_blobs=0, unlinked_bytes=0)


def test_a_deleted_manifest_already_gone_counts_nothing():
    figures = unlinked_by_deleting(["sha256:" + "1" * 64], [], {})
    assert figures.to_result() == dict(manifests=0, unlinked_blobs=0, unlinked_bytes=0)
