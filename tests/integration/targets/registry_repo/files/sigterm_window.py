#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIGTERM a real registry_repo process inside the safe-delete window, against a real registry.

A forwarding proxy on 127.0.0.1 stands between the module and the test bed registry. When
the module PUTs its first throw-away manifest under a tag, the proxy forwards it, then holds
the answer until this script has sent SIGTERM to the module process: the module is then, for
certain, between the throw-away PUT and its DELETE. Prints one JSON object: the module's
exit code and result, whether stderr held a traceback, the tag caught in the window, and
the digest that tag has afterwards.

  sigterm_window.py --registry 127.0.0.1:PORT --repository REPO --collections PATHS
                    --args '{"match": ["^t"], ...}'
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

THROWAWAY_ANNOTATION = b"io.github.dockhand.registry.throwaway"
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
TIMEOUT = 60
HOP_HEADERS = ("connection", "keep-alive", "transfer-encoding", "content-length")


class Window:
    """What the proxy saw: the tag of the first throw-away PUT, and the moment SIGTERM went out."""

    def __init__(self):
        self.entered = threading.Event()
        self.signalled = threading.Event()
        self.lock = threading.Lock()
        self.tag = None


def make_handler(upstream, window):
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = dict((k, v) for k, v in self.headers.items() if k.lower() not in HOP_HEADERS)
            connection = http.client.HTTPConnection(upstream, timeout=TIMEOUT)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                answer_headers = answer.getheaders()
            finally:
                connection.close()
            if self.command == "PUT" and "/manifests/" in self.path and body and THROWAWAY_ANNOTATION in body:
                with window.lock:
                    if window.tag is None:
                        window.tag = self.path.rsplit("/", 1)[1]
                if window.tag == self.path.rsplit("/", 1)[1]:
                    window.entered.set()
                    window.signalled.wait(TIMEOUT)
            self.send_response(answer.status)
            for key, value in answer_headers:
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
                elif key.lower() == "content-length" and self.command == "HEAD":
                    self.send_header(key, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _forward

    return Proxy


def collection_root(paths):
    for root in paths.split(os.pathsep):
        if os.path.isdir(os.path.join(root, "ansible_collections", "dockhand", "registry")):
            return root
    raise SystemExit("dockhand.registry is in none of %s" % paths)


def head_digest(registry, repository, tag):
    connection = http.client.HTTPConnection(registry, timeout=TIMEOUT)
    try:
        connection.request("HEAD", "/v2/%s/manifests/%s" % (repository, tag), headers={"Accept": ACCEPT})
        answer = connection.getresponse()
        answer.read()
        return answer.getheader("Docker-Content-Digest") if answer.status == 200 else None
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--repository", required=True)
    parser.add_argument("--collections", required=True, help="collection paths, separated by %r" % os.pathsep)
    parser.add_argument("--args", default="{}", help="more module options, as JSON")
    args = parser.parse_args()
    if not args.registry.startswith("127.0.0.1:"):
        parser.error("test bed registries on 127.0.0.1 only")

    window = Window()
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args.registry, window))
    proxy.daemon_threads = True
    # Connections the killed module leaves behind end in resets: not this test's subject.
    proxy.handle_error = lambda request, address: None
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    options = dict(json.loads(args.args), registry="127.0.0.1:%d" % proxy.server_address[1],
                   repository=args.repository)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": options}, handle)
        args_file = handle.name
    env = dict(os.environ, PYTHONPATH=collection_root(args.collections))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "ansible_collections.dockhand.registry.plugins.modules.registry_repo", args_file],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        entered = window.entered.wait(TIMEOUT)
        digest_in_window = head_digest(args.registry, args.repository, window.tag) if entered else None
        process.send_signal(signal.SIGTERM)
        window.signalled.set()
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        os.unlink(args_file)
        proxy.shutdown()
    text = stdout.decode("utf-8", "replace")
    try:
        result = json.loads(text[text.find("{"):])
    except ValueError:
        result = {"unparsed_stdout": text[-2000:]}
    json.dump({
        "rc": process.returncode,
        "result": result,
        "traceback": "Traceback" in stderr.decode("utf-8", "replace") or "Traceback" in text,
        "stderr": stderr.decode("utf-8", "replace")[-2000:],
        "entered_window": entered,
        "window_tag": window.tag,
        "digest_in_window": digest_in_window,
        "digest_after": head_digest(args.registry, args.repository, window.tag) if window.tag else None,
    }, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
