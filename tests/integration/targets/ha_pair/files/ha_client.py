#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry client for the HA pair scenarios (plain HTTP API v2 on 127.0.0.1, bounded retries).

  push-with-kill   push a multi-layer image through the balancer in chunks, kill one replica's container
                   in the middle of a layer, retry a failed layer from its start (at most --retries times)
  pull-check       pull a manifest by digest from one replica and every blob it names, checking digests
  chunked-across   begin a chunked upload on one replica, send chunks alternately to both, finish it on
                   the other
Each prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import requests

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MIB = 1024 * 1024
TIMEOUT = 60


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def absolute(base, location, host=None):
    """The upload URL of a Location header, optionally sent to another replica (host:port)."""
    url = location if "://" in location else base + location
    if host:
        parts = urlsplit(url)
        url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


class UploadFailed(Exception):
    pass


def checked(answer, *expected):
    if answer.status_code not in expected:
        raise UploadFailed("%s %s -> %d %s" % (answer.request.method, answer.request.url.split("?")[0],
                                               answer.status_code, answer.text[:200]))
    return answer


def chunked_upload(session, base, repository, data, chunk, between_chunks=None):
    """POST, PATCH every chunk, PUT with the digest; ``between_chunks(index)`` runs after each PATCH."""
    started = checked(session.post("%s/v2/%s/blobs/uploads/" % (base, repository), timeout=TIMEOUT), 202)
    location = absolute(base, started.headers["Location"])
    for index, offset in enumerate(range(0, len(data), chunk)):
        piece = data[offset:offset + chunk]
        answer = checked(session.patch(location, data=piece, timeout=TIMEOUT, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": "%d-%d" % (offset, offset + len(piece) - 1)}), 202)
        location = absolute(base, answer.headers["Location"])
        if between_chunks:
            between_chunks(index)
    separator = "&" if "?" in location else "?"
    checked(session.put(location + separator + "digest=" + digest_of(data), timeout=TIMEOUT), 201)
    return digest_of(data)


def push_with_kill(args):
    base = "http://" + args.balancer
    session = requests.Session()
    generator = random.Random(args.seed)
    layers = [generator.randbytes(args.layer_mib * MIB) for _index in range(args.layers)]
    state = {"killed": False, "retries": 0, "errors": []}

    def kill_once(chunk_index, layer_index):
        if not state["killed"] and layer_index == args.kill_at_layer and chunk_index == 0:
            subprocess.run(["docker", "kill", args.kill_container], check=True, capture_output=True, timeout=60)
            state["killed"] = True

    descriptors = []
    for layer_index, data in enumerate(layers):
        for attempt in range(args.retries + 1):
            try:
                chunked_upload(session, base, args.repository, data, args.chunk_kib * 1024,
                               lambda chunk_index, layer=layer_index: kill_once(chunk_index, layer))
                break
            except (UploadFailed, requests.RequestException) as exc:
                state["errors"].append(str(exc)[:200])
                if attempt == args.retries:
                    raise SystemExit("layer %d failed %d times: %s" % (layer_index, attempt + 1, exc))
                state["retries"] += 1
                time.sleep(1)
        descriptors.append({"mediaType": DOCKER_LAYER, "size": len(data), "digest": digest_of(data)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [item["digest"] for item in descriptors]}}).encode()
    chunked_upload(session, base, args.repository, config, len(config))
    manifest = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": {
        "mediaType": DOCKER_CONFIG, "size": len(config), "digest": digest_of(config)},
        "layers": descriptors}).encode()
    for attempt in range(args.retries + 1):
        answer = session.put("%s/v2/%s/manifests/%s" % (base, args.repository, args.tag), data=manifest,
                             headers={"Content-Type": DOCKER_MANIFEST}, timeout=TIMEOUT)
        if answer.status_code == 201:
            break
        state["retries"] += 1
        time.sleep(1)
    else:
        raise SystemExit("manifest PUT failed: %d %s" % (answer.status_code, answer.text[:200]))
    print(json.dumps({"digest": digest_of(manifest), "killed": state["killed"], "retries": state["retries"],
                      "errors": state["errors"], "layers": [item["digest"] for item in descriptors],
                      "config": digest_of(config)}))


def pull_check(args):
    base = "http://" + args.registry
    session = requests.Session()
    answer = session.get("%s/v2/%s/manifests/%s" % (base, args.repository, args.digest), timeout=TIMEOUT,
                         headers={"Accept": DOCKER_MANIFEST + ", application/vnd.oci.image.manifest.v1+json"})
    if answer.status_code != 200 or digest_of(answer.content) != args.digest:
        raise SystemExit("%s: manifest %s -> %d" % (args.registry, args.digest, answer.status_code))
    manifest = answer.json()
    blobs = [manifest["config"]] + manifest["layers"]
    for blob in blobs:
        hasher = hashlib.sha256()
        size = 0
        with session.get("%s/v2/%s/blobs/%s" % (base, args.repository, blob["digest"]), stream=True,
                         timeout=TIMEOUT) as streamed:
            if streamed.status_code != 200:
                raise SystemExit("%s: blob %s -> %d" % (args.registry, blob["digest"], streamed.status_code))
            for piece in streamed.iter_content(MIB):
                hasher.update(piece)
                size += len(piece)
        if "sha256:" + hasher.hexdigest() != blob["digest"] or size != blob["size"]:
            raise SystemExit("%s: blob %s has the wrong content" % (args.registry, blob["digest"]))
    print(json.dumps({"registry": args.registry, "blobs": len(blobs)}))


def chunked_across(args):
    replicas = [args.first, args.second]
    session = requests.Session()
    data = random.Random(args.seed).randbytes(4 * args.chunk_kib * 1024)
    chunk = args.chunk_kib * 1024
    base = "http://" + replicas[0]
    started = checked(session.post("%s/v2/%s/blobs/uploads/" % (base, args.repository), timeout=TIMEOUT), 202)
    location = started.headers["Location"]
    hops = [replicas[0]]
    for index, offset in enumerate(range(0, len(data), chunk)):
        target = replicas[(index + 1) % 2]
        answer = checked(session.patch(absolute(base, location, target), data=data[offset:offset + chunk],
                                       headers={"Content-Type": "application/octet-stream"}, timeout=TIMEOUT), 202)
        location = answer.headers["Location"]
        hops.append(target)
    finish = replicas[1] if hops[-1] == replicas[0] else replicas[0]
    url = absolute(base, location, finish)
    checked(session.put(url + ("&" if "?" in url else "?") + "digest=" + digest_of(data), timeout=TIMEOUT), 201)
    hops.append(finish)
    for replica in replicas:
        checked(session.head("http://%s/v2/%s/blobs/%s" % (replica, args.repository, digest_of(data)),
                             timeout=TIMEOUT), 200)
    print(json.dumps({"digest": digest_of(data), "hops": hops}))


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push-with-kill")
    push.add_argument("--balancer", required=True)
    push.add_argument("--repository", required=True)
    push.add_argument("--tag", required=True)
    push.add_argument("--layers", type=int, default=6)
    push.add_argument("--layer-mib", type=int, default=2)
    push.add_argument("--chunk-kib", type=int, default=512)
    push.add_argument("--kill-container", required=True)
    push.add_argument("--kill-at-layer", type=int, default=3)
    push.add_argument("--retries", type=int, default=3)
    push.add_argument("--seed", default="ha")
    pull = commands.add_parser("pull-check")
    pull.add_argument("--registry", required=True)
    pull.add_argument("--repository", required=True)
    pull.add_argument("--digest", required=True)
    across = commands.add_parser("chunked-across")
    across.add_argument("--first", required=True)
    across.add_argument("--second", required=True)
    across.add_argument("--repository", required=True)
    across.add_argument("--chunk-kib", type=int, default=256)
    across.add_argument("--seed", default="across")
    args = parser.parse_args()
    {"push-with-kill": push_with_kill, "pull-check": pull_check, "chunked-across": chunked_across}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
