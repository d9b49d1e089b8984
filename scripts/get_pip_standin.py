"""Stand-in for ansible-test's get-pip script, whose host is not reachable here.

ansible-test runs it with pip's options and the packages to install. It
bootstraps pip with ensurepip, then installs the requested packages.
"""
import os
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
# ensurepip points PIP_CONFIG_FILE at /dev/null, which would drop the machine's pip
# configuration (its index and CA bundle) for the installs below.
os.environ.pop("PIP_CONFIG_FILE", None)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
