"""The retraining workflows' part in the process's DBOS instance (:mod:`marketpilot.platform.durable`).

DBOS is one instance per process, shared by every capability with durable workflows;
:mod:`~marketpilot.platform.durable` owns its configuration per profile and its lifetime.
This module joins it with what retraining needs: its steps bound to a database before
launch (launching resumes interrupted runs at once), and the retraining queue, one run at a
time in the whole deployment because training is CPU-heavy and runs of one model must not
race. The names below are kept for the callers that launched DBOS through retraining.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from marketpilot.platform import durable
from marketpilot.platform.config import Settings
from marketpilot.platform.durable import (
    APP_NAME,
    SYSTEM_SCHEMA,
    WORKER_EXECUTOR_ID,
    cli_executor_id,
    dbos_config,
    shutdown,
    system_database_url,
)
from marketpilot.platform.models import retraining
from marketpilot.platform.models.training import DataSource

__all__ = [
    "APP_NAME",
    "SYSTEM_SCHEMA",
    "WORKER_EXECUTOR_ID",
    "cli_executor_id",
    "dbos_config",
    "engine",
    "join",
    "launch",
    "participant",
    "shutdown",
    "system_database_url",
]

PARTICIPANT = "retraining"


def participant(source: DataSource | Settings) -> durable.Participant:
    """Retraining's part: steps bound to `source`, the one-at-a-time retraining queue."""
    return durable.Participant(
        name=PARTICIPANT,
        bind=lambda: retraining.bind(source),
        unbind=retraining.unbind,
        in_flight=retraining.runs_in_flight,
        queues=(durable.QueueSpec(retraining.QUEUE, global_concurrency=1),),
    )


def join(source: DataSource | Settings) -> None:
    """Take part in the process's next DBOS launch (or, if launched already, now)."""
    durable.join(participant(source))


def launch(
    source: DataSource | Settings,
    *,
    executor_id: str | None = None,
    dequeue: bool = True,
    queue_polling_interval: float | None = None,
    polling_interval: float | None = None,
) -> None:
    """Join and launch DBOS for the process (see :func:`marketpilot.platform.durable.launch`);
    other capabilities that joined before are launched with it."""
    settings = source if isinstance(source, Settings) else source.settings
    join(source)
    durable.launch(
        settings, executor_id=executor_id, dequeue=dequeue, polling_interval=polling_interval,
        queue_polling_interval=queue_polling_interval,
    )


@contextmanager
def engine(source: DataSource | Settings, *, executor_id: str | None = None, dequeue: bool = True) -> Iterator[None]:
    """DBOS launched for the block, unless this process launched it already (then reused,
    joining it if retraining had not)."""
    if durable.is_launched():
        if not durable.has_joined(PARTICIPANT):
            join(source)
        yield
        return
    launch(source, executor_id=executor_id, dequeue=dequeue)
    try:
        yield
    finally:
        shutdown()
