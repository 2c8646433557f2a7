"""One router per resource. `/v1` routers carry the common error responses in OpenAPI."""

from fastapi import APIRouter

from marketpilot.api.routes import (
    experiments,
    fraud,
    health,
    interactions,
    inventory,
    keys,
    listings,
    metrics,
    monitoring,
    orders,
    ranking,
    recommendations,
    sellers,
    users,
    v2,
    workflows,
)

V1: list[APIRouter] = [
    sellers.router,
    listings.router,
    inventory.router,
    users.router,
    interactions.router,
    orders.router,
    keys.router,
    monitoring.router,
    fraud.router,
    experiments.router,
    recommendations.router,
    ranking.router,
    workflows.router,
    workflows.disputes,
]
OPEN: list[APIRouter] = [health.router, metrics.router, v2.router]  # v2 routes guard themselves

__all__ = ["OPEN", "V1"]
