"""The drift monitor end to end on SQLite and PostgreSQL: detection, false alarms, the stored
report and its outbox event, "is drift active?", and the gauges."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import cache

import msgspec
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from marketpilot.domain.events import DriftDetected
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.events.outbox import row_to_event
from marketpilot.platform.monitoring.drift import (
    DriftGauges,
    DriftMonitor,
    DriftReport,
    DriftService,
    DriftThresholds,
    ModelRecorder,
    Reference,
    UnknownModel,
    WindowSpec,
)
from marketpilot.platform.monitoring.drift_store import save_report
from marketpilot.simulate.drift import DriftInjector, DriftScenario, FeatureStream

SOURCE = "/marketpilot/test"
WINDOW = 500  # events per window
SECONDS = 50  # the injector emits 10 events a second: a 50 s time window holds 500 of them
CHANGE_AT = 10 * WINDOW + 250  # the middle of window 10


@cache
def injector() -> DriftInjector:
    return DriftInjector(numeric=4, categorical=1, seed=11)


@cache
def reference() -> Reference:
    train = injector().training(20_000)
    return Reference.fit(train.features, train.predictions, names=train.names, categorical=train.categorical, seed=11)


def utc(value: datetime) -> datetime:
    """SQLite hands `UTCDateTime` columns back naive (a schema-wide issue); they hold UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def feed(recorder: ModelRecorder, stream: FeatureStream) -> None:
    recorder.record_many(stream.features, stream.predictions, stream.times)


def monitor(db: Database, window: WindowSpec, **kw: object) -> DriftMonitor:
    return DriftMonitor(db, source=SOURCE, window=window, **kw)  # type: ignore[arg-type]


def count_rows(db: Database, table: type[t.Base]) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


SCENARIOS = {
    "mean_shift": DriftScenario("mean_shift", change_at=CHANGE_AT, columns=("x0",), magnitude=0.5),
    "variance": DriftScenario("variance", change_at=CHANGE_AT, columns=("x1",), magnitude=1.5),
    "category_mix": DriftScenario("category_mix", change_at=CHANGE_AT, columns=("c0",), magnitude=0.2),
}


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_injected_drift_is_detected_within_one_window_of_the_change_point(
    db: Database, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = SCENARIOS[kind]
    stream = injector().stream(20 * WINDOW, scenario, part=1)
    mon = monitor(db, WindowSpec.every(timedelta(seconds=SECONDS), origin=injector().start))
    feed(mon.register("fraud", reference()), stream)
    mon.advance(stream.times[-1] + SECONDS)
    reports = mon.drain()
    assert len(reports) == 20
    change_window = injector().window_of(CHANGE_AT, timedelta(seconds=SECONDS))
    verdicts = [r.verdict for r in reports]
    first = verdicts.index("drift")
    assert verdicts[:change_window] == ["ok"] * change_window, "a false alarm before the change point"
    assert first <= change_window + 1, f"{kind} detected only in window {first}; change in window {change_window}"
    assert all(v == "drift" for v in verdicts[change_window + 1 :]), "drift must stay detected once fully in"
    assert scenario.columns[0] in reports[change_window + 1].drifted_features
    delay = (first + 1) * WINDOW - CHANGE_AT
    with capsys.disabled():
        print(f"\n[drift] {kind}: change at event {CHANGE_AT} (window {change_window}), first drift verdict in "
              f"window {first}, detection delay {delay} events ({delay / WINDOW:.2f} windows)")


def test_false_alarm_rate_over_100_drift_free_windows_is_at_most_5_percent(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    windows = 100
    stream = injector().stream(windows * WINDOW, part=2)
    mon = monitor(db, WindowSpec.count(WINDOW))
    feed(mon.register("fraud", reference()), stream)
    reports = mon.drain()
    assert len(reports) == windows and count_rows(db, t.DriftReportRow) == windows
    alarms = sum(r.drifted for r in reports)
    rate = alarms / windows
    with capsys.disabled():
        print(f"\n[drift] false-alarm rate on the no-drift control: {alarms}/{windows} windows = {rate:.1%} "
              f"(alpha={mon.thresholds.alpha}, Holm over {len(reference().columns)} columns, PSI > {mon.thresholds.psi})")
    assert rate <= 0.05
    assert count_rows(db, t.OutboxEvent) == alarms  # one event per drifted window, none otherwise


def drifting_monitor(db: Database, **kw: object) -> tuple[DriftMonitor, ModelRecorder]:
    mon = monitor(db, WindowSpec.count(WINDOW), **kw)
    return mon, mon.register("fraud", reference(), version="7")


def feed_windows(recorder: ModelRecorder, *drifted: bool) -> None:
    """One window per flag, a mean shift of 1 sd in x0 where the flag is set; times continue."""
    for i, drift in enumerate(drifted):
        scenario = DriftScenario("mean_shift", change_at=0, columns=("x0",)) if drift else None
        feed(recorder, injector().stream(WINDOW, scenario, part=100 + i, first=i * WINDOW))


def test_a_drifted_window_stores_its_report_and_event_together(db: Database) -> None:
    mon, rec = drifting_monitor(db)
    feed_windows(rec, False, True)
    ok, drift = mon.drain()
    assert (ok.verdict, drift.verdict) == ("ok", "drift")
    assert "x0" in drift.drifted_features and drift.model_version == "7"
    with db.session() as s:
        rows = s.scalars(select(t.OutboxEvent)).all()
        stored = s.get(t.DriftReportRow, drift.id)
        assert stored is not None
    (row,) = rows
    event = row_to_event(row)
    payload = event.payload()
    assert isinstance(payload, DriftDetected)
    assert (event.type, event.subject, event.source) == ("marketpilot.drift.detected", "fraud", SOURCE)
    assert utc(event.time) == drift.window_end
    assert payload.report_id == drift.id and payload.model_version == "7"
    assert payload.features == list(drift.drifted_features)
    assert payload.psi["x0"] == pytest.approx(next(f.psi for f in drift.features if f.name == "x0"))
    assert (stored.verdict, stored.observations, utc(stored.window_end)) == ("drift", WINDOW, drift.window_end)


def test_report_and_event_commit_or_roll_back_as_one_transaction(db: Database) -> None:
    mon, rec = drifting_monitor(db)
    feed_windows(rec, True)
    (report,) = mon.drain()
    fresh = msgspec.structs.replace(report, id=None)
    with pytest.raises(RuntimeError, match="crash after the write"), db.session() as s:
        save_report(s, fresh, SOURCE)
        raise RuntimeError("crash after the write")
    assert (count_rows(db, t.DriftReportRow), count_rows(db, t.OutboxEvent)) == (1, 1)
    with db.session() as s:
        again, event = save_report(s, fresh, SOURCE)
    assert event is not None and again.id != report.id
    assert (count_rows(db, t.DriftReportRow), count_rows(db, t.OutboxEvent)) == (2, 2)


def test_is_active_flips_on_drift_and_back_off_after_one_clean_window(db: Database) -> None:
    service = DriftService(db, ttl=60.0)
    mon, rec = drifting_monitor(db, service=service)
    reader = DriftService(db, ttl=0.0)  # another replica: no reports pushed to it, reads the table
    assert not service.is_active("fraud") and service.status("fraud") is None
    expected = []
    for i, drift in enumerate([False, True, True, False]):
        feed(rec, injector().stream(
            WINDOW, DriftScenario("mean_shift", change_at=0, columns=("x0",)) if drift else None,
            part=200 + i, first=i * WINDOW,
        ))
        (report,) = mon.drain()
        assert report.drifted is drift
        expected.append(drift)
        assert service.is_active("fraud") is drift, f"after window {i}"
        assert reader.is_active("fraud") is drift, f"after window {i}, read from the database"
    status = reader.status("fraud")
    assert status is not None and status.verdict == "ok" and len(status.features) == 6


def test_an_insufficient_window_leaves_drift_active_as_it_was(db: Database) -> None:
    service = DriftService(db, ttl=0.0)
    mon, rec = drifting_monitor(db, service=service)
    feed_windows(rec, True)
    mon.drain()
    feed(rec, injector().stream(50, part=300, first=WINDOW))  # clean, but too few events to judge
    mon.close_windows()
    (small,) = mon.drain()
    assert small.verdict == "insufficient" and small.observations == 50
    assert service.is_active("fraud")


def test_status_is_served_from_cache_until_the_ttl_passes(db: Database) -> None:
    now = [1000.0]
    cached = DriftService(db, ttl=5.0, clock=lambda: now[0])
    assert cached.status("fraud") is None
    mon, rec = drifting_monitor(db)  # a monitor that does not tell `cached`
    feed_windows(rec, True)
    mon.drain()
    now[0] += 4.9
    assert not cached.is_active("fraud")
    now[0] += 0.2
    assert cached.is_active("fraud")


def test_gauges_show_each_columns_psi_and_whether_drift_is_active(db: Database) -> None:
    registry = CollectorRegistry()
    mon, rec = drifting_monitor(db, gauges=DriftGauges(registry))
    feed_windows(rec, True)
    (drift,) = mon.drain()
    for f in drift.features:
        assert registry.get_sample_value("marketpilot_drift_psi", {"model": "fraud", "feature": f.name}) == f.psi
    assert registry.get_sample_value("marketpilot_drift_active", {"model": "fraud"}) == 1.0
    feed(rec, injector().stream(WINDOW, part=400, first=WINDOW))
    mon.drain()
    assert registry.get_sample_value("marketpilot_drift_active", {"model": "fraud"}) == 0.0
    assert registry.get_sample_value("marketpilot_drift_windows_total", {"model": "fraud", "verdict": "drift"}) == 1.0


def test_reports_returns_the_latest_windows_of_each_model_newest_first(db: Database) -> None:
    mon = monitor(db, WindowSpec.count(WINDOW), thresholds=DriftThresholds(min_count=10))
    for model in ("fraud", "ranker"):
        feed_windows(mon.register(model, reference()), False, False, True)
    mon.drain()
    service = DriftService(db)
    latest = service.reports(per_model=2)
    assert [(r.model, r.verdict) for r in latest] == [("fraud", "drift"), ("fraud", "ok"), ("ranker", "drift"),
                                                      ("ranker", "ok")]
    assert latest[0].window_end > latest[1].window_end
    only = service.reports(model="ranker", per_model=10)
    assert [r.model for r in only] == ["ranker"] * 3
    assert service.reports(model="nobody") == []
    assert isinstance(only[0], DriftReport) and only[0].thresholds.min_count == 10


def test_registering_a_new_version_judges_the_open_window_by_the_old_reference(db: Database) -> None:
    mon, rec = drifting_monitor(db)
    feed(rec, injector().stream(300, part=500))
    mon.register("fraud", reference(), version="8")
    assert mon.pending == 1
    (report,) = mon.drain()
    assert (report.model_version, report.observations) == ("7", 300)
    assert mon.recorder("fraud").version == "8"


def test_an_unregistered_model_is_named_in_the_error(db: Database) -> None:
    mon = monitor(db, WindowSpec.count(WINDOW))
    with pytest.raises(UnknownModel, match="no drift reference registered for model 'ghost'"):
        mon.record("ghost", [1.0], 0.5, 0.0)


def test_the_background_drain_stores_closed_windows_and_stop_can_flush(db: Database) -> None:
    mon, rec = drifting_monitor(db)
    mon.start(interval=0.05)
    try:
        with pytest.raises(RuntimeError, match="drift monitor already started"):
            mon.start()
        feed_windows(rec, True)
        deadline = time.monotonic() + 30  # a generous bound on a busy machine, not a timing claim
        while count_rows(db, t.DriftReportRow) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert count_rows(db, t.DriftReportRow) == 1
        feed(rec, injector().stream(250, part=600, first=WINDOW))  # half a window, still open
    finally:
        mon.stop(flush=True)
    assert mon.pending == 0
    assert count_rows(db, t.DriftReportRow) == 2
