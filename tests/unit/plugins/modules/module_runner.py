# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs a module's main() in-process with given arguments, for the module unit tests."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


def run_module(monkeypatch, module, args):
    """Call ``module.main()`` with ``args``; returns (succeeded, result dict)."""
    def exit_json(self, **kwargs):
        raise ExitJson(kwargs)

    def fail_json(self, **kwargs):
        raise FailJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    args = dict(args, _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    # ansible-core 2.19 also wants to know how the arguments were serialized.
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises((ExitJson, FailJson)) as info:
        module.main()
    return info.type is ExitJson, info.value.args[0]
