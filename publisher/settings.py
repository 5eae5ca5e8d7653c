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
        description="Where the data lives: `embedded` (pyoxigraph under the data directory), "
        "`memory` (nothing kept; for tests and trials), or the http(s) URL of a SPARQL 1.1 "
        "server (endpoints laid out as Oxigraph server's unless the store_*_url settings say).",
    )
    store_query_url: str | None = Field(
        None, description="A remote store's SPARQL query endpoint (default: `{store}/query`)."
    )
    store_update_url: str | None = Field(
        None, description="A remote store's SPARQL update endpoint (default: `{store}/update`)."
    )
    store_gsp_url: str | None = Field(
        None, description="A remote store's Graph Store Protocol endpoint (default: "
        "`{store}/store`); `none` writes graphs with SPARQL Update instead.",
    )
    store_token: str | None = Field(
        None, description="A token a remote store wants with writes, sent as `Authorization: "
        "Bearer` (QLever's access token); basic credentials go in the URLs instead.",
    )
    store_timeout_s: float = Field(
        60.0, gt=0, description="Seconds allowed for one request to a remote store by harvests "
        "and pages (public /sparql queries have sparql_timeout_s).",
    )
    site_name: str = Field("Affiche", description="The name shown in page headers and titles.")
    default_language: str = Field(
        "fr", description="Page language when the visitor's Accept-Language matches none (fr/en)."
    )
    page_size: int = Field(20, description="Events per page in agenda listings.", ge=1, le=200)
    page_max_age: int = Field(
        300, ge=0, description="Seconds browsers may keep a page (Cache-Control max-age); shared "
        "caches (CDNs) keep it four times longer and may serve it stale while revalidating.",
    )
    page_cache_size: int = Field(
        2000, ge=0, description="Rendered entity pages kept in memory (about 6 KB each) until the "
        "next harvest or withdrawal, for the embedded store; 0 keeps none.",
    )
    calendar_max_events: int = Field(
        1000, ge=1, description="Most events one /calendar.ics answer holds (the first by date)."
    )
    sitemap_max_urls: int = Field(
        50_000, ge=1, description="URLs per sitemap file; beyond it /sitemap.xml is a sitemap "
        "index of /sitemap-N.xml files (50,000 is the protocol's limit).",
    )
    sparql_max_query_length: int = Field(
        20_000, description="Longest SPARQL query accepted by /sparql, in characters."
    )
    sparql_max_rows: int = Field(
        10_000, description="Most result rows /sparql returns; a truncated answer says so in a header."
    )
    sparql_timeout_s: float = Field(
        20.0, gt=0, description="Seconds a /sparql query may run; it is then stopped (its worker "
        "process killed) and answered 504.",
    )
    sparql_max_concurrent: int = Field(
        4, ge=1, description="Most /sparql queries running at once (worker processes for the "
        "embedded store); the next one is answered 503 with Retry-After.",
    )
    sparql_rate_per_minute: int = Field(
        120, ge=0, description="/sparql queries one client (IPv4 address, or IPv6 /64) may send a "
        "minute, in bursts of as many; beyond, 429 with Retry-After. 0: no limit.",
    )
    sparql_worker_memory_mb: int = Field(
        1024, ge=0, description="Memory one /sparql worker process may allocate, in MB "
        "(RLIMIT_DATA); a query needing more is stopped and answered 507. 0: no limit.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of the reverse proxies in front of Affiche "
        "(comma-separated in the environment); only from them is X-Forwarded-For believed, "
        "to tell /sparql clients apart for the rate limit.",
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
    check_max_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="Largest input the public checker (/check, "
        "/api/check) reads, in bytes, whether uploaded, pasted or fetched; 413 beyond.",
    )
    crawl_delay_s: float = Field(
        1.0, ge=0, description="Seconds between two requests to one host when crawling a site "
        "(`sitemap` and `site` sources); a longer robots.txt Crawl-delay wins (up to 30 s).",
    )
    crawl_max_pages: int = Field(
        500, ge=1, description="Most pages fetched when crawling one site; the report says when "
        "the crawl stopped there.",
    )
    harvest_max_triples: int = Field(
        2_000_000, ge=1, description="Most triples one feed may bring once parsed; a bigger feed "
        "is refused with a clear message and the last good data stays published.",
    )
    harvest_max_events: int = Field(
        50_000, ge=1, description="Most events one feed may hold (occurrences of recurring events "
        "included); a bigger feed is refused, the last good data stays published.",
    )
    harvest_recurrence_days: int = Field(
        548, ge=1, le=3660, description="How many days ahead recurring events (iCalendar RRULE/RDATE) "
        "are expanded into occurrences (548: 18 months).",
    )
    harvest_max_loss: float = Field(
        0.5, ge=0, le=1, description="Share of a source's published events a harvest may lose at "
        "once; a feed losing more is held back (the last good data stays published, the report "
        "says so). 1: never held back.",
    )
    harvest_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=64, description="Worker processes "
        "that read and check sources at once in `affiche harvest` (the main process alone writes "
        "the store and the change log), started once it has spent a second reading sources "
        "itself; default: the number of CPU cores. 1: one source after another, in one process.",
    )
    harvest_archive_keep: int = Field(
        10, ge=1, description="Raw copies of each source's feed kept under DATA_DIR/harvest/ "
        "(the newest), so a report can point at what the organiser sent.",
    )
    dump_snapshots: int = Field(
        7, ge=0, description="Dated dump snapshots kept (one per day, the newest kept); 0 keeps none."
    )
    feed_page_size: int = Field(
        100, ge=1, le=10_000, description="Members per page of the /feed change feed (pages "
        "already written keep their size).",
    )
    api_max_upload_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, description="Largest file or JSON-LD document an organiser may "
        "push through /api/sources/{id}/upload or /jsonld, in bytes; 413 beyond.",
    )
    schedule_min_minutes: int = Field(
        60, ge=1, description="Shortest harvest interval an organiser may ask for a source, in "
        "minutes; a more frequent schedule is refused with 422.",
    )
    jobs_max_concurrent: int = Field(
        2, ge=1, description="Most harvest jobs (API-triggered or scheduled) running at once in "
        "`affiche serve`; one source never has two at once.",
    )
    scheduler_poll_s: float = Field(
        30.0, ge=0, description="Seconds between two looks for due scheduled harvests in "
        "`affiche serve`; 0: no background scheduling (use `affiche harvest --due` from cron).",
    )
    usage_sparql_sample: int = Field(
        10, ge=0, description="Read one `/sparql` answer in this many, after it is sent, for the "
        "sources whose events it names (each named source counts this many inclusions in its "
        "usage figures); 1: every answer; 0: SPARQL inclusions are not measured.",
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

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value):
        from sparql.throttle import parse_networks

        if isinstance(value, str):
            value = [h.strip() for h in value.split(",") if h.strip()]
        parse_networks(value)  # a typo must not silently trust nobody, or everybody
        return value

    def store_options(self) -> dict:
        """The keyword arguments `sparql.store.open_store` takes besides the location."""
        return {"query_url": self.store_query_url, "update_url": self.store_update_url,
                "gsp_url": self.store_gsp_url, "token": self.store_token,
                "timeout_s": self.store_timeout_s}

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def dumps_dir(self) -> Path:
        return self.data_dir / "dumps"

    @property
    def harvest_dir(self) -> Path:
        """Per source: the last harvest's ETag/Last-Modified/hash and the archived raw feeds."""
        return self.data_dir / "harvest"


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
