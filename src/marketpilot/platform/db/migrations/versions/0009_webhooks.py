"""seller webhooks

Sellers' endpoints for order notifications and the deliveries to them
(`marketpilot.workflows.webhooks`).

Revision ID: 0009_webhooks
Revises: 0004_workflows
Create Date: 2026-11-24 19:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import marketpilot.platform.db.schema

revision = "0009_webhooks"
down_revision = "0004_workflows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seller_webhooks",
        sa.Column("seller_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("created_at", marketpilot.platform.db.schema.UTCDateTime(), nullable=False),
        sa.Column("updated_at", marketpilot.platform.db.schema.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["seller_id"], ["sellers.id"], name=op.f("fk_seller_webhooks_seller_id_sellers")),
        sa.PrimaryKeyConstraint("seller_id", name=op.f("pk_seller_webhooks")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", marketpilot.platform.db.schema.UTCDateTime(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", marketpilot.platform.db.schema.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", marketpilot.platform.db.schema.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"], unique=False)
    op.create_index("ix_webhook_deliveries_seller", "webhook_deliveries", ["seller_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_seller", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("seller_webhooks")
