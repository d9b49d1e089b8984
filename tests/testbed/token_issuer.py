#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal Docker registry token issuer for the test bed.

Implements the token endpoint of the distribution token authentication spec:
GET /token?service=...&scope=... with HTTP basic credentials. A known user is
granted every action it asks for; anonymous callers get a token with no access
(as Docker Hub does); a wrong password gets 401. Tokens are RS256 JWTs whose
``x5c`` header carries the signing certificate, which the registry trusts
through ``auth.token.rootcertbundle``.

Usage: token_issuer.py --port P --key key.pem --cert cert.pem --issuer I --users users.json
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

TOKEN_LIFETIME = 300


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self, key_path, cert_path, issuer, users):
        with open(key_path, "rb") as handle:
            self.key = serialization.load_pem_private_key(handle.read(), password=None)
        with open(cert_path, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.issuer = issuer
        self.users = users

    def sign(self, subject, service, access):
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": self.x5c}
        claims = {"iss": self.issuer, "sub": subject, "aud": service, "exp": now + TOKEN_LIFETIME,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)


def parse_scope(scope):
    kind, _sep, rest = scope.partition(":")
    name, _sep, actions = rest.rpartition(":")
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


def make_handler(issuer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output clean
            pass

        def _answer(self, status, body, extra_headers=None):
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/token":
                self._answer(404, {"error": "not found"})
                return
            query = parse_qs(url.query)
            subject = ""
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                user, _sep, password = base64.b64decode(header[6:]).decode().partition(":")
                if issuer.users.get(user) != password:
                    self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                 {"WWW-Authenticate": 'Basic realm="token"'})
                    return
                subject = user
            access = [parse_scope(s) for s in query.get("scope", [])] if subject else []
            token = issuer.sign(subject, query.get("service", [""])[0], access)
            self._answer(200, {"token": token, "access_token": token, "expires_in": TOKEN_LIFETIME,
                               "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--users", required=True, help="JSON file {user: password}")
    args = parser.parse_args()
    with open(args.users) as handle:
        users = json.load(handle)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Issuer(args.key, args.cert, args.issuer, users)))
    print("token issuer pid %d on 127.0.0.1:%d" % (os.getpid(), args.port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
