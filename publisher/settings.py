"""Settings, declared once (one field, one default, one description) and read once at start-up.

Every field is read from the environment as `AFFICHE_<NAME>`; unknown `AFFICHE_*` variables are
refused so that a typo does not silently fall back to a default. Every field is documented in the
README (a test checks it).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from typing import Annotated

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PREFIX = "AFFICHE_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid")

    base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Public base URL; every IRI Affiche mints starts with it (no trailing slash).",
    )
    data_dir: Path = Field(
        Path("affiche-data"),
        description="Directory for the embedded store, dumps and harvest reports.",
    )
    config: Path | None = Field(
        None, description="TOML file declaring the sources ([[source]] tables) to harvest."
    )
    store: str = Field(
        "embedded",
        description="Where the data lives: `embedded` (pyoxigraph under the data directory) or "
        "`memory` (nothing kept; for tests and trials).",
    )
    site_name: str = Field("Affiche", description="The name shown in page headers and titles.")
    default_language: str = Field(
        "fr", description="Page language when the visitor's Accept-Language matches none (fr/en)."
    )
    page_size: int = Field(20, description="Events per page in agenda listings.", ge=1, le=200)
    sparql_max_query_length: int = Field(
        20_000, description="Longest SPARQL query accepted by /sparql, in characters."
    )
    sparql_max_rows: int = Field(
        10_000, description="Most result rows /sparql returns; a truncated answer says so in a header."
    )
    fetch_max_bytes: int = Field(
        20 * 1024 * 1024, description="Largest feed Affiche downloads, in bytes."
    )
    fetch_timeout_s: float = Field(30.0, description="Seconds allowed for one feed download.")
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts the harvester may fetch even on private addresses (comma-separated "
        "in the environment; for intranets and tests).",
    )

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("AFFICHE_BASE_URL must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("fetch_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value):
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def dumps_dir(self) -> Path:
        return self.data_dir / "dumps"


def unknown_environment_keys(environ: dict[str, str] | None = None) -> list[str]:
    environ = dict(os.environ if environ is None else environ)
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(k for k in environ if k.startswith(PREFIX) and k not in known)


def load_settings(**overrides) -> Settings:
    """Read the settings once; refuse unknown AFFICHE_* variables."""
    unknown = unknown_environment_keys()
    if unknown:
        raise ValueError(f"unknown setting(s) in the environment: {', '.join(unknown)}")
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
