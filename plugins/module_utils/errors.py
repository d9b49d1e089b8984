# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one exception base, and how a module fails with it.

Every error the collection raises on purpose derives from ``DockhandError``, whose text
says what failed and why. A module runs its work through ``run_or_fail``: a DockhandError
becomes ``fail_json`` with that text on one line and whatever result the module had
gathered so far; anything else is a bug, reported as one line with its traceback.
"""

from __future__ import annotations

import traceback


class DockhandError(Exception):
    """A failure the collection expected and explained; ``str(exc)`` is the explanation."""


def one_line(text) -> str:
    """Collapse whitespace so a message stays on one line."""
    return " ".join(str(text).split())


def kind_words(value, kinds):
    """The words of the first ``(types, words)`` row of ``kinds`` that ``value`` is an instance of, or None."""
    return next((words for types, words in kinds if isinstance(value, types)), None)


def unexpected_failure(exc) -> str:
    """One line for an error no handler expected; the module passes the traceback as ``exception`` (shown at -vvv)."""
    return "unexpected error, please report it: %s: %s" % (type(exc).__name__, one_line(exc))


def run_or_fail(module, work, partial_result=None):
    """Return ``work()``; when it raises, fail ``module`` with one line.

    ``partial_result`` is a function returning what the module did before the failure
    (the tags it deleted, say); its keys go into the failed result next to ``msg``.
    ``fail_json`` is called after the except block, so an expected failure carries no
    traceback.
    """
    try:
        return work()
    except DockhandError as exc:
        failure = dict(partial_result() if partial_result else {})
        failure["msg"] = one_line(exc) or type(exc).__name__
    except Exception as exc:  # a bug, or a server stranger than every check: still one line
        # The partial result too: a bug after deletions must still report them (changed, deleted_tags).
        failure = dict(partial_result() if partial_result else {})
        failure.update(msg=unexpected_failure(exc), exception=traceback.format_exc())
    module.fail_json(**failure)
    return None  # not reached: fail_json exits
