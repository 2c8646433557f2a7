"""Aliases, promotion and rollback, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from marketpilot.platform.models.errors import ModelNotFound, NoPreviousChampion
from marketpilot.platform.models.promotions import champion_stack, rollback_target
from marketpilot.platform.models.records import PromotionEvent
from marketpilot.platform.models.registry import ModelRegistry

RegisterVersions = Callable[[str, int], list[int]]


def test_promote_makes_a_version_champion_and_rollback_restores_the_previous(
    registry: ModelRegistry, model_name: str, register_versions: RegisterVersions
) -> None:
    register_versions(model_name, 2)

    first = registry.promote(model_name, 1)
    assert (first.action, first.version, first.previous) == ("promote", 1, None)
    second = registry.promote(model_name, 2)
    assert (second.version, second.previous) == (2, 1)
    assert registry.get(model_name).version == 2
    assert registry.get(model_name, 2).aliases == ("champion",)

    back = registry.rollback(model_name)
    assert (back.action, back.version, back.previous) == ("rollback", 1, 2)
    assert registry.get(model_name, "champion").version == 1
    assert registry.get(model_name, 2).aliases == ()
    assert [(e.action, e.version) for e in registry.history(model_name)] == [
        ("promote", 1),
        ("promote", 2),
        ("rollback", 1),
    ]


def test_rollback_walks_back_through_earlier_champions_then_says_there_is_none(
    registry: ModelRegistry, model_name: str, register_versions: RegisterVersions
) -> None:
    register_versions(model_name, 3)
    for version in (1, 2, 3):
        registry.promote(model_name, version)

    assert registry.rollback(model_name).version == 2
    assert registry.rollback(model_name).version == 1
    with pytest.raises(
        NoPreviousChampion,
        match=rf"model '{model_name}' has no previous champion to roll back to \(champion is version 1\)",
    ):
        registry.rollback(model_name)
    assert registry.get(model_name).version == 1


def test_rollback_without_any_champion_says_so(
    registry: ModelRegistry, model_name: str, register_versions: RegisterVersions
) -> None:
    register_versions(model_name, 1)
    with pytest.raises(NoPreviousChampion, match=f"model '{model_name}' has no champion to roll back"):
        registry.rollback(model_name)


def test_promoting_and_rolling_back_an_unknown_model_or_version_names_it(
    registry: ModelRegistry, model_name: str, register_versions: RegisterVersions
) -> None:
    register_versions(model_name, 1)
    with pytest.raises(ModelNotFound, match=rf"model '{model_name}' has no version 5 \(versions: 1\)"):
        registry.promote(model_name, 5)
    with pytest.raises(ModelNotFound, match="no registered model named 'ghost'"):
        registry.promote("ghost", 1)
    with pytest.raises(ModelNotFound, match="no registered model named 'ghost'"):
        registry.rollback("ghost")


def test_a_promoted_challenger_stops_being_the_challenger(
    registry: ModelRegistry, model_name: str, register_versions: RegisterVersions
) -> None:
    register_versions(model_name, 2)
    registry.promote(model_name, 1)
    registry.set_alias(model_name, "challenger", 2)
    assert registry.get(model_name, "challenger").version == 2

    registry.promote(model_name, 2)
    assert registry.show(model_name).aliases == {"champion": 2}


def test_setting_the_champion_alias_is_a_promotion_that_can_be_rolled_back(
    registry: ModelRegistry, model_name: str, register_versions: RegisterVersions
) -> None:
    register_versions(model_name, 2)
    registry.set_alias(model_name, "champion", 1)
    registry.set_alias(model_name, "champion", 2)
    assert registry.rollback(model_name).version == 1


def test_the_challenger_alias_can_be_removed_but_the_champion_cannot(
    registry: ModelRegistry, model_name: str, register_versions: RegisterVersions
) -> None:
    register_versions(model_name, 2)
    registry.promote(model_name, 1)
    registry.set_alias(model_name, "challenger", 2)

    registry.remove_alias(model_name, "challenger")
    assert registry.show(model_name).aliases == {"champion": 1}
    with pytest.raises(ModelNotFound, match=f"model '{model_name}' has no 'challenger' alias"):
        registry.remove_alias(model_name, "challenger")
    with pytest.raises(ValueError, match="the champion alias cannot be removed"):
        registry.remove_alias(model_name, "champion")


@pytest.mark.parametrize("alias", ["Champion2", "v3", "latest", "has space", ""])
def test_malformed_aliases_are_refused(sqlite_registry: ModelRegistry, alias: str) -> None:
    with pytest.raises(ValueError, match=f"alias '{alias}' must be lowercase"):
        sqlite_registry.set_alias("any-model", alias, 1)


# The rollback stack, replayed from events alone (no store needed).


def _events(*steps: tuple[str, int]) -> list[PromotionEvent]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [PromotionEvent(action=a, version=v, previous=None, at=at) for a, v in steps]  # type: ignore[arg-type]


def test_the_champion_stack_replays_promotions_and_rollbacks() -> None:
    events = _events(("promote", 1), ("promote", 2), ("promote", 1), ("rollback", 2))
    assert champion_stack(events) == [1, 2]


def test_a_truncated_history_still_rolls_back_to_the_last_known_champion() -> None:
    # The promotions before this rollback were cut off by the history limit.
    events = _events(("rollback", 4), ("promote", 5))
    assert champion_stack(events) == [4, 5]
    assert rollback_target(events, current=5, exists=lambda v: True) == 4


def test_rollback_skips_versions_that_no_longer_exist() -> None:
    events = _events(("promote", 1), ("promote", 2), ("promote", 3))
    assert rollback_target(events, current=3, exists=lambda v: v != 2) == 1


def test_a_champion_set_outside_the_registry_rolls_back_to_the_last_one_it_installed() -> None:
    events = _events(("promote", 1), ("promote", 2))
    assert rollback_target(events, current=9, exists=lambda v: True) == 2
