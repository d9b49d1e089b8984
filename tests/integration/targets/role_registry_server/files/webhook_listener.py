#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tiny webhook receiver for the notification test.

Appends every POST body as one line to --out, writes its PID to --pidfile and
exits on its own after --lifetime seconds so a failed test cannot leave it behind.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--lifetime", type=float, default=300)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with open(args.out, "a") as handle:
                handle.write(json.dumps({"path": self.path, "body": body.decode("utf-8", "replace")}) + "\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *dummy):
            pass

    server = HTTPServer(("127.0.0.1", args.port), Handler)
    server.timeout = 0.5
    with open(args.pidfile, "w") as handle:
        handle.write(str(os.getpid()))
    deadline = time.monotonic() + min(args.lifetime, 900)
    while time.monotonic() < deadline:
        server.handle_request()
    server.server_close()


if __name__ == "__main__":
    main()
