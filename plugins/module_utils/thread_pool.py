# -*- coding: utf-8 -*-
# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running one function over many items on a bounded number of threads."""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait


def map_bounded(func, items, workers: int) -> list:
    """``[func(item) for item in items]`` on at most ``workers`` threads, in order; the first error is raised.

    Items not started when an error comes are cancelled, so a failure stops the run early.
    """
    items = list(items)
    workers = min(workers, len(items))
    if workers <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as executor:
        futures = [executor.submit(func, item) for item in items]
        _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        failed = [f for f in futures if f.done() and not f.cancelled() and f.exception() is not None]
        if failed:
            raise failed[0].exception()
        return [f.result() for f in futures]
