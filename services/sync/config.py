"""Settings of the sync service beyond the shared ones, from environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.runtime.config import EnvSettings


class SyncConfig(EnvSettings):
    """STEWARD_SYNC_<FIELD> unless a field names its variable."""

    model_config = SettingsConfigDict(env_prefix="STEWARD_SYNC_")

    # Where the sync service reaches the users service.
    users_address: str = Field(default="127.0.0.1:50051", validation_alias="STEWARD_USERS_ADDRESS")
    # How long a run may go without progress before another replica may take the job over.
    run_lease_seconds: float = 60.0
    # How often due jobs are looked for.
    scheduler_poll_seconds: float = 30.0
    # Salesforce: attempts and the longest wait between them (429 Retry-After is honoured).
    salesforce_attempts: int = 8
    salesforce_max_backoff_seconds: float = 30.0

    @classmethod
    def from_env(cls) -> SyncConfig:
        return cls.from_environment()
