"""ranking disputes

A seller's dispute of a listing's ranking, linked to the logged slates it is about
(`marketpilot.recommend.transparency`).

Revision ID: 0007_ranking_disputes
Revises: 0002
Create Date: 2026-11-23 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import marketpilot.platform.db.schema

revision = "0007_ranking_disputes"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ranking_disputes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=64), nullable=False),
        sa.Column("listing_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("request_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", marketpilot.platform.db.schema.UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('open','resolved','rejected')", name=op.f("ck_ranking_disputes_status_known")),
        sa.ForeignKeyConstraint(["seller_id"], ["sellers.id"], name=op.f("fk_ranking_disputes_seller_id_sellers")),
        sa.ForeignKeyConstraint(["listing_id"], ["listings.id"], name=op.f("fk_ranking_disputes_listing_id_listings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ranking_disputes")),
    )
    op.create_index("ix_ranking_disputes_listing", "ranking_disputes", ["listing_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ranking_disputes_listing", table_name="ranking_disputes")
    op.drop_table("ranking_disputes")
