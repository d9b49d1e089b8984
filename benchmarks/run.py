#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark dockhand.registry against the docker CLI, community.docker, skopeo and a floor.

    .venv/bin/python benchmarks/run.py            # full suite, writes benchmarks/results/latest.md + ratios.png
    .venv/bin/python benchmarks/run.py --smoke    # tiny sizes, 1 run each, asserts nothing about speed
    .venv/bin/python benchmarks/run.py --only retention --runs 3

Sets up what it needs: a Docker engine (scripts/engine.sh unless DOCKER_HOST
is set), the base image (scripts/build_images.sh), the collections path
(scripts/collections.sh unless ANSIBLE_COLLECTIONS_PATH already holds both
collections), registry processes on 127.0.0.1, random images (cached in the
engine) and registry fixtures (cached under benchmarks/work/cache).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

from benchlib import fixtures  # noqa: E402  pylint: disable=wrong-import-position
from benchlib.cases import Suite  # noqa: E402  pylint: disable=wrong-import-position
from benchlib.harness import NOT_NOOP, Context, run_case  # noqa: E402  pylint: disable=wrong-import-position
from benchlib.procs import Measurement  # noqa: E402  pylint: disable=wrong-import-position
from benchlib.registry import RegistrySet  # noqa: E402  pylint: disable=wrong-import-position
from benchlib.report import write_chart, write_markdown  # noqa: E402  pylint: disable=wrong-import-position


LOG_FILES = []


def log(message):
    line = "[bench %s] %s" % (time.strftime("%H:%M:%S"), message)
    print(line, flush=True)
    for handle in LOG_FILES:
        handle.write(line + "\n")
        handle.flush()


def engine_env():
    """DOCKER_HOST of an engine that answers, via the project's scripts/engine.sh if unset."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    subprocess.run([os.path.join(REPO_ROOT, "scripts", "engine.sh")], check=True, timeout=300)
    docker_host = written_docker_host(os.path.join(REPO_ROOT, ".state", "engine.env"))
    if not docker_host:
        raise RuntimeError("scripts/engine.sh wrote no DOCKER_HOST")
    return docker_host


def written_docker_host(env_file):
    """The DOCKER_HOST an engine script wrote to env_file, or None."""
    try:
        with open(env_file, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("export DOCKER_HOST="):
                    return line.split("=", 1)[1].strip()
    except FileNotFoundError:
        pass
    return None


class ModernEngine:
    """Debian 13's engine with the containerd image store (scripts/modern_engine.sh), started on first use.

    `env` names it in DOCKER_HOST (empty while it is unknown); up() makes it answer there; stop() stops it
    only if this run started it.
    """

    STORE = "containerd"

    def __init__(self, env):
        self.env_file = os.path.join(REPO_ROOT, ".state", "engine-debian13-%s.env" % self.STORE)
        self.env = dict(env, DOCKER_HOST=written_docker_host(self.env_file) or "")
        self.started = False

    def _answers(self, docker_host):
        return subprocess.run(["docker", "version"], env=dict(self.env, DOCKER_HOST=docker_host), capture_output=True,
                              timeout=60, check=False).returncode == 0

    def up(self):
        docker_host = written_docker_host(self.env_file)
        if not docker_host or not self._answers(docker_host):
            log("starting Debian 13's engine with the %s image store (scripts/modern_engine.sh)" % self.STORE)
            subprocess.run([os.path.join(REPO_ROOT, "scripts", "modern_engine.sh"), "up", self.STORE], check=True,
                           timeout=900)
            self.started = True
            docker_host = written_docker_host(self.env_file)
        self.env["DOCKER_HOST"] = docker_host
        if not fixtures.image_id(fixtures.BASE_IMAGE, self.env):
            subprocess.run([os.path.join(REPO_ROOT, "scripts", "build_images.sh")], check=True, timeout=900, env=self.env)

    def stop(self):
        if self.started:
            subprocess.run([os.path.join(REPO_ROOT, "scripts", "modern_engine.sh"), "down", self.STORE], check=False,
                           timeout=300)


def engine_suites(ctx, registries, cache, modern):
    """The suites of one run: every case on the default engine, then the engine cases on the containerd store."""
    engine_ctx = Context(REPO_ROOT, os.path.join(ctx.work, ModernEngine.STORE), ctx.smoke, ctx.runs,
                         modern.env, ctx.collections_root, ctx.log)
    main = Suite(ctx, registries, cache=cache)
    return [main, Suite(engine_ctx, registries, cache=os.path.join(main.cache, ModernEngine.STORE),
                        engine=ModernEngine.STORE, engine_up=modern.up)]


def collections_root():
    """A collections root holding dockhand.registry and community.docker."""
    def complete(root):
        return all(os.path.isdir(os.path.join(root, "ansible_collections", *name))
                   for name in (("dockhand", "registry"), ("community", "docker")))

    for root in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
        if root and complete(root):
            return root
    root = subprocess.run([os.path.join(REPO_ROOT, "scripts", "collections.sh")], check=True, timeout=900,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    if not complete(root):
        raise RuntimeError("scripts/collections.sh gave %s, which lacks a collection" % root)
    return root


def build_env(docker_host, collections, work):
    env = dict(os.environ)
    env.update({
        "DOCKER_HOST": docker_host,
        "ANSIBLE_COLLECTIONS_PATH": collections,
        "PYTHONPATH": collections,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_LOCAL_TEMP": os.path.join(work, "ansible-tmp", "local"),
        "ANSIBLE_REMOTE_TEMP": os.path.join(work, "ansible-tmp", "remote"),
        "ANSIBLE_HOME": os.path.join(work, "ansible-home"),
    })
    for key in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        env.pop(key, None)
    return env


LOG_CASE = re.compile(r"^\[bench (\d\d:\d\d:\d\d)\] == ([^:]+): ")
LOG_RUN = re.compile(r"^\[bench (\d\d:\d\d:\d\d)\]    (.+?)\s+run (\d+): +([\d.]+) s +([\d.]+) MiB"
                     r"(?:  cpu ([\d.]+) s)?(?:  \(registry CPU (-?[\d.]+) s\))?(  " + re.escape(NOT_NOOP) + ")?$")
LOG_FAILED = re.compile(r"^\[bench (\d\d:\d\d:\d\d)\]    (.+?)\s+run (\d+) FAILED: (.*)$")
LOG_ANY = re.compile(r"^\[bench (\d\d:\d\d:\d\d)\]")


def _seconds(clock):
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def load_log(cases, log_path, main_log=None):
    """Fill the cases' results from the log of an earlier run (to re-render its report).

    A case found in this log replaces what an earlier log gave for it; a case measured only in a
    log other than ``main_log`` says which run it comes from.
    """
    by_key = {case.key: case for case in cases}
    case = None
    first = last = case_started = None
    with open(log_path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            stamp = LOG_ANY.match(line)
            if not stamp:
                continue
            now = _seconds(stamp.group(1))
            first = now if first is None else first
            if last is not None and now < last:
                now += 86400  # past midnight
            last = now
            header = LOG_CASE.match(line)
            if header:
                if case is not None:
                    case.seconds = now - case_started
                case, case_started = by_key.get(header.group(2)), now
                if case is not None:
                    for tool in case.tools:
                        tool.results, tool.error = [], None
                    case.notes = [n for n in case.notes if not n.startswith(("measured again", "measured in a separate"))]
                    if log_path != getattr(case, "first_log", log_path):
                        case.notes.append("measured again in a later run (%s), which replaces the first run's figures"
                                          % os.path.basename(log_path))
                    elif main_log and log_path != main_log:
                        case.notes.append("measured in a separate run (%s)" % os.path.basename(log_path))
                    case.first_log = getattr(case, "first_log", log_path)
                continue
            if case is None:
                continue
            tools = {tool.name: tool for tool in case.tools}
            run = LOG_RUN.match(line)
            if run and run.group(2) in tools:
                result = Measurement(wall=float(run.group(4)), max_rss_kib=int(float(run.group(5)) * 1024),
                                     returncode=0, stdout="", stderr="",
                                     cpu=float(run.group(6)) if run.group(6) else None,
                                     server_cpu=float(run.group(7)) if run.group(7) else None,
                                     round_index=int(run.group(3)) - 1, not_noop=bool(run.group(8)))
                tools[run.group(2)].results.append(result)
                continue
            failed = LOG_FAILED.match(line)
            if failed and failed.group(2) in tools:
                tools[failed.group(2)].error = failed.group(4)
    if case is not None and last is not None:
        case.seconds = last - case_started
    return cases, (last - first) if first is not None else 0.0


def select(cases, only, skip):
    chosen = [c for c in cases if not only or any(c.key.startswith(prefix) for prefix in only)]
    return [c for c in chosen if not any(c.key.startswith(prefix) for prefix in skip)]


def write_report(ctx, cases, results, elapsed, smoke):
    os.makedirs(results, exist_ok=True)
    chart_name = "ratios.png"
    chart_problem = write_chart(cases, os.path.join(results, chart_name), "dockhand.registry vs best peer (%s, %s)" % (
        "smoke" if smoke else "full run", time.strftime("%Y-%m-%d", time.gmtime())))
    if chart_problem:
        log(chart_problem)
    write_markdown(ctx, cases, os.path.join(results, "latest.md"), chart_name, elapsed)
    log("wrote %s (%.0f s)" % (os.path.join(results, "latest.md"), elapsed))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run each (make test)")
    parser.add_argument("--runs", type=int, default=5, help="runs per tool in full mode (default 5)")
    parser.add_argument("--only", action="append", default=[], help="run only cases whose key starts with this")
    parser.add_argument("--skip", action="append", default=[], help="skip cases whose key starts with this")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--report-from-log", metavar="LOG", action="append",
                        help="render latest.md and the chart again from the log of an earlier run (no measuring); "
                             "repeat it to merge logs: a case in a later log replaces the earlier log's figures")
    parser.add_argument("--results", help="folder for latest.md and ratios.png (default: benchmarks/results, "
                                          "or benchmarks/work/smoke-results with --smoke)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds after which no new run starts (default 5400, smoke 600)")
    parser.add_argument("--keep-work", action="store_true", help="keep benchmarks/work/run (archives, playbooks)")
    parser.add_argument("--purge", action="store_true",
                        help="afterwards also remove the cached fixtures and the dockhand-bench/* images")
    args = parser.parse_args()
    if args.runs < 1 or args.runs > 50:
        parser.error("--runs must be between 1 and 50")

    if args.list or args.report_from_log:
        scratch = tempfile.mkdtemp(prefix="bench-list-")
        try:
            ctx = Context(REPO_ROOT, scratch, args.smoke, args.runs, dict(os.environ), "", log)
            cases = select([case for suite in engine_suites(ctx, None, scratch, ModernEngine(ctx.env)) for case in suite.cases()],
                           args.only, args.skip)
            if args.list:
                for case in cases:
                    print("%-22s %s" % (case.key, case.title))
                return 0
            elapsed = 0.0
            for log_path in args.report_from_log:
                cases, seconds = load_log(cases, log_path, args.report_from_log[0])
                elapsed += seconds
            cases = [case for case in cases if any(tool.results or tool.error for tool in case.tools)]
            results = args.results or os.path.join(BENCH_DIR, "work", "smoke-results" if args.smoke else "results")
            if not args.results and not args.smoke:
                results = os.path.join(BENCH_DIR, "results")
            write_report(ctx, cases, results, elapsed, args.smoke)
            return 0
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    started = time.monotonic()
    time_limit = args.time_limit or (600.0 if args.smoke else 5400.0)
    deadline = started + time_limit
    os.makedirs(os.path.join(BENCH_DIR, "work"), exist_ok=True)
    # One run at a time: a second one would wipe the first one's work folder and registries.
    lock = open(os.path.join(BENCH_DIR, "work", ".lock"), "w", encoding="utf-8")  # pylint: disable=consider-using-with
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        parser.error("another benchmarks/run.py is running (benchmarks/work/.lock is held)")
    work = os.path.join(BENCH_DIR, "work", "run-smoke" if args.smoke else "run")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    if args.smoke:
        results = args.results or os.path.join(BENCH_DIR, "work", "smoke-results")
    else:
        results = args.results or os.path.join(BENCH_DIR, "results")
    os.makedirs(results, exist_ok=True)
    # The log is the raw record of every run: --report-from-log renders the report again from it.
    LOG_FILES.append(open(os.path.join(results, "latest.log"), "w", encoding="utf-8"))  # pylint: disable=consider-using-with

    docker_host = engine_env()
    env_for_build = dict(os.environ, DOCKER_HOST=docker_host)
    if not fixtures.image_id(fixtures.BASE_IMAGE, env_for_build):
        subprocess.run([os.path.join(REPO_ROOT, "scripts", "build_images.sh")], check=True, timeout=900, env=env_for_build)
    collections = collections_root()
    env = build_env(docker_host, collections, work)
    ctx = Context(REPO_ROOT, work, args.smoke, args.runs, env, collections, log)
    registries = RegistrySet(os.path.join(work, "registries"))
    modern = ModernEngine(env)
    suites = engine_suites(ctx, registries, None, modern)
    cases = select([case for each in suites for case in each.cases()], args.only, args.skip)
    log("%s run: %d cases, DOCKER_HOST=%s, collections %s, %d cores" % (
        "smoke" if args.smoke else "full", len(cases), docker_host, collections, os.cpu_count() or 0))

    def stop(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, stop)
    interrupted = False
    try:
        for case in cases:
            run_case(ctx, case, deadline)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: writing what was measured")
    finally:
        registries.stop_all()
    try:
        elapsed = time.monotonic() - started
        write_report(ctx, cases, results, elapsed, args.smoke)
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
        if args.purge:
            shutil.rmtree(os.path.join(BENCH_DIR, "work"), ignore_errors=True)
            for each in suites:
                if each.engine and not each.ctx.env.get("DOCKER_HOST"):
                    continue  # that engine was not used in this run
                for size in ("big", "big2", "copy", "fleet"):
                    if each.sizes.get(size):
                        fixtures.remove_image(each.sizes[size][0], each.ctx.env)
    finally:
        modern.stop()
    failures = [c.key for c in cases if c.error] + [
        "%s/%s" % (c.key, t.name) for c in cases for t in c.tools if t.error]
    for failure in failures:
        log("FAILED: %s" % failure)
    skipped = ["%s/%s" % (c.key, t.name) for c in cases for t in c.tools if t.skipped]
    for skip in skipped:
        log("skipped: %s (%s)" % (skip, [t.skipped for c in cases for t in c.tools if t.skipped][0]))
    if interrupted:
        return 130
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
