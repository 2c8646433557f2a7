"""The objects one process needs, built once from settings: database and services.

The API, the CLI and the worker each build a `Runtime`; tests build one per database.
"""

from __future__ import annotations

from functools import cached_property

from marketpilot.marketplace import (
    InteractionService,
    InventoryService,
    ListingService,
    OrderService,
    SellerService,
    UserService,
)
from marketpilot.platform.config import Settings, get_settings
from marketpilot.platform.db import Database
from marketpilot.platform.events import EventBus
from marketpilot.platform.features.backends import open_online_store
from marketpilot.platform.features.materialize import InteractionMaterializer
from marketpilot.platform.features.online import OnlineStore
from marketpilot.platform.monitoring.drift_service import DriftService


class Runtime:
    def __init__(self, settings: Settings | None = None, *, migrate: bool = True) -> None:
        self.settings = settings or get_settings()
        if not self.settings.is_distributed:
            self.settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database.from_settings(self.settings)
        if migrate:
            self.db.migrate()

    @property
    def source(self) -> str:
        return self.settings.event_source

    @cached_property
    def sellers(self) -> SellerService:
        return SellerService(self.db)

    @cached_property
    def users(self) -> UserService:
        return UserService(self.db)

    @cached_property
    def listings(self) -> ListingService:
        return ListingService(self.db, self.source)

    @cached_property
    def inventory(self) -> InventoryService:
        return InventoryService(self.db, self.source)

    @cached_property
    def interactions(self) -> InteractionService:
        return InteractionService(self.db, self.source)

    @cached_property
    def orders(self) -> OrderService:
        return OrderService(self.db, self.source)

    @cached_property
    def features(self) -> OnlineStore:
        """Online features: in-process (embedded) or Redis (distributed)."""
        return open_online_store(self.settings)

    @cached_property
    def drift(self) -> DriftService:
        """Answers "is drift active for model X?" for capabilities that fall back on drift."""
        return DriftService(self.db)

    @cached_property
    def event_bus(self) -> EventBus:
        """Every subscriber of this process; the worker delivers events to them."""
        bus = EventBus()
        InteractionMaterializer(self.features).subscribe(bus)
        return bus

    def close(self) -> None:
        self.db.dispose()
