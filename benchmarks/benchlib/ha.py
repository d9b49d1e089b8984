# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HA pair of the ha-* cases: two docker-registry replicas behind nginx, on 127.0.0.1.

Both replicas are ``docker-registry serve`` processes sharing one filesystem storage folder and
one http.secret, with a redis blob-descriptor cache (Debian's redis-server). redis-server and
nginx are started and stopped (by PID) with the test bed's tests/testbed/ha.py, the same helper
the ha_pair integration target uses, so the balancer's configuration is the one the tests check.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess

from .procs import check_call
from .registry import CONFIG_TEMPLATE, LoopbackAddress, Registry, free_port

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HA_HELPER = os.path.join(REPO_ROOT, "tests", "testbed", "ha.py")
REDIS_DB = 3
# The role-deployed replicas of the GC case use their own database of the same redis-server.
ROLE_REDIS_DB = 4

REPLICA_EXTRA = """  secret: {secret}
redis:
  addr: 127.0.0.1:{redis_port}
  password: {redis_password}
  db: {db}
"""


class HaReplica(Registry):
    """One replica: the benchmarks' registry config plus the shared secret and the redis cache."""

    def __init__(self, workdir, name, storage, secret, redis_port, redis_password):
        super().__init__(workdir, name)
        self.storage = storage
        self.secret = secret
        self.redis_port = redis_port
        self.redis_password = redis_password

    def config_text(self):
        text = CONFIG_TEMPLATE.format(storage=self.storage, port=self.port).replace(
            "  delete:\n", "  cache:\n    blobdescriptor: redis\n  delete:\n")
        return text + REPLICA_EXTRA.format(secret=self.secret, redis_port=self.redis_port,
                                           redis_password=self.redis_password, db=REDIS_DB)


class RecordedProcess:
    """A process the test bed's helper started, known by PID, and its children (nginx's worker): for CPU time."""

    def __init__(self, pid):
        self.pid = pid

    @staticmethod
    def _stat(pid):
        """(parent PID, user+system CPU seconds) of a process, or None when it is gone."""
        try:
            with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self):
        own = self._stat(self.pid)
        if own is None:
            return 0.0
        children = (self._stat(int(entry)) for entry in os.listdir("/proc") if entry.isdigit())
        return own[1] + sum(child[1] for child in children if child and child[0] == self.pid)


class HaPair(LoopbackAddress):
    """nginx (round robin) -> replicas a and b on one storage folder, redis beside them.

    Same interface as a Registry where the cases need it: ``host`` is the balancer, start() and
    stop(), wipe() empties the shared storage (and the redis cache, whose blob descriptors would
    otherwise claim blobs that are gone).
    """

    def __init__(self, workdir, name, python):
        self.workdir = os.path.join(workdir, name)
        self.name = name
        self.python = python
        self.storage = os.path.join(self.workdir, "shared-storage")
        self.secret = secrets.token_hex(32)
        self.redis_password = secrets.token_hex(16)
        self.redis_port = free_port()
        self.port = free_port()
        self.replicas = [HaReplica(self.workdir, "replica-%s" % letter, self.storage, self.secret, self.redis_port,
                                   self.redis_password) for letter in "ab"]
        for replica in self.replicas:
            replica.port = free_port()
        self.helper_dir = os.path.join(self.workdir, "lb")
        self.helpers = []
        self.running = False

    def _helper(self, *args):
        return check_call([self.python, HA_HELPER] + list(args), timeout=120, what="tests/testbed/ha.py %s" % args[0])

    def start(self):
        os.makedirs(self.helper_dir, exist_ok=True)
        password_file = os.path.join(self.helper_dir, "redis-password")
        with open(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            handle.write(self.redis_password)
        argv = ["up", "--dir", self.helper_dir, "--redis-port", str(self.redis_port), "--redis-password-file",
                password_file, "--balancer-port", str(self.port)]
        for replica in self.replicas:
            argv += ["--replica", replica.host]
        self.running = True
        self._helper(*argv)
        with open(os.path.join(self.helper_dir, "ha-pids.json"), encoding="utf-8") as handle:
            # The helper records {name: {"pid", "start_time"}}.
            self.helpers = [RecordedProcess(started["pid"]) for started in json.load(handle).values()]
        for replica in self.replicas:
            replica.start()
        return self

    def stop(self):
        for replica in self.replicas:
            replica.stop()
        if self.running:
            self._helper("down", "--dir", self.helper_dir)
            self.running = False

    def flush_cache(self, db=REDIS_DB):
        """Empty a redis database, by default the replicas' (the password goes by environment, not argv)."""
        check_call(["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis_port), "-n", str(db), "FLUSHDB"],
                   env=dict(os.environ, REDISCLI_AUTH=self.redis_password), timeout=30, what="redis-cli FLUSHDB")

    def cache_keys(self):
        """How many keys the replicas' redis database holds (blob descriptors, once they served blobs)."""
        out = check_call(["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis_port), "-n", str(REDIS_DB), "DBSIZE"],
                         env=dict(os.environ, REDISCLI_AUTH=self.redis_password), timeout=30, what="redis-cli DBSIZE")
        return int(out.stdout.strip().split()[-1])

    def wipe(self):
        for replica in self.replicas:
            replica.stop()
        shutil.rmtree(self.storage, ignore_errors=True)
        self.flush_cache()
        for replica in self.replicas:
            replica.start()
        return self

    def servers(self):
        """Everything serving a request through the balancer: both replicas, nginx, redis."""
        return self.replicas + self.helpers

    def cpu_seconds(self):
        return sum(server.cpu_seconds() for server in self.servers())


class RoleRegistries:
    """Registry containers deployed by the collection's role (playbooks/registry.yml), for the GC case.

    ``hosts`` maps inventory host names to their ports; with ``replica_set`` they are replicas of one
    storage folder with a redis cache (fleet garbage collection), without it a single registry.
    Containers run on the engine at DOCKER_HOST with the host network, bound to 127.0.0.1; remove()
    deletes exactly the containers named here.
    """

    IMAGE = os.environ.get("DOCKHAND_REGISTRY_IMAGE", "dockhand-test/registry:2")

    def __init__(self, workdir, name, ctx, hosts, redis=None):
        self.workdir = os.path.join(workdir, name)
        self.ctx = ctx
        self.data_dir = os.path.join(self.workdir, "data")
        self.inventory = os.path.join(self.workdir, "inventory.yml")
        self.prefix = "dockhand-bench-%s-%s" % (name, secrets.token_hex(3))
        self.ports = {host: free_port() for host in hosts}
        self.redis = redis
        self.deployed = False

    def names(self):
        return ["%s-%s" % (self.prefix, host) for host in self.ports]

    def hosts(self):
        return ["127.0.0.1:%d" % port for port in self.ports.values()]

    def write_inventory(self):
        os.makedirs(self.workdir, exist_ok=True)
        common = {
            "ansible_connection": "local", "ansible_python_interpreter": self.ctx.python,
            "registry_server_image": self.IMAGE, "registry_server_docker_host": self.ctx.env["DOCKER_HOST"],
            "registry_server_network_mode": "host", "registry_server_bind_address": "127.0.0.1",
            "registry_server_restart_policy": "no", "registry_server_data_dir": self.data_dir,
        }
        if self.redis:
            common.update({"registry_server_replica_set": self.prefix,
                           "registry_server_cache": {"blobdescriptor": "redis"},
                           "registry_server_redis": {"addrs": ["127.0.0.1:%d" % self.redis.redis_port],
                                                     "password": self.redis.redis_password, "db": ROLE_REDIS_DB}})
        hosts = {}
        for (host, port), name in zip(self.ports.items(), self.names()):
            hosts[host] = {"registry_server_name": name, "registry_server_port": port,
                           "registry_server_config_dir": os.path.join(self.workdir, host, "config"),
                           "fleet_registry_address": "127.0.0.1:%d" % port}
        with open(os.open(self.inventory, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            json.dump({"all": {"vars": common, "hosts": hosts}}, handle, indent=1)

    def playbook_argv(self, playbook):
        return [os.path.join(self.ctx.bin_dir, "ansible-playbook"), "-i", self.inventory, "dockhand.registry.%s" % playbook,
                "-e", "fleet_group=all"]

    def start(self):
        """Deploy the registries with playbooks/registry.yml."""
        self.write_inventory()
        self.deployed = True
        check_call(self.playbook_argv("registry"), env=self.ctx.env, timeout=900, what="playbooks/registry.yml")
        return self

    def restore(self, snapshot):
        """Put the snapshot's storage under the running registries (nothing writes meanwhile)."""
        shutil.rmtree(os.path.join(self.data_dir, "docker"), ignore_errors=True)
        shutil.copytree(os.path.join(snapshot, "docker"), os.path.join(self.data_dir, "docker"), symlinks=True)
        if self.redis:
            self.redis.flush_cache(ROLE_REDIS_DB)

    def remove(self):
        if self.deployed:
            subprocess.run(["docker", "rm", "-f"] + self.names(), env=self.ctx.env, capture_output=True, timeout=120,
                           check=False)
            self.deployed = False

    # The RegistrySet interface (stop at the end of the run).
    def stop(self):
        self.remove()


def count_blobs(storage):
    """Blob files in a docker-registry filesystem storage folder."""
    root = os.path.join(storage, "docker", "registry", "v2", "blobs")
    return sum(1 for _folder, _dirs, files in os.walk(root) for name in files if name == "data")
