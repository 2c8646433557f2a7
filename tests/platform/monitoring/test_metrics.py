from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from marketpilot.domain.events import ListingUpdated
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.events import outbox
from marketpilot.platform.monitoring import Metrics, outbox_backlog


def write_events(db: Database, n: int) -> None:
    with db.session() as s:
        outbox.append_many(s, [ListingUpdated(listing_id=f"l{i}", seller_id="s", changes={}) for i in range(n)], "/t")


def set_offset(db: Database, consumer: str, position: int) -> None:
    with db.session() as s:
        s.merge(t.ConsumerOffset(consumer=consumer, position=position))


def test_embedded_backlog_is_measured_from_the_slowest_consumer(db: Database) -> None:
    assert outbox_backlog(db, relay=False) == (0, {})
    write_events(db, 10)
    assert outbox_backlog(db, relay=False) == (10, {})
    set_offset(db, "fast", 10)
    set_offset(db, "slow", 4)
    assert outbox_backlog(db, relay=False) == (6, {"fast": 0, "slow": 6})


def test_relay_backlog_counts_unpublished_events(db: Database) -> None:
    write_events(db, 5)
    with db.session() as s:
        s.execute(update(t.OutboxEvent).where(t.OutboxEvent.position <= 3).values(published_at=t.utcnow()))
    assert outbox_backlog(db, relay=True)[0] == 2


def test_scrape_exposes_backlog_lag_and_http_metrics(db: Database) -> None:
    write_events(db, 3)
    set_offset(db, "recommend", 1)
    metrics = Metrics(db, relay=False)
    metrics.http.observe("GET", "/v1/listings/{listing_id}", 200, 0.002)
    metrics.http.observe("GET", "/v1/listings/{listing_id}", 200, 0.004)
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }
    assert values[("marketpilot_outbox_up", ())] == 1
    assert values[("marketpilot_outbox_backlog_events", (("delivery", "embedded"),))] == 2
    assert values[("marketpilot_consumer_lag_events", (("consumer", "recommend"),))] == 2
    labels = (("method", "GET"), ("route", "/v1/listings/{listing_id}"), ("status", "200"))
    assert values[("marketpilot_http_requests_total", labels)] == 2
    assert values[("marketpilot_http_request_duration_seconds_sum", labels)] == 0.006


def test_an_unreadable_outbox_reports_down_instead_of_failing_the_scrape(tmp_path: object) -> None:
    metrics = Metrics(Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"), relay=True)
    text = metrics.render().decode()
    assert "marketpilot_outbox_up 0.0" in text
    assert "marketpilot_outbox_backlog_events" not in text.replace("# HELP", "").split("marketpilot_outbox_up")[0]
