"""buyers' e-mail addresses

An optional `users.email`, where the order notifications of channel ``email`` go
(`marketpilot.workflows.email`).

Revision ID: 0010_user_email
Revises: 0008_ledger_retention
Create Date: 2026-11-24 21:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_user_email"
down_revision = "0008_ledger_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email")
