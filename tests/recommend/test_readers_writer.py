"""The readers-writer lock that lets requests share a served model while listings are added."""

from __future__ import annotations

import sys
import threading

from marketpilot.recommend.readers_writer import ReadersWriterLock


def test_readers_share_and_a_writer_waits_for_them_then_holds_new_readers_back() -> None:
    lock = ReadersWriterLock()
    first_in, release_first, writer_in, second_in = (threading.Event() for _ in range(4))

    def reader(entered: threading.Event, hold: threading.Event | None) -> None:
        with lock.reading():
            entered.set()
            if hold is not None:
                hold.wait(10)

    def writer() -> None:
        with lock.writing():
            writer_in.set()

    t1 = threading.Thread(target=reader, args=(first_in, release_first))
    t1.start()
    assert first_in.wait(10)
    with lock.reading():  # a second reader alongside the first
        pass
    tw = threading.Thread(target=writer)
    tw.start()
    assert not writer_in.wait(0.2)  # the first reader is still inside
    t2 = threading.Thread(target=reader, args=(second_in, None))
    t2.start()
    assert not second_in.wait(0.2)  # a writer is waiting: new readers queue behind it
    release_first.set()
    assert writer_in.wait(10) and second_in.wait(10)
    for t in (t1, tw, t2):
        t.join(10)


def test_no_reader_ever_sees_a_writer_inside() -> None:
    lock = ReadersWriterLock()
    state = {"readers": 0, "writing": False}
    guard = threading.Lock()
    violations: list[str] = []

    def reader() -> None:
        for _ in range(300):
            with lock.reading():
                with guard:
                    state["readers"] += 1
                    if state["writing"]:
                        violations.append("reader inside while writing")
                with guard:
                    state["readers"] -= 1

    def writer() -> None:
        for _ in range(100):
            with lock.writing():
                with guard:
                    if state["readers"] or state["writing"]:
                        violations.append("writer inside with others")
                    state["writing"] = True
                with guard:
                    state["writing"] = False

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert not any(t.is_alive() for t in threads)
    assert violations == []
