"""Tables of the recommendation capability (migration 0007_ranking_disputes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from marketpilot.platform.db.schema import Base, UTCDateTime


class RankingDispute(Base):
    """A seller's objection to how a listing was ranked, linked to the slates (request ids) it is about."""

    __tablename__ = "ranking_disputes"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(64), ForeignKey("sellers.id"))
    listing_id: Mapped[str] = mapped_column(String(64), ForeignKey("listings.id"))
    reason: Mapped[str] = mapped_column(Text)
    request_ids: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    __table_args__ = (
        CheckConstraint("status IN ('open','resolved','rejected')", name="status_known"),
        Index("ix_ranking_disputes_listing", "listing_id", "created_at"),
    )
