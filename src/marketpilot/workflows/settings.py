"""Settings of the workflows capability, from ``MARKETPILOT_WORKFLOWS_*`` environment variables.

Provider URLs point at the payment provider and the carrier (``marketpilot sandbox`` serves
loopback sandboxes for both). Everything else has defaults that suit one machine.
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketpilot.platform.config import ConfigError
from marketpilot.workflows.policy import RetryPolicy

ENV_PREFIX = "MARKETPILOT_WORKFLOWS_"


class WorkflowSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    payment_url: str = "http://127.0.0.1:8101"
    payment_api_key: str | None = None
    carrier_url: str = "http://127.0.0.1:8102"
    carrier_api_key: str | None = None
    order_concurrency: int = Field(default=16, ge=1, le=1024, description="Order runs at once per worker.")
    # 20 ms: a run queued waits half a poll on average before it starts; at 50 ms the queued
    # p50 was 57-59 ms (target 50), at 20 ms 26 ms, with the same throughput (docs/workflows.md).
    queue_polling_interval: float = Field(default=0.02, gt=0, le=60, description="Orders queue poll, seconds.")
    workflow_queue_polling_interval: float = Field(
        default=0.5, gt=0, le=60,
        description="Poll of the queue of onboarding, dispute and compensation runs (API-started, few), seconds. "
                    "Each DBOS queue poll is several queries on the system database, idle or not: polled "
                    "every 10 ms, one queue took ~20% of a core here, CPU the order runs then lack.",
    )
    carrier_rates_ttl: float = Field(
        default=300.0, ge=0, le=86_400,
        description="Seconds a carrier's rate quote for a lane (origin, destination, weight) is reused; 0 asks "
                    "the carrier for every order.",
    )
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=5.0, gt=0)
    retry_base_delay: float = Field(default=0.05, gt=0)
    retry_max_delay: float = Field(default=2.0, gt=0)
    retry_max_wait: float = Field(default=300.0, ge=0)
    review_timeout_seconds: float = Field(default=86_400.0, gt=0)
    dispute_sla_seconds: float = Field(default=172_800.0, gt=0)
    webhook_timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds a seller's endpoint has to answer.")
    webhook_max_attempts: int = Field(default=8, ge=1, le=100, description="Attempts before a delivery is failed.")
    webhook_retry_base_seconds: float = Field(
        default=30.0, gt=0, description="Wait after the first failed attempt; doubled after each further one.")
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0, description="Longest wait between attempts.")
    webhook_poll_interval: float = Field(default=1.0, gt=0, le=60, description="How often due deliveries are sent.")
    webhook_allow_private_hosts: bool = Field(
        default=False,
        description="Let webhooks point at private, loopback or link-local addresses (development and tests only: "
                    "otherwise a merchant could make the worker call the operator's internal services).",
    )

    email_smtp_url: str | None = Field(
        default=None,
        description="Where buyers' order e-mails are sent: smtp://host:port (plain), smtp+starttls://host:port or "
                    "smtps://host:port (TLS from the start). Unset: no e-mail is queued or sent.",
    )
    email_smtp_username: str | None = None
    email_smtp_password: str | None = None
    email_from: str | None = Field(default=None, description="The From header, e.g. 'Shop <orders@shop.example>'.")
    email_timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds the mail server has per call.")
    email_max_attempts: int = Field(default=8, ge=1, le=100, description="Attempts before an e-mail is failed.")
    email_retry_base_seconds: float = Field(
        default=60.0, gt=0, description="Wait after the first failed attempt; doubled after each further one.")
    email_retry_max_seconds: float = Field(default=3600.0, gt=0, description="Longest wait between attempts.")
    email_poll_interval: float = Field(default=1.0, gt=0, le=60, description="How often due e-mails are sent.")

    delivery_retention_days: float = Field(
        default=30.0, gt=0, le=3650,
        description="Days delivered and failed webhook and e-mail deliveries are kept (e-mail rows hold the "
                    "buyer's address); pending ones are kept until they finish.",
    )

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(base_delay=self.retry_base_delay, max_delay=self.retry_max_delay, max_wait=self.retry_max_wait)

    @classmethod
    def load(cls, **overrides: object) -> WorkflowSettings:
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = [f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]
            raise ConfigError("invalid workflows configuration: " + "; ".join(problems)) from None
