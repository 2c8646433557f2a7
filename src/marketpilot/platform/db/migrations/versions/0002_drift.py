"""drift reports

One row per (model, closed monitoring window) with its drift verdict and per-feature
statistics; written by `marketpilot.platform.monitoring.drift.DriftMonitor`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import marketpilot.platform.db.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_reports",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("instance", sa.String(length=128), nullable=False),
        sa.Column("window_start", marketpilot.platform.db.schema.UTCDateTime(), nullable=False),
        sa.Column("window_end", marketpilot.platform.db.schema.UTCDateTime(), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("sampled", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("created_at", marketpilot.platform.db.schema.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "verdict IN ('drift','ok','insufficient')", name=op.f("ck_drift_reports_verdict_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_reports")),
    )
    with op.batch_alter_table("drift_reports", schema=None) as batch_op:
        batch_op.create_index("ix_drift_reports_model_window", ["model", "window_end"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("drift_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_reports_model_window")

    op.drop_table("drift_reports")
