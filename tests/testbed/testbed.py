#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The integration test bed: real distribution registries on 127.0.0.1.

  testbed.py up     start every registry (and the token issuer), write
                    tests/integration/integration_config.yml
  testbed.py down   stop exactly the processes `up` started, by PID

Registries (Debian's docker-registry, the same server as registry:2):
  plain, plain2   http, deletes enabled
  nodelete        http, deletes disabled
  tls             https with a CA made here, htpasswd basic auth (bcrypt)
  token           http, bearer token auth through token_issuer.py
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

import bcrypt
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
STATE_DIR = os.environ.get("DOCKHAND_STATE_DIR", os.path.join(REPO_ROOT, ".state"))
BED_DIR = os.path.join(STATE_DIR, "testbed")
PIDS_FILE = os.path.join(BED_DIR, "pids.json")
CONFIG_OUT = os.path.join(REPO_ROOT, "tests", "integration", "integration_config.yml")
REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
START_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write(path, data, mode=0o644):
    with open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    os.chmod(path, mode)


def make_ca_and_server_cert(folder):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockhand testbed CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    write(os.path.join(folder, "ca.pem"), ca_cert.public_bytes(pem))
    write(os.path.join(folder, "server.pem"), cert.public_bytes(pem))
    write(os.path.join(folder, "server-key.pem"), key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)


def make_token_signer(folder):
    """A self-signed RSA certificate the registry trusts for token signatures."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockhand testbed token signer")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    write(os.path.join(folder, "token-signer.pem"), cert.public_bytes(pem))
    write(os.path.join(folder, "token-signer-key.pem"), key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)


def registry_config(folder, port, delete_enabled, extra=None):
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": os.path.join(folder, "data")},
            "delete": {"enabled": delete_enabled},
            "cache": {"blobdescriptor": "inmemory"},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": "127.0.0.1:%d" % port, "secret": secrets.token_hex(16)},
    }
    config.update(extra or {})
    path = os.path.join(folder, "config.yml")
    write(path, yaml.safe_dump(config, sort_keys=False))
    return path


def process_start_time(pid):
    """The start time of a running process (field 22 of /proc/PID/stat, in clock ticks since boot), else None."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces; the fields after it start with field 3.
    return int(stat[stat.rindex(")") + 2:].split()[22 - 3])


def record(pids, name, process):
    """Remember a started process by PID and start time, so a later PID reuse is never mistaken for it."""
    pids[name] = {"pid": process.pid, "start_time": process_start_time(process.pid)}


def start(name, argv, pids):
    log_path = os.path.join(BED_DIR, name + ".log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    record(pids, name, process)
    return log_path


def wait_until_answers(name, url, log_path, verify=True):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            answer = requests.get(url, timeout=2, verify=verify)
            if answer.status_code in (200, 401):
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    with open(log_path) as log:
        tail = log.read()[-2000:]
    raise SystemExit("%s did not answer at %s within %ds:\n%s" % (name, url, START_TIMEOUT, tail))


def up():
    if os.path.exists(PIDS_FILE):
        down()
    shutil.rmtree(BED_DIR, ignore_errors=True)
    os.makedirs(BED_DIR)
    pids = {}
    settings = {}
    try:
        for name, delete_enabled in (("plain", True), ("plain2", True), ("nodelete", False)):
            folder = os.path.join(BED_DIR, name)
            os.makedirs(folder)
            port = free_port()
            log_path = start(name, [REGISTRY_BINARY, "serve", registry_config(folder, port, delete_enabled)], pids)
            wait_until_answers(name, "http://127.0.0.1:%d/v2/" % port, log_path)
            settings["registry_" + name] = "127.0.0.1:%d" % port

        folder = os.path.join(BED_DIR, "tls")
        os.makedirs(folder)
        make_ca_and_server_cert(folder)
        user, password = "tls-user", secrets.token_urlsafe(12)
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
        write(os.path.join(folder, "htpasswd"), "%s:%s\n" % (user, hashed), 0o600)
        port = free_port()
        config = registry_config(folder, port, True, {
            "auth": {"htpasswd": {"realm": "dockhand-testbed", "path": os.path.join(folder, "htpasswd")}},
        })
        with open(config) as handle:
            data = yaml.safe_load(handle)
        data["http"]["tls"] = {"certificate": os.path.join(folder, "server.pem"),
                               "key": os.path.join(folder, "server-key.pem")}
        write(config, yaml.safe_dump(data, sort_keys=False))
        log_path = start("tls", [REGISTRY_BINARY, "serve", config], pids)
        wait_until_answers("tls", "https://127.0.0.1:%d/v2/" % port, log_path, verify=os.path.join(folder, "ca.pem"))
        settings.update(registry_tls="127.0.0.1:%d" % port, registry_tls_ca=os.path.join(folder, "ca.pem"),
                        registry_tls_username=user, registry_tls_password=password)

        folder = os.path.join(BED_DIR, "token")
        os.makedirs(folder)
        make_token_signer(folder)
        user, password = "token-user", secrets.token_urlsafe(12)
        write(os.path.join(folder, "users.json"), json.dumps({user: password}), 0o600)
        issuer_port = free_port()
        issuer_log = start("token-issuer", [
            sys.executable, os.path.join(HERE, "token_issuer.py"), "--port", str(issuer_port),
            "--key", os.path.join(folder, "token-signer-key.pem"), "--cert", os.path.join(folder, "token-signer.pem"),
            "--issuer", "dockhand-testbed-issuer", "--users", os.path.join(folder, "users.json")], pids)
        port = free_port()
        realm = "http://127.0.0.1:%d/token" % issuer_port
        config = registry_config(folder, port, True, {"auth": {"token": {
            "realm": realm, "service": "dockhand-testbed", "issuer": "dockhand-testbed-issuer",
            "rootcertbundle": os.path.join(folder, "token-signer.pem")}}})
        log_path = start("token", [REGISTRY_BINARY, "serve", config], pids)
        wait_until_answers("token-issuer", realm, issuer_log)
        wait_until_answers("token", "http://127.0.0.1:%d/v2/" % port, log_path)
        settings.update(registry_token="127.0.0.1:%d" % port, registry_token_username=user,
                        registry_token_password=password, registry_token_realm=realm)
    finally:
        write(PIDS_FILE, json.dumps(pids))

    scratch = os.path.join(BED_DIR, "scratch")
    os.makedirs(scratch)
    settings.update(
        docker_host=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
        testbed_state_dir=scratch,
        testbed_python=sys.executable,
        testbed_tools=HERE,
        testbed_base_image=os.environ.get("DOCKHAND_BUSYBOX_IMAGE", "dockhand-test/busybox:latest"),
        testbed_registry_image=os.environ.get("DOCKHAND_REGISTRY_IMAGE", "dockhand-test/registry:2"),
        # moto's server mode, an S3 emulator (tests/requirements-dev.txt); empty when not installed.
        testbed_moto_server=os.environ.get("DOCKHAND_MOTO_SERVER")
        or shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "",
    )
    write(CONFIG_OUT, "# Written by tests/testbed/testbed.py up; do not commit.\n"
          + yaml.safe_dump(settings, sort_keys=True))
    print("testbed up: %s" % ", ".join("%s=%s" % (k, v) for k, v in sorted(settings.items())
                                       if k.startswith("registry_") and "password" not in k))


def stop_pid(pid, timeout=10):
    """SIGTERM one process this test bed started, SIGKILL it after ``timeout`` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            finished = 0
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        if finished:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def stop_recorded(pids_file):
    """Stop every process a PID file ({name: {pid, start_time}}) records, remove it.

    A PID whose process started at another time than recorded now belongs to some other process, and is left
    alone. Returns the names stopped, None without a file.
    """
    if not os.path.exists(pids_file):
        return None
    with open(pids_file) as handle:
        pids = json.load(handle)
    stopped = []
    for name, started in sorted(pids.items()):
        if not isinstance(started, dict) or started.get("start_time") is None:
            print("testbed: %s: no start time recorded with PID %s, not stopping it" % (name, started))
            continue
        now = process_start_time(started["pid"])
        if now is None:
            print("testbed: %s (PID %d) has already exited" % (name, started["pid"]))
        elif now != started["start_time"]:
            print("testbed: %s: PID %d is now another process (started at %d, not %d), not stopping it"
                  % (name, started["pid"], now, started["start_time"]))
        else:
            stop_pid(started["pid"])
            stopped.append(name)
    os.remove(pids_file)
    return stopped


def down():
    stopped = stop_recorded(PIDS_FILE)
    print("testbed: nothing to stop" if stopped is None else "testbed down: stopped %s" % ", ".join(stopped))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "up":
        up()
    elif command == "down":
        down()
    else:
        raise SystemExit("usage: testbed.py up|down")
