#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push a signature-like OCI 1.1 artifact whose subject is a given manifest, by digest only (no tag).

That is how a client stores a referrer on a registry with the referrers API; on distribution 2.8 nothing
but the subject field links it to its image, so garbage collection must keep it by itself.
Prints one JSON object: {"digest": ..., "blobs": [...]}.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

ARTIFACT_TYPE = "application/vnd.dockhand.test.signature.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", required=True, help="folder of the test bed's seed_registry.py")
    parser.add_argument("--registry", required=True)
    parser.add_argument("--repository", required=True)
    parser.add_argument("--subject-digest", required=True)
    parser.add_argument("--subject-media-type", required=True)
    parser.add_argument("--subject-size", type=int, required=True)
    parser.add_argument("--seed", required=True, help="makes the signature distinct between runs")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.tools)
    seed_registry = importlib.import_module("seed_registry")
    sha256_digest = seed_registry.sha256_digest

    pusher = seed_registry.Pusher(args.registry)
    config = b"{}"
    signature = json.dumps({"signed": args.subject_digest, "seed": args.seed}).encode()
    config_digest = pusher.push_blob(args.repository, config)
    signature_digest = pusher.push_blob(args.repository, signature)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": ARTIFACT_TYPE, "digest": signature_digest, "size": len(signature)}],
        "subject": {"mediaType": args.subject_media_type, "digest": args.subject_digest, "size": args.subject_size},
    }).encode()
    digest = pusher.push_manifest(args.repository, sha256_digest(manifest), manifest, OCI_MANIFEST)
    json.dump({"digest": digest, "blobs": [config_digest, signature_digest]}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
