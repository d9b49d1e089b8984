# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cases, tools, the A B A B run loop and the context they share."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from .procs import measure

MODULE_PACKAGE = "ansible_collections.dockhand.registry.plugins.modules"

# Tool kinds. Peers and floors are what the collection is compared with.
PEER = "peer"
FLOOR = "floor"
ANSIBLE = "collection, ansible-playbook"
MODULE = "collection, module work"
SCALE = "for scale, not compared"
# A set-up compared with a reference set-up, same client (e.g. the HA pair vs one replica).
VARIANT = "set-up variant"
REFERENCE_KINDS = (PEER, FLOOR)
# How the log marks a re-run that reported a change.
NOT_NOOP = "changed: not a no-op"


class SkipTool(Exception):
    """The tool cannot run here (e.g. its module is not in plugins/modules yet)."""


class VerifyFailed(Exception):
    """A run did not produce the expected outcome."""


@dataclass
class Tool:
    name: str
    kind: str
    argv: Callable[[], list]
    prepare: Optional[Callable[[], None]] = None      # untimed, before every run
    verify: Optional[Callable[[object], None]] = None  # gets the Measurement
    module: Optional[str] = None                       # collection module it needs
    timeout: float = 900.0
    results: list = field(default_factory=list)
    error: Optional[str] = None
    skipped: Optional[str] = None


@dataclass
class Target:
    text: str                # what the issue asks, in words
    check: str               # ratio_max | speedup_min | seconds_max | rss_max_mib
    tool: str
    threshold: float
    reference: Optional[str] = None


@dataclass
class Case:
    key: str
    title: str
    tools: List[Tool]
    setup: Optional[Callable[[], None]] = None
    teardown: Optional[Callable[[], None]] = None
    targets: List[Target] = field(default_factory=list)
    servers: Optional[Callable[[], list]] = None       # registries whose CPU time each run uses
    notes: List[str] = field(default_factory=list)
    error: Optional[str] = None
    seconds: float = 0.0
    env: Optional[dict] = None                         # the engine's environment, if not the context's
    engine: Optional[str] = None                       # which engine that is, for the report


class Context:
    """Paths, environment and helpers shared by all cases."""

    def __init__(self, repo_root, work, smoke, runs, env, collections_root, log):
        self.repo_root = repo_root
        self.work = work
        self.smoke = smoke
        self.runs = runs
        self.env = env
        self.collections_root = collections_root
        self.log = log
        self.python = sys.executable
        self.bench_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.bin_dir = os.path.dirname(sys.executable)
        self.inventory = self.path("playbooks", "localhost.ini")
        with open(self.inventory, "w", encoding="utf-8") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % self.python)

    def path(self, *parts):
        """A path under the run's work folder; its parent folder exists."""
        full = os.path.join(self.work, *parts)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        return full

    def module_available(self, module):
        return os.path.isfile(os.path.join(self.repo_root, "plugins", "modules", module + ".py"))

    def module_argv(self, module, args, name):
        """Run the module directly with an arguments file: the module's own work."""
        args_file = self.path("args", name + ".json")
        with open(args_file, "w", encoding="utf-8") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
        return [self.python, "-m", "%s.%s" % (MODULE_PACKAGE, module), args_file]

    def playbook_argv(self, name, tasks, hosts="localhost", inventory=None, forks=None):
        """ansible-playbook with one play, as a user runs it."""
        book = self.path("playbooks", name + ".yml")
        with open(book, "w", encoding="utf-8") as handle:
            json.dump([{"name": name, "hosts": hosts, "gather_facts": False, "tasks": tasks}], handle, indent=1)
        argv = [os.path.join(self.bin_dir, "ansible-playbook"), "-i", inventory or self.inventory, book]
        if forks:
            argv += ["--forks", str(forks)]
        return argv


def module_result(measurement):
    """The JSON a directly-run module printed; raises VerifyFailed on failure."""
    text = measurement.stdout.strip()
    start = text.find("{")
    try:
        result = json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        result = None
    if measurement.returncode != 0 or not isinstance(result, dict) or result.get("failed"):
        msg = result.get("msg") if isinstance(result, dict) else (text[-500:] + measurement.stderr[-500:])
        raise VerifyFailed("module failed (rc=%s): %s" % (measurement.returncode, msg))
    return result


def expect_module(changed=None, check=None):
    def verify(measurement):
        result = module_result(measurement)
        if changed is not None and bool(result.get("changed")) != changed:
            raise VerifyFailed("expected changed=%s, got %s" % (changed, result.get("changed")))
        if check:
            check(result)
    return verify


RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def expect_playbook(changed=None, hosts=1):
    """rc 0, every host in the recap, and (if given) changed or not on every host."""
    def verify(measurement):
        recap = RECAP.findall(measurement.stdout)
        if measurement.returncode != 0 or len(recap) != hosts or any(int(r[3]) or int(r[4]) for r in recap):
            raise VerifyFailed("playbook failed (rc=%s): %s %s" % (
                measurement.returncode, measurement.stdout[-1500:], measurement.stderr[-500:]))
        if changed is not None:
            if any((int(r[2]) > 0) != changed for r in recap):
                raise VerifyFailed("expected changed=%s on every host: %s" % (changed, recap))
    return verify


def expect_playbook_rerun():
    """A peer's re-run: it must succeed; a change it reports is recorded (the table shows it), not hidden."""
    def verify(measurement):
        expect_playbook()(measurement)
        measurement.not_noop = any(int(r[2]) > 0 for r in RECAP.findall(measurement.stdout))
    return verify


def expect_rc0(check=None):
    def verify(measurement):
        if measurement.returncode != 0:
            raise VerifyFailed("rc=%s: %s %s" % (measurement.returncode, measurement.stdout[-800:], measurement.stderr[-800:]))
        if check:
            check(measurement)
    return verify


def run_case(ctx, case, deadline):
    """Set up, then run every tool `runs` times in A B A B order."""
    started = time.monotonic()
    runs = 1 if ctx.smoke else ctx.runs
    for tool in case.tools:
        if tool.module and not ctx.module_available(tool.module):
            tool.skipped = "module %s not available yet" % tool.module
    active = [tool for tool in case.tools if not tool.skipped]
    ctx.log("== %s: %s (%d runs, tools: %s)" % (case.key, case.title, runs, ", ".join(t.name for t in active)))
    try:
        if case.setup:
            case.setup()
        for round_index in range(runs):
            for tool in active:
                if tool.error:
                    continue
                if time.monotonic() > deadline:
                    tool.error = tool.error or "stopped: the suite's time limit was reached"
                    continue
                try:
                    if tool.prepare:
                        tool.prepare()
                    argv = tool.argv()
                    servers = case.servers() if case.servers else []
                    cpu_before = sum(server.cpu_seconds() for server in servers)
                    result = measure(argv, env=case.env or ctx.env, timeout=tool.timeout)
                    result.server_cpu = sum(server.cpu_seconds() for server in servers) - cpu_before if servers else None
                    if result.timed_out:
                        raise VerifyFailed("timed out after %ss" % tool.timeout)
                    if tool.verify:
                        tool.verify(result)
                    else:
                        expect_rc0()(result)
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    tool.error = "%s: %s" % (type(exc).__name__, str(exc).replace("\n", " ")[:600])
                    ctx.log("   %-44s run %d FAILED: %s" % (tool.name, round_index + 1, tool.error))
                    continue
                result.round_index = round_index
                tool.results.append(result)
                ctx.log("   %-44s run %d: %7.3f s  %7.1f MiB  cpu %.2f s%s%s" % (
                    tool.name, round_index + 1, result.wall, result.max_rss_kib / 1024.0, result.cpu or 0.0,
                    "  (registry CPU %.1f s)" % result.server_cpu if result.server_cpu is not None else "",
                    "  " + NOT_NOOP if result.not_noop else ""))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        case.error = "%s: %s" % (type(exc).__name__, str(exc).replace("\n", " ")[:800])
        ctx.log("   case %s FAILED: %s" % (case.key, case.error))
    finally:
        if case.teardown:
            try:
                case.teardown()
            except Exception as exc:  # pylint: disable=broad-exception-caught
                ctx.log("   teardown of %s failed: %s" % (case.key, exc))
        case.seconds = time.monotonic() - started


def median_wall(tool):
    return statistics.median(r.wall for r in tool.results) if tool.results else None


def median_cpu(tool):
    values = [r.cpu for r in tool.results if getattr(r, "cpu", None) is not None]
    return statistics.median(values) if values else None


def median_server_cpu(tool):
    values = [r.server_cpu for r in tool.results if getattr(r, "server_cpu", None) is not None]
    return statistics.median(values) if values else None


def peak_rss_mib(tool):
    return max(r.max_rss_kib for r in tool.results) / 1024.0 if tool.results else None


def best_reference(case):
    """The fastest peer or floor of a case (by median), or None."""
    refs = [t for t in case.tools if t.kind in REFERENCE_KINDS and t.results]
    return min(refs, key=median_wall) if refs else None


def evaluate_target(case, target):
    """(value text, verdict) for one target of a case."""
    tools = {t.name: t for t in case.tools}
    tool = tools.get(target.tool)
    if tool is None or not tool.results:
        return "n/a", "not measured"
    if target.check == "seconds_max":
        value = median_wall(tool)
        return "%.3f s" % value, "met" if value <= target.threshold else "MISSED"
    if target.check == "rss_max_mib":
        value = peak_rss_mib(tool)
        return "%.1f MiB" % value, "met" if value <= target.threshold else "MISSED"
    ref = tools.get(target.reference)
    if ref is None or not ref.results:
        return "n/a", "not measured"
    of_medians = median_wall(tool) / median_wall(ref)
    ratio = of_medians
    paired = paired_ratio(tool, ref)
    how = "ratio of medians"
    if paired is not None:
        # Rounds alternate the tools, so the ratio within a round cancels the machine's drift
        # between rounds; its median decides when there are 3 or more pairs.
        ratio = paired
        how = "paired; %.2fx of medians" % of_medians
    if target.check == "ratio_max":
        return "%.2fx (%s)" % (ratio, how), "met" if ratio <= target.threshold else "MISSED"
    if target.check == "speedup_min":
        speedup = 1.0 / ratio
        return "%.1fx faster (%s)" % (speedup, how), "met" if speedup >= target.threshold else "MISSED"
    return "%.2fx (%s)" % (ratio, how), "reported"


def paired_ratio(tool, ref):
    """Median over rounds of tool/ref measured in the same round; None with fewer than 3 pairs."""
    ref_by_round = {getattr(r, "round_index", None): r.wall for r in ref.results}
    pairs = [r.wall / ref_by_round[r.round_index] for r in tool.results
             if getattr(r, "round_index", None) is not None and ref_by_round.get(r.round_index)]
    return statistics.median(pairs) if len(pairs) >= 3 else None


def clean_dir(path):
    shutil.rmtree(path, ignore_errors=True)
