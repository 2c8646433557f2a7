"""fraud decisions (review queue) and reputation lists

Tables of `marketpilot.fraud.tables`: every fraud decision with its score, thresholds,
model version, strategy and reasons (the `review` ones form the analyst queue), and the
imported IP / device / email-domain / instrument reputation lists.

Revision ID: 0003_fraud
Revises: 0002
Create Date: 2026-11-23 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import marketpilot.platform.db.schema

revision = "0003_fraud"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fraud_decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("block_threshold", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("label", sa.Integer(), nullable=True),
        sa.Column("reviewer", sa.String(length=64), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("decided_at", marketpilot.platform.db.schema.UTCDateTime(), nullable=False),
        sa.Column("reviewed_at", marketpilot.platform.db.schema.UTCDateTime(), nullable=True),
        sa.CheckConstraint("action IN ('approve','review','block')", name=op.f("ck_fraud_decisions_action_known")),
        sa.CheckConstraint("strategy IN ('model','fallback')", name=op.f("ck_fraud_decisions_strategy_known")),
        sa.CheckConstraint("status IN ('open','closed')", name=op.f("ck_fraud_decisions_status_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fraud_decisions")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_fraud_decisions_transaction_id")),
    )
    with op.batch_alter_table("fraud_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_fraud_decisions_queue", ["status", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_fraud_decisions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_fraud_decisions_order_id"), ["order_id"], unique=False)
    op.create_table(
        "fraud_reputation",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("added_at", marketpilot.platform.db.schema.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('ip','device','email_domain','instrument')", name=op.f("ck_fraud_reputation_kind_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fraud_reputation")),
        sa.UniqueConstraint("kind", "value", name="uq_fraud_reputation_kind_value"),
    )


def downgrade() -> None:
    op.drop_table("fraud_reputation")
    with op.batch_alter_table("fraud_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fraud_decisions_order_id"))
        batch_op.drop_index(batch_op.f("ix_fraud_decisions_user_id"))
        batch_op.drop_index("ix_fraud_decisions_queue")
    op.drop_table("fraud_decisions")
