"""Blocking work (network, decoding, password hashing) off the UI thread.

``run(work, done=..., failed=...)`` calls ``work`` on a worker thread and
hands the result or the exception to ``done`` / ``failed`` on the UI thread
(through the Kivy clock), so a screen never waits on the network.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from kivy.clock import Clock

log = logging.getLogger(__name__)


class Background:
    def __init__(self, workers: int = 3):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="app-work")
        self._lock = threading.Lock()
        self._busy = 0
        self._closed = False

    @property
    def busy(self) -> int:
        """Work submitted whose result has not reached the UI thread yet."""
        with self._lock:
            return self._busy

    def run(self, work: Callable, *args, done: Callable | None = None,
            failed: Callable[[BaseException], None] | None = None, **kwargs) -> Future | None:
        with self._lock:
            if self._closed:
                return None
            self._busy += 1
        future = self._pool.submit(work, *args, **kwargs)
        future.add_done_callback(
            lambda f: Clock.schedule_once(lambda _dt: self._deliver(f, done, failed), 0))
        return future

    def _deliver(self, future: Future, done, failed) -> None:
        try:
            if self._closed:  # the app stopped: no screen is waiting any more
                return
            try:
                result = future.result()
            except BaseException as exc:  # noqa: BLE001 - handed to the screen that asked
                if failed is not None:
                    failed(exc)
                else:
                    log.error("background work failed: %r", exc)
                return
            if done is not None:
                done(result)
        finally:
            with self._lock:
                self._busy -= 1

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
