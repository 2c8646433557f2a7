"""ledger retention

An index on `processed_events.processed_at`, so the retention purge
(`marketpilot.platform.events.retention.purge_ledger`) finds the oldest ledger rows without
scanning the table once per batch.

Revision ID: 0008_ledger_retention
Revises: 0001
Create Date: 2026-11-24 19:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0008_ledger_retention"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_processed_events_processed_at", "processed_events", ["processed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_processed_events_processed_at", table_name="processed_events")
