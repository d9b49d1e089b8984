#!/usr/bin/env bash
# Runs ansible-test on this checkout. ansible-test needs the collection at
# .../ansible_collections/dockhand/registry, so each run copies the tree into a
# fresh folder of that shape outside the checkout (with community.docker, a
# declared dependency, beside it) and runs there; tests/output is copied back.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# A DOCKER_HOST given by the caller (an engine of the matrix) wins over the host engine.
[ -z "${DOCKER_HOST:-}" ] && [ -f "$ENGINE_ENV_FILE" ] && . "$ENGINE_ENV_FILE"
export DOCKER_HOST

ANSIBLE_WHEEL_VERSION=12.3.0   # the 'ansible' package that bundles community.docker 4.x
collections_root=$(mktemp -d "${TMPDIR:-/tmp}/dockhand-ac.XXXXXX")
trap 'rm -rf "$collections_root"' EXIT
"$REPO_ROOT/scripts/dependencies.sh" "$collections_root" "$ANSIBLE_WHEEL_VERSION"

target=$collections_root/ansible_collections/dockhand/registry
mkdir -p "$target"
tar -C "$REPO_ROOT" --exclude=./.venv --exclude=./.state --exclude=./.git --exclude=./tests/output \
  --exclude=./benchmarks/work --exclude='__pycache__' -cf - . | tar -C "$target" -xf -
# ansible-test only considers files git knows about when the tree is a git checkout;
# a plain copy makes it consider everything, so drop what git ignores.
if git -C "$REPO_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$REPO_ROOT" ls-files --others --ignored --exclude-standard --directory -z \
    | (cd "$target" && xargs -0 -r rm -rf --)
fi
# The test bed's settings, with the engine the targets use set to this run's DOCKER_HOST,
# so one test bed serves every engine of the matrix.
bed_config=$REPO_ROOT/tests/integration/integration_config.yml
if [ -f "$bed_config" ] && [ -n "${DOCKER_HOST:-}" ]; then
  { grep -v '^docker_host:' "$bed_config" || true; echo "docker_host: $DOCKER_HOST"; } \
    > "$target/tests/integration/integration_config.yml"
elif [ -f "$bed_config" ]; then
  cp "$bed_config" "$target/tests/integration/"
fi

# ansible-test's managed venvs download a get-pip script from a host this machine cannot
# reach; a stand-in bootstraps pip with ensurepip instead.
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',*$/\1/p" \
  "$VENV"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -n1)
standin=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
mkdir -p "$(dirname "$standin")"
cp "$REPO_ROOT/scripts/get_pip_standin.py" "$standin"

set +e
(cd "$target" && PATH="$VENV/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$collections_root" \
  "$VENV/bin/ansible-test" "$@")
rc=$?
set -e
mkdir -p "$REPO_ROOT/tests/output"
[ -d "$target/tests/output" ] && cp -a "$target/tests/output/." "$REPO_ROOT/tests/output/"
exit $rc
