"""Drift monitoring: the latest drift reports per model, for operator and service keys.

Reports are written by the drift monitor (`platform.monitoring.drift`), one per model and
closed window; this route only reads them. A model without reports yields an empty list
rather than 404: before its first closed window a monitored model has nothing to show.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from marketpilot.api.deps import blocking
from marketpilot.api.security import Machine
from marketpilot.platform.monitoring.drift import DriftReport, DriftService

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])

MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"  # the model registry's naming rule
MAX_WINDOWS = 100


class FeatureDriftOut(BaseModel):
    name: str = Field(description="Feature name, or `prediction` for the model's output.")
    kind: Literal["numeric", "categorical"]
    psi: float = Field(description="Population Stability Index against the training reference.")
    test: Literal["ks", "chi2"] = Field(description="Two-sample KS (numeric) or chi-square (categorical).")
    statistic: float
    p_value: float
    p_adjusted: float = Field(description="p-value after the family-wise correction across the window's columns.")
    missing_rate: float = Field(description="Share of the window's values that were missing (NaN).")
    drifted: bool


class DriftThresholdsOut(BaseModel):
    psi: float
    alpha: float
    correction: Literal["holm", "bonferroni"]
    min_count: int
    ks_method: str


class DriftReportOut(BaseModel):
    id: int
    model: str
    model_version: str | None
    instance: str = Field(description="The monitoring process that closed the window.")
    window_start: datetime
    window_end: datetime
    observations: int = Field(description="Events recorded in the window.")
    sampled: int = Field(description="Events the statistics used (fewer than observations after sampling).")
    late: int = Field(description="Events dropped because their window had already closed.")
    verdict: Literal["drift", "ok", "insufficient"]
    drifted_features: list[str]
    features: list[FeatureDriftOut]
    thresholds: DriftThresholdsOut


class DriftReportList(BaseModel):
    items: list[DriftReportOut] = Field(description="Per model (by name), newest window first.")


def drift_service(request: Request) -> DriftService:
    """The app's drift service (`app.state.drift`), made on first use if the app has none."""
    service: DriftService | None = getattr(request.app.state, "drift", None)
    if service is None:
        service = DriftService(request.app.state.runtime.db)
        request.app.state.drift = service
    return service


def report_out(report: DriftReport) -> DriftReportOut:
    return DriftReportOut.model_validate(
        {**msgspec.to_builtins(report), "drifted_features": list(report.drifted_features)}
    )


@router.get("/drift")
async def list_drift_reports(
    _who: Machine,
    service: Annotated[DriftService, Depends(drift_service)],
    model: Annotated[str | None, Query(pattern=MODEL_NAME, description="Only this model's reports.")] = None,
    window: Annotated[
        int, Query(ge=1, le=MAX_WINDOWS, description="How many of the latest windows to return per model.")
    ] = 1,
) -> DriftReportList:
    """The latest drift reports: the `window` newest closed windows of each monitored model."""
    reports = await blocking(service.reports, model=model, per_model=window)
    return DriftReportList(items=[report_out(r) for r in reports])
