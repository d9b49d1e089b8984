# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark cases of issue 5, each with its peers, floor and targets."""

from __future__ import annotations

import os
import shutil

import requests

from . import fixtures
from .harness import (
    ANSIBLE, FLOOR, MODULE, PEER, SCALE, VARIANT, Case, Target, Tool, VerifyFailed, expect_module, expect_playbook,
    expect_playbook_rerun, expect_rc0,
)
from .ha import HaPair, RoleRegistries, count_blobs
from .procs import check_call
from .registry import REGISTRY_BINARY, FakeV3Registry, Registry

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])

# Deletes by digest an untag run may send: throw-away manifests, at most one per connection
# (registry_repo's default concurrency) while its probe for tag delete is out.
UNTAG_PROBE_DIGEST_DELETES = 8
# The HA cases: their repository, and what their figures include.
HA_REPOSITORY = "ha/big"
HA_NOTES = ["the HA pair: nginx (1 worker, streaming both ways) round robin over two docker-registry replicas sharing "
            "one storage folder and http.secret, redis blob-descriptor cache, all on 127.0.0.1 "
            "(tests/testbed/ha.py starts redis and nginx); its registry CPU counts both replicas, nginx and redis, "
            "the direct rows' only replica a. The image is an OCI layout of random gzip layers written once "
            "(no engine), so skopeo pushes its blobs as they are."]
# Tags of the retention row whose tags all share one image.
SHARED_RETENTION_TAGS = 300
FULL = {
    "big": ("dockhand-bench/big:1g", [256] * 4),
    "big2": ("dockhand-bench/big:2g", [256] * 8),
    "retention": (1000, 2),            # tags, log10 of the kept count
    "catalog": 10000,
    "taglist": 10000,
    "copy": ("dockhand-bench/copy:500m", [250, 250]),
    "fleet": ("dockhand-bench/fleet:200m", [100, 100]),
    "fleet_sizes": [1, 2, 5, 10],
}
SMOKE = {
    "big": ("dockhand-bench/big:smoke", [2, 2]),
    "big2": None,
    "retention": (20, 1),
    "catalog": 30,
    "taglist": 30,
    "copy": ("dockhand-bench/copy:smoke", [2, 2]),
    "fleet": ("dockhand-bench/fleet:smoke", [1, 1]),
    "fleet_sizes": [2],
}


def _write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _rm(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def _file_at_least(path, size):
    def check(_measurement):
        if not os.path.isfile(path) or os.path.getsize(path) < size:
            raise VerifyFailed("%s missing or smaller than %d bytes" % (path, size))
    return check


def manifest_digest(registry, repository, tag):
    resp = requests.head("%s/v2/%s/manifests/%s" % (registry.url, repository, tag),
                         headers={"Accept": MANIFEST_ACCEPT}, timeout=30)
    return resp.headers.get("Docker-Content-Digest") if resp.status_code == 200 else None


class Suite:
    """Builds the cases; holds fixtures shared by several of them.

    With `engine` (a name, e.g. "containerd", and engine_up, which makes that engine answer at
    ctx.env's DOCKER_HOST), the suite holds only the engine cases, keyed "<engine>-<case>", run on
    that engine instead of the default one.
    """

    def __init__(self, ctx, registries, cache=None, engine=None, engine_up=None):
        self.ctx = ctx
        self.registries = registries
        self.sizes = SMOKE if ctx.smoke else FULL
        self.cache = cache or os.path.join(os.path.dirname(ctx.work), "cache")
        os.makedirs(self.cache, exist_ok=True)
        self._source = None
        self.engine = engine
        self.engine_up = engine_up

    # ---------------------------------------------------------------- helpers
    def engine_image(self, key):
        name, layers = self.sizes[key]
        image = fixtures.build_random_image(name, layers, self.ctx.env, log=self.ctx.log)
        return name, image, sum(layers) << 20

    def registry_snapshot(self, name, seed, kind=Registry):
        """A cached registry storage folder, seeded once by seed(registry) on a registry of that kind."""
        path = os.path.join(self.cache, "registries", name)
        if not os.path.isdir(path):
            self.ctx.log("   seeding registry fixture %s (cached for later runs)" % name)
            builder = kind(os.path.join(self.ctx.work, "seeding"), name)
            builder.start()
            try:
                seed(builder)
            finally:
                builder.stop()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.rename(builder.storage, path)
        return path

    def source_registry(self):
        """Registry serving the copy and fleet images (pushed once with docker push)."""
        if self._source:
            return self._source
        copy_name, _copy_layers = self.sizes["copy"]
        fleet_name, _fleet_layers = self.sizes["fleet"]
        for key in ("copy", "fleet"):
            self.engine_image(key)

        def seed(registry):
            for name in (copy_name, fleet_name):
                remote = "%s/%s" % (registry.host, name.split("/", 1)[1])
                check_call(["docker", "tag", name, remote], env=self.ctx.env)
                try:
                    check_call(["docker", "push", remote], env=self.ctx.env, timeout=1800)
                finally:
                    check_call(["docker", "rmi", remote], env=self.ctx.env)

        storage = self.registry_snapshot("source-%s-%s" % (copy_name.split(":")[1], fleet_name.split(":")[1]), seed)
        self._source = self.registries.get("source").use_storage(storage)
        return self._source

    def startup_tool(self):
        """What every Ansible module pays before doing anything: the interpreter and AnsibleModule's import."""
        return Tool("python + import ansible.module_utils.basic (any module's start-up)", SCALE,
                    lambda: [self.ctx.python, "-c", "import ansible.module_utils.basic"])

    def registry_args(self, registry, **extra):
        args = {"registry": registry.host}
        args.update(extra)
        return args

    # ------------------------------------------------------------ engine cases
    def case_save(self, key="big"):
        ctx = self.ctx
        state = {}
        name_label = self.sizes[key][0].split(":")[1]
        case_key = "save-" + name_label
        paths = {tool: ctx.path("save-%s" % name_label, tool + ".tar") for tool in ("docker", "cdocker", "ansible", "module")}

        def setup():
            state["name"], state["id"], state["size"] = self.engine_image(key)

        def prep(tool):
            return lambda: _rm(paths[tool])

        def size_check(tool):
            def check(measurement):
                _file_at_least(paths[tool], state["size"])(measurement)
            return check

        tools = [
            Tool("docker save -o", PEER, lambda: ["docker", "save", "-o", paths["docker"], state["name"]],
                 prepare=prep("docker"), verify=expect_rc0(size_check("docker"))),
            Tool("community.docker.docker_image_export", PEER, lambda: ctx.playbook_argv("export-" + name_label, [{
                "community.docker.docker_image_export": {"names": [state["name"]], "path": paths["cdocker"]}}]),
                prepare=prep("cdocker"), verify=expect_playbook(changed=True)),
            Tool("image_archive saved (ansible-playbook)", ANSIBLE, lambda: ctx.playbook_argv("save-" + name_label, [{
                "dockhand.registry.image_archive": {"state": "saved", "names": [state["name"]], "path": paths["ansible"]}}]),
                prepare=prep("ansible"), verify=expect_playbook(changed=True), module="image_archive"),
            Tool("image_archive saved (module work)", MODULE, lambda: ctx.module_argv("image_archive", {
                "state": "saved", "names": [state["name"]], "path": paths["module"]}, "save-" + name_label),
                prepare=prep("module"), verify=expect_module(changed=True), module="image_archive"),
        ]
        targets = [
            Target("module work <= 1.05x docker save", "ratio_max", "image_archive saved (module work)", 1.05, "docker save -o"),
            Target("module peak RSS <= 64 MiB", "rss_max_mib", "image_archive saved (module work)", 64),
        ]
        if key == "big2":
            # At 2 GiB only the memory promise is new: the peers' rows would repeat save-1g.
            tools = [tools[0], tools[3]]
            targets = targets[1:] + [Target("module work vs docker save (reported)", "ratio", "image_archive saved (module work)",
                                            0, "docker save -o")]
        return Case(case_key, "save a %s image (random layers) to a tar file" % name_label, tools, setup=setup,
                    teardown=lambda: [_rm(p) for p in paths.values()], targets=targets)

    def load_archive(self):
        """docker save of the big image, cached: the archive every load case reads."""
        name, image, size = self.engine_image("big")
        path = os.path.join(self.cache, "%s.tar" % name.replace("/", "_").replace(":", "_"))
        if not os.path.isfile(path):
            check_call(["docker", "save", "-o", path + ".tmp", name], env=self.ctx.env, timeout=1800)
            os.rename(path + ".tmp", path)
        return name, image, size, path

    def case_load(self):
        ctx = self.ctx
        state = {}

        def setup():
            state["name"], state["id"], _size, state["archive"] = self.load_archive()

        def remove_image():
            fixtures.remove_image(state["name"], ctx.env)
            if fixtures.image_id(state["name"], ctx.env):
                raise VerifyFailed("could not remove %s before loading" % state["name"])

        def loaded(_measurement):
            if fixtures.image_id(state["name"], ctx.env) != state["id"]:
                raise VerifyFailed("%s is not back with ID %s" % (state["name"], state["id"]))

        def teardown():
            if fixtures.image_id(state.get("name", ""), ctx.env) is None and state.get("archive"):
                check_call(["docker", "load", "-i", state["archive"]], env=ctx.env, timeout=1800)

        tools = [
            Tool("docker load -i", PEER, lambda: ["docker", "load", "-i", state["archive"]],
                 prepare=remove_image, verify=expect_rc0(loaded)),
            Tool("community.docker.docker_image_load", PEER, lambda: ctx.playbook_argv("load", [{
                "community.docker.docker_image_load": {"path": state["archive"]}}]),
                prepare=remove_image, verify=lambda m: (expect_playbook(changed=True)(m), loaded(m))),
            Tool("image_archive loaded (ansible-playbook)", ANSIBLE, lambda: ctx.playbook_argv("load-module", [{
                "dockhand.registry.image_archive": {"state": "loaded", "path": state["archive"]}}]),
                prepare=remove_image, verify=lambda m: (expect_playbook(changed=True)(m), loaded(m)), module="image_archive"),
            Tool("image_archive loaded (module work)", MODULE, lambda: ctx.module_argv("image_archive", {
                "state": "loaded", "path": state["archive"]}, "load"),
                prepare=remove_image, verify=lambda m: (expect_module(changed=True)(m), loaded(m)), module="image_archive"),
        ]
        targets = [Target("module work <= 1.05x docker load", "ratio_max", "image_archive loaded (module work)", 1.05,
                          "docker load -i")]
        return Case("load-" + self.sizes["big"][0].split(":")[1], "load that archive into the engine (image absent before)",
                    tools, setup=setup, teardown=teardown, targets=targets)

    def case_noop(self, operation, compression):
        """Re-run with nothing to do: the archive is current / the image is loaded."""
        ctx = self.ctx
        state = {}
        suffix = ".tar.gz" if compression == "gzip" else ".tar"
        module_path = ctx.path("noop", "module-%s%s" % (compression, suffix))
        peer_path = ctx.path("noop", "cdocker-%s%s" % (compression, suffix))
        key = "noop-%s-%s" % (operation, compression)
        save_args = {"state": "saved", "names": None, "path": module_path}
        if compression == "gzip":
            save_args["compression"] = "gzip"

        def setup():
            state["name"], state["id"], _size = self.engine_image("big")
            save_args["names"] = [state["name"]]
            if not os.path.isfile(module_path):
                ctx.log("   writing the %s archive once with image_archive (set-up, untimed)" % compression)
                check_call(ctx.module_argv("image_archive", save_args, key + "-setup"), env=ctx.env, timeout=1800)
            if not os.path.isfile(peer_path):
                if compression == "gzip" and operation == "loaded":
                    shutil.copyfile(module_path, peer_path)
                elif compression == "none":
                    check_call(["docker", "save", "-o", peer_path, state["name"]], env=ctx.env, timeout=1800)

        if operation == "saved":
            module_args = dict(save_args)
            peer = None
            if compression == "none":
                peer = Tool("community.docker.docker_image_export (re-run)", PEER, lambda: ctx.playbook_argv(key + "-peer", [{
                    "community.docker.docker_image_export": {"names": [state["name"]], "path": peer_path}}]),
                    verify=expect_playbook_rerun())
        else:
            module_args = {"state": "loaded", "path": module_path}
            peer = Tool("community.docker.docker_image_load (re-run)", PEER, lambda: ctx.playbook_argv(key + "-peer", [{
                "community.docker.docker_image_load": {"path": peer_path}}]), verify=expect_playbook_rerun())

        def module_tool_args():
            module_args["names"] = save_args["names"] if operation == "saved" else None
            return {k: v for k, v in module_args.items() if v is not None}

        tools = [
            Tool("image_archive %s no-op (module work)" % operation, MODULE,
                 lambda: ctx.module_argv("image_archive", module_tool_args(), key), verify=expect_module(changed=False),
                 module="image_archive"),
            Tool("image_archive %s no-op (ansible-playbook)" % operation, ANSIBLE, lambda: ctx.playbook_argv(key, [{
                "dockhand.registry.image_archive": module_tool_args()}]), verify=expect_playbook(changed=False),
                module="image_archive"),
        ]
        if peer:
            tools.append(peer)
        tools.append(self.startup_tool())
        targets = [Target("module work <= 0.3 s", "seconds_max", tools[0].name, 0.3)]
        if peer:
            targets.append(Target("module work vs community.docker re-run (reported)", "ratio", tools[0].name, 0, peer.name))
        title = "re-run of %s, %s archive, %s image: nothing to do" % (
            "save" if operation == "saved" else "load", "gzip" if compression == "gzip" else "plain",
            self.sizes["big"][0].split(":")[1])
        return Case(key, title, tools, setup=setup, targets=targets)

    # ---------------------------------------------------------- registry cases
    def case_retention(self, policy="match"):
        ctx = self.ctx
        count, keep_digits = self.sizes["retention"]
        if policy == "shared":
            # Every tag on one image: each removal is a throw-away PUT plus a DELETE, and on 2.x every
            # DELETE reads every tag's link, so fewer tags keep the row short.
            count = min(count, SHARED_RETENTION_TAGS)
        keep = 10 ** keep_digits
        tags = ["t%05d" % i for i in range(count)]
        if policy in ("match", "shared"):
            kept = set(tags[:keep])
            module_policy = {"match": ["^t(?!%s)" % ("0" * (5 - keep_digits))]}
            floor_policy = ["--keep", "^t%s[0-9]{%d}$" % ("0" * (5 - keep_digits), keep_digits)]
        else:
            kept = set(tags[-keep:])
            module_policy = {"keep_last": keep}
            floor_policy = ["--keep-last", str(keep)]
        doomed = [tag for tag in tags if tag not in kept]
        state = {}
        repository = "retention"

        def setup():
            if policy == "shared":
                snapshot = self.registry_snapshot("retention-shared-%d" % count, lambda r: fixtures.seed_same_image_tags(
                    r.url, repository, tags))
            else:
                snapshot = self.registry_snapshot("retention-%d" % count, lambda r: fixtures.seed_distinct_tags(
                    r.url, repository, tags))
            state["snapshot"] = snapshot
            state["registry"] = self.registries.get("retention")
            doomed_file = ctx.path("retention", "doomed-%s.txt" % policy)
            _write_lines(doomed_file, doomed)
            state["doomed_file"] = doomed_file

        def restore():
            state["registry"].restore_snapshot(state["snapshot"])

        def outcome(_measurement):
            left = set(state["registry"].tags(repository))
            if left != kept:
                raise VerifyFailed("expected %d kept tags, registry has %d (%d unexpected)" % (
                    len(kept), len(left), len(left ^ kept)))
            if policy == "shared":
                dangling = [tag for tag in sorted(left) if requests.head(
                    "%s/v2/%s/manifests/%s" % (state["registry"].url, repository, tag),
                    headers={"Accept": MANIFEST_ACCEPT}, timeout=30).status_code == 404]
                if dangling:
                    raise VerifyFailed("%d kept tags are listed but answer 404 (dangling): %s" % (
                        len(dangling), ", ".join(dangling[:5])))

        def skopeo_loop():
            script = ('set -e; n=0; while read -r tag; do n=$((n+1)); [ "$n" -le %d ] || exit 3; '
                      'skopeo delete --tls-verify=false "docker://%s/%s:$tag"; done < "%s"'
                      % (len(doomed), state["registry"].host, repository, state["doomed_file"]))
            return ["bash", "-c", script]

        def args():
            return self.registry_args(state["registry"], repository=repository, state="present", **module_policy)

        tools = []
        if policy == "match":
            tools.append(Tool("skopeo delete loop", PEER, skopeo_loop, prepare=restore, verify=expect_rc0(outcome)))
        if policy == "shared":
            # No floor or peer: skopeo and the floor delete by digest, which would take the kept tags along.
            tools += [
                Tool("registry_repo (module work)", MODULE,
                     lambda: ctx.module_argv("registry_repo", args(), "retention-" + policy), prepare=restore,
                     verify=lambda m: (expect_module(changed=True)(m), outcome(m)), module="registry_repo"),
                Tool("registry_repo concurrency 1 (module work)", MODULE,
                     lambda: ctx.module_argv("registry_repo", dict(args(), concurrency=1), "retention-shared-c1"),
                     prepare=restore, verify=lambda m: (expect_module(changed=True)(m), outcome(m)),
                     module="registry_repo"),
            ]
            title = "retention: %d tags on one image, delete %d keep %d (each through a throw-away manifest)" % (
                count, len(doomed), keep)
            return Case("retention-shared", title, tools, setup=setup, servers=lambda: [state["registry"]])
        tools += [
            Tool("floor (HEAD+DELETE, 8 conns)", FLOOR, lambda: [ctx.python, os.path.join(ctx.bench_dir, "floor_retention.py"),
                                                                 "--registry", state["registry"].host,
                                                                 "--repository", repository] + floor_policy,
                 prepare=restore, verify=expect_rc0(outcome)),
            Tool("registry_repo (ansible-playbook)", ANSIBLE, lambda: ctx.playbook_argv("retention-" + policy, [{
                "dockhand.registry.registry_repo": args()}]), prepare=restore,
                verify=lambda m: (expect_playbook(changed=True)(m), outcome(m)), module="registry_repo"),
            Tool("registry_repo (module work)", MODULE, lambda: ctx.module_argv("registry_repo", args(), "retention-" + policy),
                 prepare=restore, verify=lambda m: (expect_module(changed=True)(m), outcome(m)), module="registry_repo"),
        ]
        targets = [Target("module work <= 1.5x floor", "ratio_max", "registry_repo (module work)", 1.5, tools[-3].name)]
        if policy == "match":
            targets.insert(0, Target(">= 10x faster than the skopeo loop", "speedup_min", "registry_repo (module work)", 10,
                                     "skopeo delete loop"))
        title = "retention: %d tags over %d distinct images, delete %d keep %d (%s)" % (
            count, count, len(doomed), keep, "match regex" if policy == "match" else "keep_last, needs creation times")
        return Case("retention-%s" % policy, title, tools, setup=setup, targets=targets,
                    servers=lambda: [state["registry"]])

    def case_untag(self):
        """Retention on a registry with tag delete (issue 10 section 2), on the fake of distribution v3."""
        ctx = self.ctx
        count, keep_digits = self.sizes["retention"]
        keep = 10 ** keep_digits
        tags = ["t%05d" % i for i in range(count)]
        kept = set(tags[:keep])
        doomed = [tag for tag in tags if tag not in kept]
        keep_regex = "^t%s[0-9]{%d}$" % ("0" * (5 - keep_digits), keep_digits)
        repository = "retention"
        state = {}

        def setup():
            state["snapshot"] = self.registry_snapshot("fake-v3-retention-%d" % count, lambda r: fixtures.seed_distinct_tags(
                r.url, repository, tags), kind=FakeV3Registry)
            state["registry"] = self.registries.get("fake-v3", kind=FakeV3Registry)
            doomed_file = ctx.path("untag", "doomed.txt")
            _write_lines(doomed_file, doomed)
            state["doomed_file"] = doomed_file

        def restore():
            state["registry"].restore_snapshot(state["snapshot"])

        def outcome(path):
            """The exact tags left, and the delete path the run took (by the fake's request counters)."""
            def check(_measurement):
                left = set(state["registry"].tags(repository))
                if left != kept:
                    raise VerifyFailed("expected %d kept tags, registry has %d (%d unexpected)" % (
                        len(kept), len(left), len(left ^ kept)))
                stats = state["registry"].stats()
                by_tag, by_digest = stats.get("DELETE manifest by tag", 0), stats.get("DELETE manifest by digest", 0)
                # The collection learns about tag delete with a throw-away manifest, deleted by digest after;
                # while that probe is out, its other connections remove tags through throw-aways too.
                if path == "untag" and (by_tag + by_digest < len(doomed) or by_digest > UNTAG_PROBE_DIGEST_DELETES):
                    raise VerifyFailed("not the untag path: %d deletes by tag, %d by digest" % (by_tag, by_digest))
                if path == "digest" and (by_digest < len(doomed) or by_tag):
                    raise VerifyFailed("not the digest path: %d deletes by tag, %d by digest" % (by_tag, by_digest))
            return check

        def untag_method(result):
            if result.get("delete_method") != "untag":
                raise VerifyFailed("registry_repo took delete_method=%s, not untag" % result.get("delete_method"))

        def skopeo_loop():
            script = ('set -e; n=0; while read -r tag; do n=$((n+1)); [ "$n" -le %d ] || exit 3; '
                      'skopeo delete --tls-verify=false "docker://%s/%s:$tag"; done < "%s"'
                      % (len(doomed), state["registry"].host, repository, state["doomed_file"]))
            return ["bash", "-c", script]

        def floor(*flags):
            return [ctx.python, os.path.join(ctx.bench_dir, "floor_retention.py"), "--registry", state["registry"].host,
                    "--repository", repository, "--keep", keep_regex, *flags]

        def args():
            return self.registry_args(state["registry"], repository=repository, state="present",
                                      match=["^t(?!%s)" % ("0" * (5 - keep_digits))])

        tools = [
            Tool("skopeo delete loop", PEER, skopeo_loop, prepare=restore, verify=expect_rc0(outcome("digest"))),
            Tool("untag floor (tag list + DELETE by tag, 8 conns)", FLOOR, lambda: floor("--untag"), prepare=restore,
                 verify=expect_rc0(outcome("untag"))),
            Tool("digest-path floor (HEAD + DELETE by digest, 8 conns)", FLOOR, floor, prepare=restore,
                 verify=expect_rc0(outcome("digest"))),
            Tool("registry_repo (ansible-playbook)", ANSIBLE, lambda: ctx.playbook_argv("untag-match", [{
                "dockhand.registry.registry_repo": args()}]), prepare=restore,
                verify=lambda m: (expect_playbook(changed=True)(m), outcome("untag")(m)), module="registry_repo"),
            Tool("registry_repo (module work)", MODULE, lambda: ctx.module_argv("registry_repo", args(), "untag-match"),
                 prepare=restore, verify=lambda m: (expect_module(changed=True, check=untag_method)(m), outcome("untag")(m)),
                 module="registry_repo"),
        ]
        module = tools[-1].name
        targets = [
            Target("module work <= 1.5x the untag floor (issue 10 section 2)", "ratio_max", module, 1.5, tools[1].name),
            Target(">= 5x faster than the digest path (its floor; issue 10 section 2)", "speedup_min", module, 5,
                   tools[2].name),
            Target(">= 10x faster than the skopeo loop (issue 10 section 2)", "speedup_min", module, 10, tools[0].name),
        ]
        title = "retention with tag delete: %d tags over %d distinct images, delete %d keep %d (match regex), " \
                "on the fake of distribution v3" % (count, count, len(doomed), keep)
        notes = ["the registry is a FAKE of distribution v3 (benchmarks/benchlib/fake_v3.py, Python, real HTTP on "
                 "127.0.0.1): v3 is not packaged in Debian. It deletes by tag and by digest as v3 does, one link file "
                 "per tag, so a digest delete reads every tag's link as v3's does; absolute times are the fake's, not v3's. "
                 "registry_repo has no option to force the digest path, so that path is shown by its floor."]
        return Case("untag-match", title, tools, setup=setup, targets=targets, servers=lambda: [state["registry"]],
                    notes=notes)

    def case_catalog(self):
        ctx = self.ctx
        count = self.sizes["catalog"]
        state = {}
        repositories = ["catalog/r%05d" % i for i in range(count)]

        def setup():
            storage = self.registry_snapshot("catalog-%d" % count, lambda r: fixtures.seed_repositories(r.url, repositories))
            state["registry"] = self.registries.get("catalog").use_storage(storage)

        def module_check(result):
            repos = result.get("repositories") or []
            if len(repos) != count:
                raise VerifyFailed("expected %d repositories, got %d" % (count, len(repos)))

        def floor_check(measurement):
            if not measurement.stdout.startswith("%d repositories" % count):
                raise VerifyFailed("floor saw: %s" % measurement.stdout.strip())

        def args():
            return self.registry_args(state["registry"])

        tools = [
            Tool("floor (catalog pages + tag lists, 8 conns)", FLOOR, lambda: [
                ctx.python, os.path.join(ctx.bench_dir, "floor_list.py"), "--registry", state["registry"].host,
                "--catalog", "--tags"], verify=expect_rc0(floor_check)),
            Tool("floor (catalog pages only)", SCALE, lambda: [
                ctx.python, os.path.join(ctx.bench_dir, "floor_list.py"), "--registry", state["registry"].host,
                "--catalog"], verify=expect_rc0(floor_check)),
            Tool("registry_repo_info catalog (ansible-playbook)", ANSIBLE, lambda: ctx.playbook_argv("catalog", [{
                "dockhand.registry.registry_repo_info": args()}]), verify=expect_playbook(changed=False),
                module="registry_repo_info"),
            Tool("registry_repo_info catalog (module work)", MODULE, lambda: ctx.module_argv(
                "registry_repo_info", args(), "catalog"), verify=expect_module(changed=False, check=module_check),
                module="registry_repo_info"),
            Tool("registry_repo_info list_tags=false (module work)", MODULE, lambda: ctx.module_argv(
                "registry_repo_info", dict(args(), list_tags=False), "catalog-names"),
                verify=expect_module(changed=False, check=module_check), module="registry_repo_info"),
        ]
        targets = [Target("module work <= 1.2x floor (catalog + tag lists)", "ratio_max", tools[3].name, 1.2, tools[0].name),
                   Target("list_tags=false: module work <= 1.2x floor (catalog pages only)", "ratio_max", tools[4].name, 1.2,
                          tools[1].name)]
        return Case("catalog-%d" % count, "catalog of %d repositories with each repository's tags" % count, tools,
                    setup=setup, targets=targets, servers=lambda: [state["registry"]],
                    notes=["registry_repo_info returns the tags of every repository, so its floor is the catalog pages "
                           "plus one tag list per repository; the catalog-pages-only floor is shown for scale."])

    def case_taglist(self):
        ctx = self.ctx
        count = self.sizes["taglist"]
        state = {}
        tags = ["t%05d" % i for i in range(count)]

        def setup():
            storage = self.registry_snapshot("taglist-%d" % count, lambda r: fixtures.seed_same_image_tags(r.url, "taglist", tags))
            state["registry"] = self.registries.get("taglist").use_storage(storage)

        def module_check(result):
            repos = result.get("repositories") or [{}]
            if len(repos[0].get("tags") or []) != count:
                raise VerifyFailed("expected %d tags" % count)

        def count_check(measurement):
            if measurement.stdout.count('"t0') != count and not measurement.stdout.startswith("1 repositories, %d tags" % count):
                raise VerifyFailed("expected %d tags: %s" % (count, measurement.stdout[:200]))

        def args():
            return self.registry_args(state["registry"], repository="taglist")

        def floor(*flags):
            return [ctx.python, os.path.join(ctx.bench_dir, "floor_list.py"), *flags,
                    "--registry", state["registry"].host, "--repository", "taglist"]

        tools = [
            Tool("skopeo list-tags", PEER, lambda: ["skopeo", "list-tags", "--tls-verify=false",
                                                    "docker://%s/taglist" % state["registry"].host],
                 verify=expect_rc0(count_check)),
            Tool("floor (paged GETs)", FLOOR, floor, verify=expect_rc0(count_check)),
            Tool("registry_repo_info tags (ansible-playbook)", ANSIBLE, lambda: ctx.playbook_argv("taglist", [{
                "dockhand.registry.registry_repo_info": args()}]), verify=expect_playbook(changed=False),
                module="registry_repo_info"),
            Tool("registry_repo_info tags (module work)", MODULE, lambda: ctx.module_argv("registry_repo_info", args(), "taglist"),
                 verify=expect_module(changed=False, check=module_check), module="registry_repo_info"),
            self.startup_tool(),
            Tool("floor + import ansible.module_utils.basic (the least any module can take)", SCALE,
                 lambda: floor("--import-ansible"), verify=expect_rc0(count_check)),
        ]
        targets = [Target("module work <= 1.2x floor", "ratio_max", tools[3].name, 1.2, tools[1].name),
                   Target("module work vs skopeo list-tags (reported)", "ratio", tools[3].name, 0, tools[0].name)]
        return Case("taglist-%d" % count, "tag list of one repository with %d tags" % count, tools, setup=setup,
                    targets=targets, servers=lambda: [state["registry"]])

    def case_copy(self, second_run=False):
        ctx = self.ctx
        name, _layers = self.sizes["copy"]
        repository, tag = name.split("/", 1)[1].split(":")
        label = tag
        state = {}

        def setup():
            state["source"] = self.source_registry()
            state["target"] = self.registries.get("copy-target")
            state["digest"] = manifest_digest(state["source"], repository, tag)
            if second_run and manifest_digest(state["target"], repository, tag) != state["digest"]:
                check_call(skopeo_argv(), env=ctx.env, timeout=1800)

        def wipe():
            if not second_run:
                state["target"].wipe()

        def copied(_measurement):
            if manifest_digest(state["target"], repository, tag) != state["digest"]:
                raise VerifyFailed("target does not hold %s:%s at %s" % (repository, tag, state["digest"]))

        def skopeo_argv():
            return ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                    "docker://%s/%s:%s" % (state["source"].host, repository, tag),
                    "docker://%s/%s:%s" % (state["target"].host, repository, tag)]

        def args():
            return self.registry_args(state["target"], repository=repository, tag=tag, state="present",
                                      source="%s/%s:%s" % (state["source"].host, repository, tag))

        tools = [
            Tool("skopeo copy" + (" (re-run)" if second_run else ""), PEER, skopeo_argv, prepare=wipe,
                 verify=expect_rc0(copied)),
            Tool("registry_manifest copy (ansible-playbook)", ANSIBLE, lambda: ctx.playbook_argv("copy", [{
                "dockhand.registry.registry_manifest": args()}]), prepare=wipe,
                verify=lambda m: (expect_playbook(changed=not second_run)(m), copied(m)), module="registry_manifest"),
            Tool("registry_manifest copy (module work)", MODULE, lambda: ctx.module_argv("registry_manifest", args(), "copy"),
                 prepare=wipe, verify=lambda m: (expect_module(changed=not second_run)(m), copied(m)),
                 module="registry_manifest"),
        ]
        if second_run:
            tools.append(self.startup_tool())
            targets = [Target("second run: module work <= 0.5 s", "seconds_max", tools[2].name, 0.5)]
            return Case("copy-%s-rerun" % label, "copy again, everything already present", tools, setup=setup,
                        targets=targets, servers=lambda: [state["source"], state["target"]])
        targets = [Target("module work <= 1.0x skopeo copy", "ratio_max", tools[2].name, 1.0, tools[0].name)]
        return Case("copy-%s" % label, "copy a %s image between two registries (target empty)" % label, tools,
                    setup=setup, targets=targets, servers=lambda: [state["source"], state["target"]])

    def case_fleet(self, hosts):
        ctx = self.ctx
        name, _layers = self.sizes["fleet"]
        repository, tag = name.split("/", 1)[1].split(":")
        state = {}

        def setup():
            state["source"] = self.source_registry()
            state["targets"] = [self.registries.get("fleet%02d" % (i + 1)) for i in range(hosts)]
            state["digest"] = manifest_digest(state["source"], repository, tag)
            inventory = ctx.path("playbooks", "fleet-%d.ini" % hosts)
            with open(inventory, "w", encoding="utf-8") as handle:
                handle.write("[fleet]\n")
                for index, target in enumerate(state["targets"]):
                    handle.write("registry%02d ansible_connection=local ansible_python_interpreter=%s target=%s\n" % (
                        index + 1, ctx.python, target.host))
            state["inventory"] = inventory

        def wipe():
            for target in state["targets"]:
                target.wipe()

        def published(_measurement):
            for target in state["targets"]:
                if manifest_digest(target, repository, tag) != state["digest"]:
                    raise VerifyFailed("%s does not hold the image" % target.host)

        def skopeo_argv():
            source = "docker://%s/%s:%s" % (state["source"].host, repository, tag)
            script = "set -e; " + "; ".join(
                "skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false %s docker://%s/%s:%s" % (
                    source, target.host, repository, tag) for target in state["targets"])
            return ["bash", "-c", script]

        tools = [
            Tool("skopeo copy x%d, sequential" % hosts, PEER, skopeo_argv, prepare=wipe, verify=expect_rc0(published)),
            Tool("registry_manifest, %d hosts, forks 10 (ansible-playbook)" % hosts, ANSIBLE,
                 lambda: ctx.playbook_argv("fleet-%d" % hosts, [{
                     "dockhand.registry.registry_manifest": {
                         "registry": "{{ target }}", "repository": repository, "tag": tag, "state": "present",
                         "source": "%s/%s:%s" % (state["source"].host, repository, tag)}}],
                     hosts="fleet", inventory=state["inventory"], forks=10),
                 prepare=wipe, verify=lambda m: (expect_playbook(changed=True, hosts=hosts)(m), published(m)),
                 module="registry_manifest"),
        ]
        targets = [Target("ansible-playbook vs sequential skopeo (reported)", "ratio", tools[1].name, 0, tools[0].name)]
        return Case("fleet-%d" % hosts, "publish one %s image to %d registr%s" % (
            tag, hosts, "y" if hosts == 1 else "ies"), tools, setup=setup, targets=targets,
            servers=lambda: [state["source"]] + state["targets"])

    # ------------------------------------------------------------------ HA cases
    def ha_pair(self):
        """The HA pair (nginx, two replicas on one storage, redis), started on first use."""
        return self.registries.get("ha", kind=lambda workdir, name: HaPair(workdir, name, self.ctx.python))

    def ha_layout(self):
        """(label, OCI layout path, manifest digest, tag) of the HA cases' random image, written once."""
        name, layers = self.sizes["copy"]
        label = name.split(":")[1]
        path = os.path.join(self.cache, "oci", "ha-%s" % label)
        return label, path, fixtures.write_random_oci_layout(path, layers, label, log=self.ctx.log), label

    def ha_source(self, layout, tag):
        """A plain registry holding the layout's image: the source of the collection's push rows."""
        def seed(registry):
            check_call(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:%s:%s" % (layout, tag),
                        "docker://%s/%s:%s" % (registry.host, HA_REPOSITORY, tag)], env=self.ctx.env, timeout=1800)

        storage = self.registry_snapshot("ha-source-%s" % tag, seed)
        return self.registries.get("ha-source").use_storage(storage)

    def case_ha_push(self):
        """Issue 11 section 4: push through nginx to two replicas, against one replica direct."""
        ctx = self.ctx
        label = self.sizes["copy"][0].split(":")[1]
        state = {}

        def setup():
            _label, state["layout"], state["digest"], state["tag"] = self.ha_layout()
            state["pair"] = self.ha_pair()
            state["source"] = self.ha_source(state["layout"], state["tag"])

        def wipe():
            state["pair"].wipe()

        def pushed(via_balancer):
            def check(_measurement):
                pair = state["pair"]
                for server in [pair] + pair.replicas:
                    if manifest_digest(server, HA_REPOSITORY, state["tag"]) != state["digest"]:
                        raise VerifyFailed("%s does not serve %s:%s at %s" % (
                            server.host, HA_REPOSITORY, state["tag"], state["digest"]))
                if via_balancer and not pair.cache_keys():
                    raise VerifyFailed("redis holds no blob descriptors: the replicas do not use their cache")
            return check

        def skopeo(target):
            return lambda: ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                            "oci:%s:%s" % (state["layout"], state["tag"]),
                            "docker://%s/%s:%s" % (target().host, HA_REPOSITORY, state["tag"])]

        def module(target, name):
            return lambda: ctx.module_argv("registry_manifest", self.registry_args(
                target(), repository=HA_REPOSITORY, tag=state["tag"], state="present",
                source="%s/%s:%s" % (state["source"].host, HA_REPOSITORY, state["tag"])), name)

        def direct():
            return state["pair"].replicas[0]

        def balancer():
            return state["pair"]

        def pair_servers():
            return state["pair"].servers()

        tools = [
            Tool("skopeo copy oci: -> one replica, direct", FLOOR, skopeo(direct), prepare=wipe,
                 verify=expect_rc0(pushed(False))),
            Tool("skopeo copy oci: -> nginx -> 2 replicas", VARIANT, skopeo(balancer), prepare=wipe,
                 verify=expect_rc0(pushed(True))),
            Tool("registry_manifest copy -> one replica, direct (module work)", MODULE, module(direct, "ha-push-direct"),
                 prepare=wipe, verify=lambda m: (expect_module(changed=True)(m), pushed(False)(m)),
                 module="registry_manifest"),
            Tool("registry_manifest copy -> nginx -> 2 replicas (module work)", MODULE, module(balancer, "ha-push-lb"),
                 prepare=wipe, verify=lambda m: (expect_module(changed=True)(m), pushed(True)(m)),
                 module="registry_manifest"),
        ]
        targets = [
            Target("HA push vs one replica direct, skopeo (reported; issue 11 section 4)", "ratio", tools[1].name, 0,
                   tools[0].name),
            Target("HA push vs one replica direct, registry_manifest (reported; issue 11 section 4)", "ratio",
                   tools[3].name, 0, tools[2].name),
        ]
        return Case("ha-push-%s" % label, "push a %s image (random layers) through nginx to two replicas on one storage, "
                    "vs one replica direct" % label, tools, setup=setup, targets=targets,
                    servers=pair_servers, notes=HA_NOTES)

    def case_ha_pull(self):
        """Issue 11 section 4: pull through nginx from two replicas, against one replica direct."""
        ctx = self.ctx
        label = self.sizes["copy"][0].split(":")[1]
        state = {}

        def setup():
            _label, state["layout"], state["digest"], state["tag"] = self.ha_layout()
            state["pair"] = self.ha_pair().wipe()
            check_call(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:%s:%s" % (state["layout"], state["tag"]),
                        "docker://%s/%s:%s" % (state["pair"].replicas[0].host, HA_REPOSITORY, state["tag"])],
                       env=ctx.env, timeout=1800)
            if manifest_digest(state["pair"], HA_REPOSITORY, state["tag"]) != state["digest"]:
                raise VerifyFailed("the HA pair does not serve the pushed image at %s" % state["digest"])
            state["sink"] = self.registries.get("ha-sink")
            state["pulled"] = ctx.path("ha-pull", "pulled")

        def remove_pulled():
            _rm(state["pulled"])

        def wipe_sink():
            state["sink"].wipe()

        def pulled(_measurement):
            got = fixtures.oci_layout_digest(state["pulled"])
            if got != state["digest"]:
                raise VerifyFailed("the pulled layout holds %s, not %s" % (got, state["digest"]))

        def copied(_measurement):
            if manifest_digest(state["sink"], HA_REPOSITORY, state["tag"]) != state["digest"]:
                raise VerifyFailed("the sink registry does not hold %s" % state["digest"])

        def skopeo(source):
            return lambda: ["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                            "docker://%s/%s:%s" % (source().host, HA_REPOSITORY, state["tag"]),
                            "oci:%s:%s" % (state["pulled"], state["tag"])]

        def module(source, name):
            return lambda: ctx.module_argv("registry_manifest", self.registry_args(
                state["sink"], repository=HA_REPOSITORY, tag=state["tag"], state="present",
                source="%s/%s:%s" % (source().host, HA_REPOSITORY, state["tag"])), name)

        def direct():
            return state["pair"].replicas[0]

        def balancer():
            return state["pair"]

        tools = [
            Tool("skopeo copy one replica, direct -> oci:", FLOOR, skopeo(direct), prepare=remove_pulled,
                 verify=expect_rc0(pulled)),
            Tool("skopeo copy nginx -> 2 replicas -> oci:", VARIANT, skopeo(balancer), prepare=remove_pulled,
                 verify=expect_rc0(pulled)),
            Tool("registry_manifest copy one replica, direct -> a registry (module work)", MODULE,
                 module(direct, "ha-pull-direct"), prepare=wipe_sink,
                 verify=lambda m: (expect_module(changed=True)(m), copied(m)), module="registry_manifest"),
            Tool("registry_manifest copy nginx -> 2 replicas -> a registry (module work)", MODULE,
                 module(balancer, "ha-pull-lb"), prepare=wipe_sink,
                 verify=lambda m: (expect_module(changed=True)(m), copied(m)), module="registry_manifest"),
        ]
        targets = [
            Target("HA pull vs one replica direct, skopeo (reported; issue 11 section 4)", "ratio", tools[1].name, 0,
                   tools[0].name),
            Target("HA pull vs one replica direct, registry_manifest (reported; issue 11 section 4)", "ratio",
                   tools[3].name, 0, tools[2].name),
        ]
        return Case("ha-pull-%s" % label, "pull that image through nginx from the two replicas, vs one replica direct",
                    tools, setup=setup, targets=targets, teardown=lambda: _rm(state.get("pulled", "")),
                    servers=lambda: state["pair"].servers() + ([state["sink"]] if state.get("sink") else []),
                    notes=HA_NOTES)

    def case_ha_gc(self):
        """Issue 11 section 4 (b): fleet garbage collection of two replicas vs one registry's, same storage content."""
        ctx = self.ctx
        count, keep_digits = self.sizes["retention"]
        keep = 10 ** keep_digits
        tags = ["t%05d" % i for i in range(count)]
        kept = tags[:keep]
        keep_regex = "^t%s[0-9]{%d}$" % ("0" * (5 - keep_digits), keep_digits)
        repository = "gc"
        state = {}

        def seed(registry):
            fixtures.seed_distinct_tags(registry.url, repository, tags)
            check_call([ctx.python, os.path.join(ctx.bench_dir, "floor_retention.py"), "--registry", registry.host,
                        "--repository", repository, "--keep", keep_regex], env=ctx.env, timeout=1800)

        def setup():
            state["snapshot"] = self.registry_snapshot("gc-%d-keep-%d" % (count, keep), seed)
            pair = self.ha_pair()
            state["fleet"] = self.registries.get("gc-fleet", kind=lambda workdir, name: RoleRegistries(
                workdir, name, ctx, ["replica-a", "replica-b"], redis=pair))
            state["single"] = self.registries.get("gc-single", kind=lambda workdir, name: RoleRegistries(
                workdir, name, ctx, ["single"]))
            floor_registry = Registry(os.path.join(ctx.work, "gc"), "floor")
            floor_registry.port = 1  # never served: garbage-collect only reads its config
            state["floor"] = floor_registry
            restore_floor()
            check_call(floor_argv(), env=ctx.env, timeout=1800, what="garbage-collect of the snapshot")
            state["blobs_after"] = count_blobs(floor_registry.storage)
            state["blobs_before"] = count_blobs(state["snapshot"])
            ctx.log("   garbage-collect of this content keeps %d of %d blobs" % (state["blobs_after"], state["blobs_before"]))

        def restore_floor():
            registry = state["floor"]
            shutil.rmtree(registry.storage, ignore_errors=True)
            shutil.copytree(state["snapshot"], registry.storage, symlinks=True)
            with open(registry.config, "w", encoding="utf-8") as handle:
                handle.write(registry.config_text())

        def floor_argv():
            return [REGISTRY_BINARY, "garbage-collect", state["floor"].config]

        def collected(storage, hosts):
            def check(_measurement):
                left = count_blobs(storage())
                if left != state["blobs_after"]:
                    raise VerifyFailed("%d blobs left, garbage-collect of the same content leaves %d (of %d)" % (
                        left, state["blobs_after"], state["blobs_before"]))
                for host in hosts():
                    gone = [tag for tag in kept if requests.head(
                        "http://%s/v2/%s/manifests/%s" % (host, repository, tag), headers={"Accept": MANIFEST_ACCEPT},
                        timeout=30).status_code != 200]
                    if gone:
                        raise VerifyFailed("%s lost %d kept tags after GC: %s" % (host, len(gone), ", ".join(gone[:5])))
            return check

        tools = [
            Tool("docker-registry garbage-collect (floor, host binary, registry not running)", FLOOR, floor_argv,
                 prepare=restore_floor, verify=expect_rc0(collected(lambda: state["floor"].storage, lambda: []))),
            Tool("cleanup.yml, one registry (role garbage_collect, read-only restart)", ANSIBLE,
                 lambda: state["single"].playbook_argv("cleanup"),
                 prepare=lambda: state["single"].restore(state["snapshot"]),
                 verify=lambda m: (expect_playbook()(m), collected(lambda: state["single"].data_dir,
                                                                   state["single"].hosts)(m))),
            Tool("cleanup.yml, 2 replicas (role fleet_gc: quiet both, collect once, flush redis, restart)", ANSIBLE,
                 lambda: state["fleet"].playbook_argv("cleanup"),
                 prepare=lambda: state["fleet"].restore(state["snapshot"]),
                 verify=lambda m: (expect_playbook(hosts=2)(m), collected(lambda: state["fleet"].data_dir,
                                                                          state["fleet"].hosts)(m))),
        ]
        targets = [
            Target("fleet GC of 2 replicas vs one registry's GC, both cleanup.yml (reported; issue 11 section 4)", "ratio",
                   tools[2].name, 0, tools[1].name),
            Target("fleet GC vs garbage-collect alone (reported)", "ratio", tools[2].name, 0, tools[0].name),
        ]
        notes = ["GC case: the registries are containers of the role (playbooks/registry.yml, image %s, host network) on "
                 "the engine at DOCKER_HOST; every run restores the same storage (%d small distinct images, %d of them "
                 "deleted by digest) under them first. Both cleanup.yml rows include ansible-playbook's start-up and "
                 "the role's container restarts." % (RoleRegistries.IMAGE, count, count - keep)]
        return Case("ha-gc-%d" % count, "garbage collection of one storage (%d images, %d deleted): fleet protocol on "
                    "two replicas vs one registry" % (count, count - keep), tools, setup=setup, targets=targets,
                    notes=notes)

    def engine_cases(self):
        cases = [self.case_save()]
        if self.sizes["big2"]:
            cases.append(self.case_save("big2"))
        cases += [
            self.case_load(),
            self.case_noop("saved", "none"),
            self.case_noop("saved", "gzip"),
            self.case_noop("loaded", "none"),
            self.case_noop("loaded", "gzip"),
        ]
        if self.engine:
            for case in cases:
                case.key = "%s-%s" % (self.engine, case.key)
                case.title += " (%s image store)" % self.engine
                case.env, case.engine = self.ctx.env, self.engine
                case.setup = self._engine_first(case.setup)
        return cases

    def _engine_first(self, setup):
        def engine_then_setup():
            self.engine_up()
            if setup:
                setup()
        return engine_then_setup

    def cases(self):
        if self.engine:
            return self.engine_cases()
        cases = self.engine_cases() + [
            self.case_retention("match"),
            self.case_retention("keep_last"),
            self.case_retention("shared"),
            self.case_untag(),
            self.case_catalog(),
            self.case_taglist(),
            self.case_copy(),
            self.case_copy(second_run=True),
        ]
        cases += [self.case_fleet(hosts) for hosts in self.sizes["fleet_sizes"]]
        cases += [self.case_ha_push(), self.case_ha_pull()]
        if not self.ctx.smoke:
            # Deploying the role's containers alone takes half a minute: too slow for make test's smoke run.
            cases.append(self.case_ha_gc())
        return cases
