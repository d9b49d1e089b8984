#!/usr/bin/env bash
# The checks Galaxy and the Ansible community package run on a collection, offline, from
# a venv of their own (.state/lint-venv, tests/requirements-lint.txt pinned by
# tests/constraints.txt): ansible-lint (production profile, also on the module EXAMPLES
# and the READMEs' YAML), the built tarball's file list, galaxy-importer on that tarball
# (required tags checked), antsibull-docs lint-collection-docs --plugin-docs,
# antsibull-changelog lint, reuse lint, and antsibull-nox's extra checks.
# Every check runs; the exit code says whether all passed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT" || exit 1

LINT_VENV=${DOCKHAND_LINT_VENV:-$STATE_DIR/lint-venv}
prepare_venv "$LINT_VENV" "$REPO_ROOT/tests/requirements-lint.txt" || die "installing the lint tools failed"
export PATH="$LINT_VENV/bin:$PATH"

# Galaxy cannot be reached: the dependencies come from the 'ansible' wheel, as for the
# tests, into the lint venv's site-packages. ansible-core scans sys.path for
# ansible_collections, so every tool finds them there, also galaxy-importer's own
# ansible-lint run, which sets ANSIBLE_COLLECTIONS_PATH to its unpacked tarball.
site_packages=$("$LINT_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
DOCKHAND_VENV=$LINT_VENV "$REPO_ROOT/scripts/dependencies.sh" "$site_packages" || die "no community.docker"

work=$(mktemp -d "${TMPDIR:-/tmp}/dockhand-lint.XXXXXX")
trap 'rm -rf "$work"' EXIT
# This checkout as dockhand.registry, for the tools that resolve its FQCNs.
mkdir -p "$work/collections/ansible_collections/dockhand"
ln -s "$REPO_ROOT" "$work/collections/ansible_collections/dockhand/registry"
export ANSIBLE_COLLECTIONS_PATH=$work/collections
export ANSIBLE_LOCAL_TEMP=$work/ansible-tmp NO_COLOR=1

passed=0
failed=0
failed_names=()
check() {
  local name=$1; shift
  local started=$SECONDS
  log "--- $name"
  if "$@"; then
    passed=$((passed + 1)); log "--- $name passed in $((SECONDS - started))s"
  else
    failed=$((failed + 1)); failed_names+=("$name"); log "--- $name FAILED after $((SECONDS - started))s"
  fi
}

build_tarball() {
  ansible-galaxy collection build --force --output-path "$work/build" >/dev/null || return 1
  tarball=$(ls "$work"/build/dockhand-registry-*.tar.gz)
}

# Only what a user of the collection needs; anything else at the top level (or a cache
# anywhere) means build_ignore in galaxy.yml misses something.
tarball_contents() {
  [ -n "${tarball:-}" ] || return 1
  "$LINT_VENV/bin/python" - "$tarball" <<'PY'
import os
import re
import sys
import tarfile

allowed = re.compile(
    r"^(MANIFEST\.json|FILES\.json|README\.md|COPYING|REUSE\.toml|CHANGELOG\.rst|requirements\.txt"
    r"|LICENSES|meta|plugins|roles|playbooks|changelogs|tests/(unit|integration|sanity))(/|$)"
)
unwanted = re.compile(r"(^|/)(__pycache__|\.pytest_cache)(/|$)|\.pyc$")
with tarfile.open(sys.argv[1]) as tar:
    names = [member.name for member in tar.getmembers() if member.isfile()]
bad = [n for n in names if not allowed.match(n) or unwanted.search(n)]
for name in sorted(bad):
    print(f"{sys.argv[1]}: {name}: not for users; add it to build_ignore in galaxy.yml")
size = os.path.getsize(sys.argv[1])
print(f"{os.path.basename(sys.argv[1])}: {len(names)} files, {size} bytes")
sys.exit(1 if bad else 0)
PY
}

# Fatal: a failed import, and any warning or error the importer logs (its ansible-lint
# findings, missing required tags, ...).
galaxy_importer() {
  [ -n "${tarball:-}" ] || return 1
  local log_file=$work/galaxy-importer.log rc
  (cd "$work/build" && GALAXY_IMPORTER_CHECK_REQUIRED_TAGS=true GALAXY_IMPORTER_REQUIRE_V1_OR_GREATER=true \
    GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP=$work/ansible-tmp \
    python -m galaxy_importer.main "$(basename "$tarball")") >"$log_file" 2>&1
  rc=$?
  if [ $rc -ne 0 ] || grep -qE '^(WARNING|ERROR)' "$log_file"; then
    grep -E '^(WARNING|ERROR)' "$log_file" || tail -n 20 "$log_file"
    return 1
  fi
  tail -n 1 "$log_file"
}

# What users copy: module EXAMPLES and the READMEs' YAML, under the same profile.
doc_examples() {
  "$LINT_VENV/bin/python" "$REPO_ROOT/scripts/extract_examples.py" "$REPO_ROOT" "$work/examples" || return 1
  (cd "$work/examples" && ansible-lint --offline --profile production)
}

changelog() {
  antsibull-changelog lint || return 1
  antsibull-changelog lint-changelog-yaml --strict changelogs/changelog.yaml || return 1
  # Fragments are RST: Ansible markup (C(), O(), M(), ...) would reach the changelog raw.
  local rst_sources=(/dev/null) file
  for file in changelogs/fragments/*.yml CHANGELOG.rst; do
    [ -f "$file" ] && rst_sources+=("$file")
  done
  if grep -nE '\b[BCEIMOPRUV]\([^)]*\)' "${rst_sources[@]}"; then
    echo "Ansible markup in the changelog: write RST (\`\`code\`\`) in fragments"
    return 1
  fi
}

check ansible-lint ansible-lint
check doc-examples doc_examples
check build build_tarball
check tarball-contents tarball_contents
check galaxy-importer galaxy_importer
check antsibull-docs antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs=all "$REPO_ROOT"
check antsibull-changelog changelog
check reuse reuse lint --lines
check extra-checks nox --envdir "$STATE_DIR/nox" -e extra-checks

[ $failed -eq 0 ] || log "failed checks: ${failed_names[*]}"
log "lint checks: $passed passed, $failed failed"
[ $failed -eq 0 ]
