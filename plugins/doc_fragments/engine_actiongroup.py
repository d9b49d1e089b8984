# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Membership of the engine modules in the action group set with module_defaults."""

    DOCUMENTATION = r"""
attributes:
  action_group:
    support: full
    membership:
      - dockhand.registry.engine
  platform:
    platforms: posix
"""
