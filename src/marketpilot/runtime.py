"""The objects one process needs, built once from settings: database and services.

The API, the CLI and the worker each build a `Runtime`; tests build one per database.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from marketpilot.fraud.events import FRAUD_EVENTS
from marketpilot.marketplace import (
    InteractionService,
    InventoryService,
    ListingService,
    OrderService,
    SellerService,
    UserService,
)
from marketpilot.measure.experiments.outcome_folder import OutcomeFolder
from marketpilot.measure.experiments.service import ExperimentService
from marketpilot.platform.config import Settings, get_settings
from marketpilot.platform.db import Database
from marketpilot.platform.events import EventBus
from marketpilot.platform.features.backends import open_online_store
from marketpilot.platform.features.materialize import InteractionMaterializer
from marketpilot.platform.features.online import OnlineStore
from marketpilot.platform.monitoring.drift_service import DriftService
from marketpilot.recommend.availability import AVAILABILITY_EVENTS
from marketpilot.recommend.service import RecommendationService, load_champion
from marketpilot.recommend.slate_policy import default_policy

if TYPE_CHECKING:
    from marketpilot.fraud.service import FraudService
    from marketpilot.workflows.service import WorkflowService
    from marketpilot.workflows.webhooks import WebhookService


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
        bus.subscribe(
            "recommend.availability",
            AVAILABILITY_EVENTS,
            lambda event, session: self.recommendations.availability.on_event(event, session),
        )
        bus.subscribe("fraud.decisions", FRAUD_EVENTS, lambda event, session: self.fraud.on_event(event, session))
        OutcomeFolder(self.experiments).subscribe(bus)
        return bus

    @cached_property
    def recommendations(self) -> RecommendationService:
        """The recommendation request path. Embedded: availability is brought up to date on
        every request; distributed: at most every 0.25 s per replica (the event lag)."""
        return RecommendationService(
            self.db,
            self.source,
            features=self.features,
            drift=self.drift.is_active,
            model_loader=lambda: load_champion(self.settings),
            refresh_interval=0.25 if self.settings.is_distributed else 0.0,
            budget_ms=self.settings.recommend_budget_ms,
            slate_policy=default_policy(
                self.settings.recommend_exploration,
                epsilon=self.settings.recommend_epsilon,
                max_explored_share=self.settings.recommend_explore_share,
                max_gmv_loss_per_day=self.settings.recommend_explore_gmv_per_day,
                cold_start_share=self.settings.recommend_cold_start_exposure,
                max_relevance_loss=self.settings.recommend_max_relevance_loss,
                small_seller_share=self.settings.recommend_small_seller_exposure,
                small_seller_max_listings=self.settings.recommend_small_seller_max_listings,
            ),
            attribution_seconds=self.settings.recommend_attribution_seconds,
        )

    @cached_property
    def fraud(self) -> FraudService:
        """Fraud decisions: features primed from recent transactions; the registered champion
        is loaded on the first decision (until then, or without one, the fallback decides)."""
        from marketpilot.fraud.redis_state import RedisFeatureState
        from marketpilot.fraud.service import FraudService, load_champion

        url = self.settings.redis_url
        state = RedisFeatureState(url) if url and self.settings.fraud_features_on_redis else None
        service = FraudService(self.db, drift=self.drift, model_loader=lambda: load_champion(self.settings),
                               source=self.source, state=state)
        service.prime()
        return service

    @cached_property
    def experiments(self) -> ExperimentService:
        """Guarded experiments: assignment, outcome folding, automatic halt, kill switch."""
        return ExperimentService(self.db, self.source)

    @cached_property
    def workflows(self) -> WorkflowService:
        """Durable workflow runs: step history, metrics, operator retry/cancel/review, disputes."""
        from marketpilot.workflows.service import WorkflowService

        return WorkflowService(self.db, self.settings)

    @cached_property
    def webhooks(self) -> WebhookService:
        """Sellers' webhook endpoints and the deliveries of their order notifications."""
        from marketpilot.workflows.webhooks import WebhookService

        return WebhookService(self.db)

    def close(self) -> None:
        if "recommendations" in self.__dict__:
            self.recommendations.close()
        self.db.dispose()
