# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run image_archive through ansible's ad-hoc CLI and signal the module process mid-write.

usage: signal_during_save.py KILL|TERM MODULE_ARGS_JSON

The module process (AnsiballZ_image_archive.py, a descendant of the ad-hoc
process started here) gets the signal as soon as its temporary file exists
next to the archive. Prints JSON: whether the file was seen, the module's
result line (for TERM) and the temporary files left at the end. Every wait is
bounded; only processes started here are signalled, by PID.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

ATTEMPTS = 5
WAIT_SECONDS = 60


def descendants(root_pid):
    children = {}
    for stat_path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat_path) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat_path.split("/")[2]))
    found, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        for child in children.get(pid, []):
            found.append(child)
            pending.append(child)
    return found


def module_pid(root_pid):
    """The Python process running the module (not the shell that started it), or None."""
    found = None
    for pid in descendants(root_pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]).startswith(b"python") and any(
                arg.endswith(b"AnsiballZ_image_archive.py") for arg in argv[1:]):
            found = pid  # the deepest one, should the wrapper start another
    return found


def main():
    signum = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM}[sys.argv[1]]
    args = json.loads(sys.argv[2])
    pattern = os.path.join(os.path.dirname(args["path"]),
                           "." + os.path.basename(args["path"]) + ".dockhand-tmp-*.tmp")
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false")
    for _attempt in range(ATTEMPTS):
        process = subprocess.Popen(
            [sys.executable, "-m", "ansible.cli.adhoc", "localhost", "-m", "dockhand.registry.image_archive",
             "-a", json.dumps(args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        seen = False
        deadline = time.monotonic() + WAIT_SECONDS
        while process.poll() is None and time.monotonic() < deadline:
            target = module_pid(process.pid) if glob.glob(pattern) else None
            if target is not None:
                os.kill(target, signum)
                seen = True
                break
            time.sleep(0.001)
        try:
            stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        if seen:
            result = None
            if "=> {" in stdout:  # "localhost | FAILED! => {...}", after any error summary
                try:
                    result = json.loads(stdout[stdout.rindex("=> {") + 3:])
                except ValueError:
                    result = None
            print(json.dumps({"seen": True, "result": result, "stdout": stdout[-2000:],
                              "stderr": stderr[-2000:], "temp_files": sorted(glob.glob(pattern))}))
            return
    print(json.dumps({"seen": False, "temp_files": sorted(glob.glob(pattern))}))


if __name__ == "__main__":
    main()
