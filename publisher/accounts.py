"""Organisers, their API tokens and the sources they register, in `DATA_DIR/organisers.sqlite`.

A token is `{id}.{secret}`: the id finds the row, the secret (32 random bytes) is never stored,
only its SHA-256, compared in constant time. An operator token (no organiser) acts on everything;
an organiser token only on that organiser's sources. Revoking a token keeps its row (who had
access, and until when), so a revoked token is told apart from one that never existed only in
the log, never in the answer: both are "invalid".

Sources registered here are harvested like the TOML ones (`registered_sources`), plus what the
TOML file cannot say: who owns them, their schedule, the events their organiser withdrew. Sources
declared in the operator's TOML file (`declared_source`; their `organiser` key names the account
that may act on them) have no row here, but their withdrawal and withheld events are kept here
too (`declared_*` tables), so they stay withdrawn whatever the file says.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harvester.sources import SOURCE_ID, Source

FILE_NAME = "organisers.sqlite"
OPERATOR = "operator"
ORGANISER = "organiser"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS organisers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    organiser TEXT REFERENCES organisers (id),
    role TEXT NOT NULL CHECK (role IN ('operator', 'organiser')),
    secret_sha256 TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    organiser TEXT NOT NULL REFERENCES organisers (id),
    name TEXT NOT NULL,
    url TEXT,
    upload TEXT,
    format TEXT,
    language TEXT NOT NULL,
    timezone TEXT NOT NULL,
    license TEXT,
    schedule_minutes INTEGER,
    created_at TEXT NOT NULL,
    withdrawn_at TEXT
);
CREATE TABLE IF NOT EXISTS withheld_events (
    source TEXT NOT NULL REFERENCES sources (id),
    event TEXT NOT NULL,
    withdrawn_at TEXT NOT NULL,
    PRIMARY KEY (source, event)
);
CREATE TABLE IF NOT EXISTS declared_withdrawals (
    source TEXT PRIMARY KEY,
    withdrawn_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS declared_withheld_events (
    source TEXT NOT NULL,
    event TEXT NOT NULL,
    withdrawn_at TEXT NOT NULL,
    PRIMARY KEY (source, event)
);
"""


class AccountError(ValueError):
    """An account operation that cannot be done (unknown organiser, duplicate id…)."""


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for."""

    token_id: str
    role: str  # "operator" | "organiser"
    organiser: str | None

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR


@dataclass(frozen=True)
class IssuedToken:
    id: str
    token: str  # shown once; only its hash is kept
    role: str
    organiser: str | None


@dataclass(frozen=True)
class RegisteredSource:
    id: str
    organiser: str | None  # None: a declared source without an `organiser` key (operator only)
    name: str
    url: str | None
    upload: str | None  # path of the last pushed file, for sources without a URL
    format: str | None
    language: str
    timezone: str
    license: str | None
    schedule_minutes: int | None
    created_at: str
    withdrawn_at: str | None
    declared: bool = False  # declared in the operator's TOML file, not registered through the API

    def as_source(self) -> Source:
        """The harvester's view: a URL, or the last pushed file."""
        path = Path(self.upload) if self.upload and not self.url else None
        return Source(id=self.id, name=self.name, url=self.url, path=path, format=self.format,
                      language=self.language, timezone=self.timezone, license=self.license)


_SOURCE_COLUMNS = ("id, organiser, name, url, upload, format, language, timezone, license, "
                   "schedule_minutes, created_at, withdrawn_at")
_ORGANISER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Accounts:
    """The organisers' registry; every call opens its own connection (threads, processes)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA foreign_keys = ON")
        connection.executescript(_SCHEMA)
        return connection

    def _run(self, query: str, parameters: tuple = ()) -> list[tuple]:
        with closing(self.connect()) as connection:
            return connection.execute(query, parameters).fetchall()

    # --- organisers ------------------------------------------------------------------------

    def add_organiser(self, organiser_id: str, name: str) -> None:
        if not _ORGANISER_ID.match(organiser_id):
            raise AccountError(f"organiser id {organiser_id!r}: lower-case letters, digits and "
                               "dashes (at most 63)")
        try:
            self._run("INSERT INTO organisers (id, name, created_at) VALUES (?, ?, ?)",
                      (organiser_id, name, now_iso()))
        except sqlite3.IntegrityError as exc:
            raise AccountError(f"organiser {organiser_id!r} already exists") from exc

    def organisers(self) -> list[dict]:
        rows = self._run("SELECT id, name, created_at FROM organisers ORDER BY id")
        return [{"id": r[0], "name": r[1], "created_at": r[2]} for r in rows]

    def organiser_exists(self, organiser_id: str) -> bool:
        return bool(self._run("SELECT 1 FROM organisers WHERE id = ?", (organiser_id,)))

    # --- tokens ----------------------------------------------------------------------------

    def issue_token(self, organiser: str | None = None, label: str = "") -> IssuedToken:
        """An operator token when `organiser` is None, else one for that organiser."""
        if organiser is not None and not self.organiser_exists(organiser):
            raise AccountError(f"no organiser {organiser!r}: add it first (affiche organisers add)")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        role = OPERATOR if organiser is None else ORGANISER
        self._run("INSERT INTO tokens (id, organiser, role, secret_sha256, label, created_at) "
                  "VALUES (?, ?, ?, ?, ?, ?)", (token_id, organiser, role, _digest(secret), label,
                                                now_iso()))
        return IssuedToken(token_id, f"{token_id}.{secret}", role, organiser)

    def revoke_token(self, token_id: str) -> bool:
        """True when a live token was revoked now."""
        with closing(self.connect()) as connection:
            cursor = connection.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now_iso(), token_id))
            return cursor.rowcount == 1

    def tokens(self) -> list[dict]:
        rows = self._run("SELECT id, role, organiser, label, created_at, revoked_at FROM tokens "
                         "ORDER BY created_at, id")
        keys = ("id", "role", "organiser", "label", "created_at", "revoked_at")
        return [dict(zip(keys, row)) for row in rows]

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a live token; None for a malformed, unknown or revoked one."""
        token_id, dot, secret = token.partition(".")
        if not dot or not token_id or not secret:
            return None
        rows = self._run("SELECT role, organiser, secret_sha256, revoked_at FROM tokens WHERE id = ?",
                         (token_id,))
        if not rows:
            # Same work as for a known id, so timing does not tell ids apart.
            hmac.compare_digest(_digest(secret), _digest(""))
            return None
        role, organiser, stored, revoked_at = rows[0]
        if not hmac.compare_digest(_digest(secret), stored) or revoked_at is not None:
            return None
        return Principal(token_id, role, organiser)

    # --- sources ---------------------------------------------------------------------------

    def add_source(self, source: RegisteredSource) -> None:
        if not SOURCE_ID.match(source.id):
            raise AccountError(f"source id {source.id!r}: lower-case letters, digits and dashes")
        try:
            self._run(f"INSERT INTO sources ({_SOURCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (source.id, source.organiser, source.name, source.url, source.upload,
                       source.format, source.language, source.timezone, source.license,
                       source.schedule_minutes, source.created_at, source.withdrawn_at))
        except sqlite3.IntegrityError as exc:
            raise AccountError(f"source id {source.id!r} is taken") from exc

    def source(self, source_id: str) -> RegisteredSource | None:
        rows = self._run(f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE id = ?", (source_id,))
        return RegisteredSource(*rows[0]) if rows else None

    def sources(self, organiser: str | None = None, *, active_only: bool = False) -> list[RegisteredSource]:
        query = f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE 1 = 1"
        parameters: tuple = ()
        if organiser is not None:
            query += " AND organiser = ?"
            parameters = (organiser,)
        if active_only:
            query += " AND withdrawn_at IS NULL"
        return [RegisteredSource(*row) for row in self._run(query + " ORDER BY id", parameters)]

    def set_upload(self, source_id: str, path: Path) -> None:
        self._run("UPDATE sources SET upload = ? WHERE id = ?", (str(path), source_id))

    def withdraw_source(self, source_id: str) -> None:
        self._run("UPDATE sources SET withdrawn_at = ?, schedule_minutes = NULL WHERE id = ?",
                  (now_iso(), source_id))

    def withhold_event(self, source_id: str, event_iri: str) -> None:
        self._run("INSERT OR IGNORE INTO withheld_events (source, event, withdrawn_at) VALUES (?, ?, ?)",
                  (source_id, event_iri, now_iso()))

    def withheld_events(self, source_id: str) -> frozenset[str]:
        rows = self._run("SELECT event FROM withheld_events WHERE source = ? UNION "
                         "SELECT event FROM declared_withheld_events WHERE source = ?",
                         (source_id, source_id))
        return frozenset(r[0] for r in rows)

    # --- sources declared in the TOML file -------------------------------------------------

    def withdraw_declared(self, source_id: str) -> None:
        self._run("INSERT OR IGNORE INTO declared_withdrawals (source, withdrawn_at) VALUES (?, ?)",
                  (source_id, now_iso()))

    def withhold_declared_event(self, source_id: str, event_iri: str) -> None:
        self._run("INSERT OR IGNORE INTO declared_withheld_events (source, event, withdrawn_at) "
                  "VALUES (?, ?, ?)", (source_id, event_iri, now_iso()))

    def withdrawals(self) -> dict[str, str]:
        """Every withdrawn source, registered or declared: id -> when."""
        rows = self._run("SELECT id, withdrawn_at FROM sources WHERE withdrawn_at IS NOT NULL "
                         "UNION ALL SELECT source, withdrawn_at FROM declared_withdrawals")
        return dict(rows)

    def withdrawn_at(self, source_id: str) -> str | None:
        rows = self._run("SELECT withdrawn_at FROM sources WHERE id = ? AND withdrawn_at IS NOT NULL "
                         "UNION ALL SELECT withdrawn_at FROM declared_withdrawals WHERE source = ?",
                         (source_id, source_id))
        return rows[0][0] if rows else None


def registered_sources(data_dir: Path) -> list[Source]:
    """The sources organisers registered and have not withdrawn, for `affiche harvest`."""
    accounts = Accounts(data_dir)
    if not accounts.path.exists():
        return []
    return [s.as_source() for s in accounts.sources(active_only=True) if s.url or s.upload]


def withdrawals(data_dir: Path) -> dict[str, str]:
    """Withdrawn sources (id -> when), without creating the registry when there is none."""
    accounts = Accounts(data_dir)
    return accounts.withdrawals() if accounts.path.exists() else {}


def source_withdrawn_at(data_dir: Path, source_id: str) -> str | None:
    accounts = Accounts(data_dir)
    return accounts.withdrawn_at(source_id) if accounts.path.exists() else None


def declared_source(config: Path | None, source_id: str, withdrawn_at: str | None) -> RegisteredSource | None:
    """A source of the operator's TOML file as the API sees it (None when not declared there)."""
    if config is None or not Path(config).exists():
        return None
    from harvester.sources import SourceConfigError, declared_organisers, load_sources

    try:
        found = next((s for s in load_sources(Path(config)) if s.id == source_id), None)
        owner = declared_organisers(Path(config)).get(source_id)
    except SourceConfigError:
        return None
    if found is None:
        return None
    return RegisteredSource(
        id=found.id, organiser=owner, name=found.name, url=found.url,
        upload=str(found.path) if found.path else None, format=found.format,
        language=found.language, timezone=found.timezone, license=found.license,
        schedule_minutes=None, created_at="", withdrawn_at=withdrawn_at, declared=True)


def withheld_events(data_dir: Path, source_id: str) -> frozenset[str]:
    """The events an organiser withdrew from one source (none when nobody registered anything)."""
    accounts = Accounts(data_dir)
    if not accounts.path.exists():
        return frozenset()
    return accounts.withheld_events(source_id)
