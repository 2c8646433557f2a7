"""guarded experiments: experiments and per-arm sufficient statistics

Tables of `marketpilot.measure.experiments.tables`.

Revision ID: 0006_experiments
Revises: 0002
Create Date: 2026-11-23 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import marketpilot.platform.db.schema

revision = "0006_experiments"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC = marketpilot.platform.db.schema.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("control", sa.String(length=64), nullable=False),
        sa.Column("treatments", sa.JSON(), nullable=False),
        sa.Column("halted_arms", sa.JSON(), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("stage_start_sessions", sa.Integer(), nullable=False),
        sa.Column("min_stage_sessions", sa.Integer(), nullable=False),
        sa.Column("horizon_sessions", sa.Integer(), nullable=False),
        sa.Column("auto_ramp", sa.Boolean(), nullable=False),
        sa.Column("guardrails", sa.JSON(), nullable=False),
        sa.Column("halt_reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.CheckConstraint(
            "status IN ('running','halted','killed','completed')", name=op.f("ck_experiments_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_table(
        "experiment_arms",
        sa.Column("experiment_id", sa.String(length=64), nullable=False),
        sa.Column("arm", sa.String(length=64), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=op.f("fk_experiment_arms_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "arm", name=op.f("pk_experiment_arms")),
    )


def downgrade() -> None:
    op.drop_table("experiment_arms")
    op.drop_table("experiments")
