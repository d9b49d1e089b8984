#!/usr/bin/env python
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HA pair's helpers: Debian's redis-server and nginx on 127.0.0.1, started and stopped by PID.

  ha.py up --dir D --redis-port P --redis-password-file F --balancer-port N --replica 127.0.0.1:A ...
            start redis-server (password from F, no persistence) and nginx (non-daemon, round robin over the
            replicas) and, with --hook-port, the role target's webhook receiver writing D/hook.jsonl;
            with --moto-server and --moto-port, moto's server mode (an S3 emulator) as well;
            PIDs go to D/ha-pids.json
  ha.py down --dir D
            stop exactly those PIDs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time

from testbed import REPO_ROOT, record, stop_recorded

START_TIMEOUT = 20
# The role target's webhook receiver; one left behind by a killed test run stops by itself after its lifetime.
RECEIVER = os.path.join(REPO_ROOT, "tests", "integration", "targets", "role_registry_server", "files",
                        "webhook_listener.py")
RECEIVER_LIFETIME = 1200

NGINX_CONFIG = """daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 128; }}
http {{
  access_log {dir}/nginx-access.log;
  client_body_temp_path {dir}/nginx-tmp/body;
  proxy_temp_path {dir}/nginx-tmp/proxy;
  fastcgi_temp_path {dir}/nginx-tmp/fastcgi;
  uwsgi_temp_path {dir}/nginx-tmp/uwsgi;
  scgi_temp_path {dir}/nginx-tmp/scgi;
  # Layers are streamed to the registry as they come, of any size.
  client_max_body_size 0;
  proxy_request_buffering off;
  proxy_buffering off;
  upstream replicas {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{port};
    location /v2/ {{
      proxy_pass http://replicas;
      # The registry builds upload URLs from Host: the client keeps talking to the balancer.
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 300s;
      proxy_connect_timeout 2s;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 2;
    }}
  }}
}}
"""


def wait_for_port(port, process, name, log_path):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    with open(log_path, errors="replace") as log:
        tail = log.read()[-2000:]
    raise SystemExit("%s did not listen on 127.0.0.1:%d within %ds:\n%s" % (name, port, START_TIMEOUT, tail))


def start(folder, name, argv, port, pids):
    log_path = os.path.join(folder, name + ".log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    record(pids, name, process)
    wait_for_port(port, process, name, log_path)


def up(args):
    folder = os.path.abspath(args.dir)
    os.makedirs(folder, exist_ok=True)
    pids_file = os.path.join(folder, "ha-pids.json")
    pids = {}
    try:
        with open(args.redis_password_file) as handle:
            password = handle.read().strip()
        redis_config = os.path.join(folder, "redis.conf")
        with open(os.open(redis_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write("bind 127.0.0.1\nport %d\nprotected-mode yes\nrequirepass %s\nsave \"\"\n"
                         "appendonly no\ndaemonize no\ndir %s\n" % (args.redis_port, password, folder))
        start(folder, "redis", [shutil.which("redis-server") or "/usr/bin/redis-server", redis_config],
              args.redis_port, pids)

        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(folder, "nginx-tmp", sub), exist_ok=True)
        servers = "\n".join("    server %s max_fails=1 fail_timeout=60s;" % replica for replica in args.replica)
        nginx_config = os.path.join(folder, "nginx.conf")
        with open(nginx_config, "w") as handle:
            handle.write(NGINX_CONFIG.format(dir=folder, servers=servers, port=args.balancer_port))
        start(folder, "nginx", [shutil.which("nginx") or "/usr/sbin/nginx", "-c", nginx_config, "-p", folder,
                                "-e", os.path.join(folder, "nginx-error.log")], args.balancer_port, pids)
        if args.hook_port:
            start(folder, "receiver", [sys.executable, RECEIVER, "--port", str(args.hook_port),
                                       "--out", os.path.join(folder, "hook.jsonl"),
                                       "--pidfile", os.path.join(folder, "receiver.pid"),
                                       "--lifetime", str(RECEIVER_LIFETIME)], args.hook_port, pids)
        if args.moto_server:
            start(folder, "moto", [args.moto_server, "-H", "127.0.0.1", "-p", str(args.moto_port)], args.moto_port, pids)
    finally:
        with open(pids_file, "w") as handle:
            json.dump(pids, handle)
    print(json.dumps({"redis": "127.0.0.1:%d" % args.redis_port, "balancer": "127.0.0.1:%d" % args.balancer_port}))


def down(args):
    stopped = stop_recorded(os.path.join(os.path.abspath(args.dir), "ha-pids.json"))
    print("ha: nothing to stop" if stopped is None else "ha: stopped %s" % ", ".join(stopped))


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("up")
    start_parser.add_argument("--dir", required=True)
    start_parser.add_argument("--redis-port", type=int, required=True)
    start_parser.add_argument("--redis-password-file", required=True)
    start_parser.add_argument("--balancer-port", type=int, required=True)
    start_parser.add_argument("--replica", action="append", required=True, help="host:port of one replica")
    start_parser.add_argument("--hook-port", type=int, default=0)
    start_parser.add_argument("--moto-server", default="", help="moto_server executable (S3 emulator)")
    start_parser.add_argument("--moto-port", type=int, default=0)
    stop_parser = commands.add_parser("down")
    stop_parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    {"up": up, "down": down}[args.command](args)


if __name__ == "__main__":
    main()
