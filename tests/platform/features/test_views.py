from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from marketpilot.platform.features import (
    DType,
    Feature,
    FeatureRegistry,
    FeatureView,
    float32,
    float64,
    int64,
    int64_list,
    str_list,
)
from marketpilot.platform.features.catalog import builtin_views

SLA = timedelta(minutes=5)


def test_a_view_of_float32_scalars_serves_a_float32_matrix() -> None:
    view = FeatureView("v", "user_id", [Feature("a", float32), Feature("b", float32), Feature("l", int64_list(4))], SLA)
    assert view.value_dtype == np.float32
    assert [f.name for f in view.scalar_features] == ["a", "b"]
    assert [f.name for f in view.list_features] == ["l"]


@pytest.mark.parametrize("dtype", [float64, int64])
def test_any_wider_scalar_makes_the_matrix_float64(dtype: DType) -> None:
    view = FeatureView("v", "user_id", [Feature("a", float32), Feature("b", dtype)], SLA)
    assert view.value_dtype == np.float64


def test_the_signature_changes_with_the_layout_only() -> None:
    base = FeatureView("v", "user_id", [Feature("a"), Feature("b")], SLA)
    same = FeatureView("v", "user_id", [Feature("a"), Feature("b")], timedelta(hours=3), description="x")
    reordered = FeatureView("v", "user_id", [Feature("b"), Feature("a")], SLA)
    retyped = FeatureView("v", "user_id", [Feature("a"), Feature("b", int64)], SLA)
    assert base.signature == same.signature
    assert len({base.signature, reordered.signature, retyped.signature}) == 3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: FeatureView("v", "user_id", [], SLA), "view 'v' has no features"),
        (lambda: FeatureView("v", "user_id", [Feature("a"), Feature("a")], SLA), "view 'v' declares feature(s) twice: a"),
        (lambda: FeatureView("v", "user_id", [Feature("user_id")], SLA),
         "view 'v': a feature may not be named like the entity 'user_id'"),
        (lambda: FeatureView("v", "user_id", [Feature("a")], timedelta(0)), "view 'v': staleness_sla must be positive"),
        (lambda: FeatureView("a:b", "user_id", [Feature("a")], SLA),
         "view name must be letters, digits, '_', '-' or '.', got 'a:b'"),
        (lambda: FeatureView("v", "user id", [Feature("a")], SLA), "view 'v': entity must be an identifier, got 'user id'"),
        (lambda: Feature("bad name"), "feature name must be an identifier, got 'bad name'"),
        (lambda: DType("float32", length=3), "a float32 feature is a scalar: length must be 1 and width 0"),
        (lambda: int64_list(0), "a int64_list feature needs length >= 1, got 0"),
        (lambda: str_list(5, width=0), "a str_list feature needs width >= 1 (bytes per id), got 0"),
    ],
)
def test_a_bad_declaration_is_rejected_with_its_reason(build: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        build()  # type: ignore[operator]
    assert str(err.value) == message


def test_the_registry_resolves_names_and_refuses_a_conflicting_redefinition() -> None:
    view = FeatureView("v", "user_id", [Feature("a")], SLA)
    registry = FeatureRegistry([view])
    registry.register(FeatureView("v", "user_id", [Feature("a")], SLA))  # the same definition again: fine
    assert registry.get("v") is view and registry.resolve(view) is view and "v" in registry
    with pytest.raises(ValueError, match="feature view 'v' is already registered with another definition"):
        registry.register(FeatureView("v", "user_id", [Feature("b")], SLA))
    with pytest.raises(KeyError, match=r"unknown feature view 'w' \(registered: v\)"):
        registry.get("w")


def test_the_builtin_views_cover_recommendation_and_fraud_features() -> None:
    names = {v.name for v in builtin_views()}
    assert {"user_recent_items", "listing_engagement", "order_velocity_user"} <= names
    assert {f"txn_velocity_{k}" for k in ("user", "instrument", "device", "ip", "email_domain")} <= names


def test_dtypes_print_their_shape() -> None:
    assert [str(d) for d in (float32, int64, int64_list(5), str_list(3, 16))] == [
        "float32", "int64", "int64_list[5]", "str_list[3x16]"
    ]
