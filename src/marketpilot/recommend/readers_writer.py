"""A readers-writer lock: many requests read a served model at once; adding listings to it
(`TwoStagePipeline.add_listings`, which replaces a dozen arrays one after another) waits
for them and holds new ones back until it is done, so no request sees half of the change.

The standard library has no such lock and the PyPI ones are unmaintained single-file
packages, so it is written here: a condition variable, a reader count, and a writer flag.
A waiting writer blocks new readers, so a steady stream of requests cannot starve it.
Not reentrant: a reader must not take the lock again while a writer may be waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadersWriterLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()
