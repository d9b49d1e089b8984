# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""registry_gc_referrers through main(): check mode writes nothing, a bad dry-run output fails with one line."""

from __future__ import annotations

from ansible_collections.dockhand.registry.plugins.module_utils.referrers import referrers_tag
from ansible_collections.dockhand.registry.plugins.modules import registry_gc_referrers
from ansible_collections.dockhand.registry.tests.unit.plugins.module_utils.registry_fake_oci import FakeDistribution3
from ansible_collections.dockhand.registry.tests.unit.plugins.modules.module_runner import run_module as run_module_main

REPO = "team/app"


class ClientFake(FakeDistribution3):
    """The fake registry, used as the module uses its client (a context manager)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def run_module(monkeypatch, registry, output, check_mode=False):
    monkeypatch.setattr(registry_gc_referrers.RegistryClient, "from_params",
                        staticmethod(lambda params, prefix="", **overrides: registry))
    return run_module_main(monkeypatch, registry_gc_referrers,
                           dict(registry="127.0.0.1:5000", gc_output=output, _ansible_check_mode=check_mode))


def signed(registry):
    image = registry.add_image(REPO, ["v1"])
    signature, _body = registry.add_referrer(REPO, image, artifact_type="application/vnd.example.sig")
    output = "%s\nmanifest eligible for deletion: {%s %s [v1]}\n\n0 blobs marked, 0 blobs and 1 manifests eligible" \
             " for deletion\n" % (REPO, REPO, signature)
    return image, signature, output


def test_check_mode_reports_the_protection_and_writes_nothing_then_a_real_run_converges(monkeypatch):
    registry = ClientFake()
    image, signature, output = signed(registry)
    ok, result = run_module(monkeypatch, registry, output, check_mode=True)
    assert ok and result["changed"] and result["protected"][0]["digest"] == signature
    assert registry.get_manifest(REPO, referrers_tag(image)) is None
    ok, result = run_module(monkeypatch, registry, output)
    assert ok and result["changed"] and registry.get_manifest(REPO, referrers_tag(image)) is not None
    ok, result = run_module(monkeypatch, registry, output)
    assert ok and not result["changed"] and result["manifests_eligible"] == 1


def test_a_malformed_line_fails_with_one_line_and_no_request(monkeypatch):
    registry = ClientFake()
    _image, _signature, output = signed(registry)
    calls = len(registry.calls)
    ok, result = run_module(monkeypatch, registry, output.replace(" [v1]}", "}"))
    assert not ok and "line 2 of the garbage-collect dry run" in result["msg"] and "nothing was changed" in result["msg"]
    assert len(registry.calls) == calls
