"""The feature store: declared views, online stores, materialisers and point-in-time training sets.

Declare a :class:`FeatureView`, read it online through an :class:`OnlineStore`
(:class:`EmbeddedOnlineStore` or :class:`RedisOnlineStore`, chosen by
:func:`open_online_store` from the profile), keep it fresh with the materialisers, and build
training sets with :func:`build_training_set`. See ``docs/features.md``.
"""

from marketpilot.platform.features._time import to_ms
from marketpilot.platform.features.backends import open_online_store
from marketpilot.platform.features.backfill import (
    BackfillReport,
    backfill_interactions,
    backfill_velocity,
    export_interactions,
    export_orders,
    export_transactions,
)
from marketpilot.platform.features.embedded import EmbeddedOnlineStore
from marketpilot.platform.features.materialize import (
    CtrSmoothing,
    InteractionMaterializer,
    Observation,
    VelocityMaterializer,
)
from marketpilot.platform.features.offline import FeatureTable, TrainingSetBuilder, build_training_set
from marketpilot.platform.features.online import FeatureBatch, OnlineStore
from marketpilot.platform.features.redis_store import RedisOnlineStore
from marketpilot.platform.features.views import (
    DType,
    EventSource,
    Feature,
    FeatureRegistry,
    FeatureView,
    FileSource,
    TableSource,
    float32,
    float64,
    int64,
    int64_list,
    str_list,
)
from marketpilot.platform.features.windows import WindowedCounter

__all__ = [
    "BackfillReport",
    "CtrSmoothing",
    "DType",
    "EmbeddedOnlineStore",
    "EventSource",
    "Feature",
    "FeatureBatch",
    "FeatureRegistry",
    "FeatureTable",
    "FeatureView",
    "FileSource",
    "InteractionMaterializer",
    "Observation",
    "OnlineStore",
    "RedisOnlineStore",
    "TableSource",
    "TrainingSetBuilder",
    "VelocityMaterializer",
    "WindowedCounter",
    "to_ms",
    "backfill_interactions",
    "backfill_velocity",
    "build_training_set",
    "export_interactions",
    "export_orders",
    "export_transactions",
    "float32",
    "float64",
    "int64",
    "int64_list",
    "open_online_store",
    "str_list",
]
