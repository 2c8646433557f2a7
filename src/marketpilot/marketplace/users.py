"""Buyers."""

from __future__ import annotations

from sqlalchemy import select

from marketpilot.domain.entities import User, UserIn
from marketpilot.domain.errors import Conflict, NotFound
from marketpilot.marketplace.page import Page
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow


class UserService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, user: UserIn) -> User:
        with self.db.session() as s:
            if s.get(t.User, user.id) is not None:
                raise Conflict(f"user {user.id!r} already exists")
            row = t.User(**user.model_dump(exclude={"created_at"}), created_at=user.created_at or utcnow())
            s.add(row)
            s.flush()
            return User.model_validate(row)

    def get(self, user_id: str) -> User:
        with self.db.read() as s:
            row = s.get(t.User, user_id)
            if row is None:
                raise NotFound(f"user {user_id!r} not found")
            return User.model_validate(row)

    def list(self, *, limit: int, cursor: str | None = None, region: str | None = None) -> Page[User]:
        q = select(t.User).order_by(t.User.id).limit(limit + 1)
        if cursor:
            q = q.where(t.User.id > cursor)
        if region:
            q = q.where(t.User.region == region)
        with self.db.read() as s:
            rows = list(s.scalars(q))
        items = [User.model_validate(r) for r in rows[:limit]]
        return Page(items=items, next_cursor=items[-1].id if len(rows) > limit else None)
