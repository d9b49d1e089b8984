#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Profile one module run with py-spy (all threads) and summarize where the time goes.

    .venv/bin/python benchmarks/profile_module.py --module registry_repo_info \\
        --args '{"registry": "127.0.0.1:PORT"}' --out benchmarks/results/profiles/catalog.txt

``--registry-fixture NAME`` serves a cached fixture from benchmarks/work/cache/registries/NAME
on a fresh 127.0.0.1 port first (``{registry}`` in --args is replaced by its host), and
``--restore`` copies the fixture instead of serving it (for runs that delete).
The summary lists the functions with the most samples, inclusive and self, over every thread
(idle threads waiting on a lock or a socket are kept: waiting is where a client's time goes).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

from benchlib.registry import Registry  # noqa: E402  pylint: disable=wrong-import-position

MODULE_PACKAGE = "ansible_collections.dockhand.registry.plugins.modules"


def summarize(raw_path, top):
    """Inclusive and self sample counts per function from py-spy's raw (collapsed) output."""
    inclusive = collections.Counter()
    own = collections.Counter()
    total = 0
    with open(raw_path, encoding="utf-8") as handle:
        for line in handle:
            stack, _sep, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            count = int(count)
            total += count
            frames = stack.split(";")
            for frame in set(frames[1:]):
                inclusive[frame] += count
            own[frames[-1]] += count
    lines = ["samples: %d (all threads, 100 Hz)" % total, "", "inclusive (function present in the stack):"]
    for frame, count in inclusive.most_common(top):
        lines.append("  %5.1f%%  %s" % (100.0 * count / max(total, 1), frame))
    lines += ["", "self (function on top of the stack):"]
    for frame, count in own.most_common(top):
        lines.append("  %5.1f%%  %s" % (100.0 * count / max(total, 1), frame))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", required=True)
    parser.add_argument("--args", required=True, help="module arguments as JSON; {registry} is replaced")
    parser.add_argument("--registry-fixture")
    parser.add_argument("--restore", action="store_true")
    parser.add_argument("--empty-target", action="store_true",
                        help="also start an empty registry; {target} in --args is replaced by its host")
    parser.add_argument("--out", required=True, help="summary file (the raw py-spy output goes to benchmarks/work/profile)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    work = os.path.join(BENCH_DIR, "work", "profile")
    os.makedirs(work, exist_ok=True)
    registry = None
    module_args = args.args
    if args.registry_fixture:
        fixture = os.path.join(BENCH_DIR, "work", "cache", "registries", args.registry_fixture)
        registry = Registry(work, "profiled")
        if args.restore:
            shutil.rmtree(registry.storage, ignore_errors=True)
            shutil.copytree(fixture, registry.storage, symlinks=True)
        else:
            registry.storage = fixture
        registry.start()
        module_args = module_args.replace("{registry}", registry.host)
    target = None
    if args.empty_target:
        target = Registry(work, "target")
        shutil.rmtree(target.storage, ignore_errors=True)
        target.start()
        module_args = module_args.replace("{target}", target.host)
    try:
        args_file = os.path.join(work, "args.json")
        with open(args_file, "w", encoding="utf-8") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": json.loads(module_args)}, handle)
        raw = os.path.join(work, os.path.basename(os.path.splitext(args.out)[0]) + ".collapsed.txt")
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        py_spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
        collections_root = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep)[0] or os.path.join(
            REPO_ROOT, ".state", "collections")
        env = dict(os.environ, PYTHONPATH=collections_root)
        started = time.monotonic()
        result = subprocess.run([py_spy, "record", "--idle", "--threads", "--rate", "100", "--format", "raw",
                                 "--output", raw, "--", sys.executable, "-m", "%s.%s" % (MODULE_PACKAGE, args.module),
                                 args_file], capture_output=True, text=True, timeout=args.timeout, check=False, env=env)
        elapsed = time.monotonic() - started
        if result.returncode != 0 or '"failed": true' in result.stdout:
            print(result.stdout[-2000:], result.stderr[-2000:])
        servers = [server for server in (registry, target) if server]
        registry_text = ", registry CPU %.1f s" % sum(server.cpu_seconds() for server in servers) if servers else ""
    finally:
        for server in (registry, target):
            if server:
                server.stop()
    text = "module %s, args %s\nwall %.2f s (under py-spy)%s\n\n%s\n" % (
        args.module, module_args, elapsed, registry_text, summarize(raw, args.top))
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(text)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
