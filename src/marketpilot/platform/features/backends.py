"""Which online store a process uses, chosen by configuration only (the profile).

embedded: in-process arrays, written through to ``{home}/features.sqlite`` so features
survive a restart without a server. distributed: Redis at ``MARKETPILOT_REDIS_URL``, shared
by every API replica and worker.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from marketpilot.platform.config import Settings
from marketpilot.platform.features.embedded import EmbeddedOnlineStore
from marketpilot.platform.features.online import OnlineStore
from marketpilot.platform.features.redis_store import RedisOnlineStore
from marketpilot.platform.features.views import FeatureRegistry

FEATURES_FILE = "features.sqlite"


def open_online_store(
    settings: Settings, registry: FeatureRegistry | None = None, *, metrics: CollectorRegistry | None = None
) -> OnlineStore:
    if settings.is_distributed:
        if not settings.redis_url:
            raise ValueError("the distributed profile needs MARKETPILOT_REDIS_URL for the online feature store")
        return RedisOnlineStore(settings.redis_url, registry, metrics=metrics)
    return EmbeddedOnlineStore(registry, path=settings.home / FEATURES_FILE, metrics=metrics)
