#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push a referrer (an SBOM, a signature) of an image with a real OCI client, oras-py.

oras-py pushes the artifact manifest with its ``subject``; it does not keep the referrers tag
that registries without the referrers API need. With --update-referrers-tag this script does
that step exactly as OCI distribution-spec 1.1 says a pushing client must when the PUT answer
has no ``OCI-Subject`` header: pull the referrers tag ``<alg>-<hex>``, start from an empty index on
404, stop if it is no image index, add no duplicate, append a descriptor (artifactType from the
manifest or else its config mediaType, all its annotations), push it back.

Examples (plain http registries of the test bed):
  push_referrer.py --registry 127.0.0.1:5000 --repository app --subject sha256:... --tag sbom-1 \
      --artifact-type application/spdx+json --annotation org.example.kind=sbom --update-referrers-tag
  push_referrer.py --registry 127.0.0.1:5000 --repository app --subject sha256:... --cosign-suffix sig
Prints one JSON object: digest, size, tag, oci_subject (the header, or null), referrers_tag,
referrers_tag_updated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import oras.client
import oras.oci
import requests

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json"])
REQUEST_TIMEOUT = 30


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def subject_descriptor(base, repository, digest):
    response = requests.get("%s/v2/%s/manifests/%s" % (base, repository, digest), headers={"Accept": ACCEPT},
                            timeout=REQUEST_TIMEOUT)
    if response.status_code != 200:
        fail("subject %s of %s: HTTP %d" % (digest, repository, response.status_code))
    media_type = json.loads(response.content).get("mediaType") or response.headers["Content-Type"]
    return oras.oci.Subject(mediaType=media_type, digest=digest, size=len(response.content))


def push_with_oras(registry, repository, tag, subject, artifact_type, annotations, payload):
    with tempfile.TemporaryDirectory() as folder:
        blob = os.path.join(folder, "payload.json")
        with open(blob, "wb") as handle:
            handle.write(payload)
        config = os.path.join(folder, "config.json")
        with open(config, "w") as handle:
            handle.write("{}")
        client = oras.client.OrasClient(hostname=registry, insecure=True)
        response = client.push(target="%s/%s:%s" % (registry, repository, tag), files=[blob],
                               manifest_config="%s:%s" % (config, artifact_type),
                               manifest_annotations=annotations or None, subject=subject,
                               disable_path_validation=True, quiet=True)
    return response


def update_referrers_tag(base, repository, subject_digest, manifest_bytes, digest):
    """The spec's steps for a client whose manifest PUT got no OCI-Subject header."""
    manifest = json.loads(manifest_bytes)
    algorithm, encoded = subject_digest.split(":", 1)
    tag = "%s-%s" % (algorithm[:32], encoded[:64])
    url = "%s/v2/%s/manifests/%s" % (base, repository, tag)
    response = requests.get(url, headers={"Accept": OCI_INDEX}, timeout=REQUEST_TIMEOUT)
    if response.status_code == 404:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    elif response.status_code == 200:
        index = json.loads(response.content)
        if not isinstance(index, dict) or index.get("mediaType") != OCI_INDEX or not isinstance(
                index.get("manifests"), list):
            fail("the referrers tag %s is not an image index; not touched" % tag)
    else:
        fail("the referrers tag %s: HTTP %d" % (tag, response.status_code))
    if any(entry.get("digest") == digest for entry in index["manifests"]):
        return tag, False
    descriptor = {"mediaType": manifest["mediaType"], "digest": digest, "size": len(manifest_bytes)}
    artifact_type = manifest.get("artifactType") or manifest["config"]["mediaType"]
    descriptor["artifactType"] = artifact_type
    if manifest.get("annotations"):
        descriptor["annotations"] = manifest["annotations"]
    index["manifests"].append(descriptor)
    put = requests.put(url, data=json.dumps(index).encode(), headers={"Content-Type": OCI_INDEX},
                       timeout=REQUEST_TIMEOUT)
    if put.status_code != 201:
        fail("PUT of the referrers tag %s: HTTP %d %s" % (tag, put.status_code, put.text[:200]))
    return tag, True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", required=True, help="host:port of a plain-http registry")
    parser.add_argument("--repository", required=True)
    parser.add_argument("--subject", required=True, help="digest of the image the referrer is about")
    parser.add_argument("--tag", help="tag to push the referrer under (oras needs one)")
    parser.add_argument("--cosign-suffix", choices=("sig", "att", "sbom"),
                        help="push under cosign's tag sha256-<hex>.<suffix>, without a subject, as older cosign does")
    parser.add_argument("--artifact-type", default="application/vnd.example.sbom.v1+json")
    parser.add_argument("--annotation", action="append", default=[], help="key=value for the manifest")
    parser.add_argument("--payload", default='{"example": "sbom"}')
    parser.add_argument("--update-referrers-tag", action="store_true")
    args = parser.parse_args()

    base = "http://" + args.registry
    annotations = dict(item.split("=", 1) for item in args.annotation)
    subject = subject_descriptor(base, args.repository, args.subject)
    tag = args.tag
    if args.cosign_suffix:
        algorithm, encoded = args.subject.split(":", 1)
        tag = "%s-%s.%s" % (algorithm, encoded, args.cosign_suffix)
        subject = None
    if not tag:
        fail("give --tag or --cosign-suffix")
    response = push_with_oras(args.registry, args.repository, tag, subject, args.artifact_type, annotations,
                              args.payload.encode())
    digest = response.headers.get("Docker-Content-Digest")
    fetched = requests.get("%s/v2/%s/manifests/%s" % (base, args.repository, digest),
                           headers={"Accept": OCI_MANIFEST}, timeout=REQUEST_TIMEOUT)
    if fetched.status_code != 200:
        fail("the pushed manifest %s is not there: HTTP %d" % (digest, fetched.status_code))
    result = dict(digest=digest, size=len(fetched.content), tag=tag, oci_subject=response.headers.get("OCI-Subject"),
                  referrers_tag=None, referrers_tag_updated=False)
    if args.update_referrers_tag and subject is not None and not result["oci_subject"]:
        result["referrers_tag"], result["referrers_tag_updated"] = update_referrers_tag(
            base, args.repository, args.subject, fetched.content, digest)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
