"""Sources: the organisers' feeds Affiche harvests, as declared in a TOML file.

```toml
[[source]]
id = "theatre-lumiere"
name = "Théâtre de la Lumière"
url = "https://theatre-lumiere.example/agenda/"   # or path = "feeds/agenda.html"
format = "html"            # optional: detected from content type, extension and content
language = "fr"
timezone = "Europe/Paris"
license = "https://creativecommons.org/publicdomain/zero/1.0/"
organiser = "theatre-lumiere"   # optional: the organiser account that may withdraw it (API)
```

`organiser` names an account of the organiser API (`affiche organisers add`): its token may
withdraw the source or its events through `/api/`. It does not change what is harvested, so it is
not part of `Source` (`declared_organisers` reads it).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
FIELDS = {"id", "name", "format", "url", "path", "language", "timezone", "license", "organiser"}


class SourceConfigError(ValueError):
    """A source declaration that cannot be used; the message names the file, table and field."""


@dataclass(frozen=True)
class Source:
    id: str
    name: str
    url: str | None = None
    path: Path | None = None
    format: str | None = None
    language: str = "fr"
    timezone: str = "Europe/Paris"
    license: str | None = None

    @property
    def location(self) -> str:
        return self.url or str(self.path)


def load_sources(config: Path) -> list[Source]:
    """Read every `[[source]]` table of a TOML file; relative paths are relative to the file."""
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SourceConfigError(f"{config}: cannot read the file ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SourceConfigError(f"{config}: not valid TOML: {exc}") from exc
    tables = data.get("source", [])
    if not isinstance(tables, list):
        raise SourceConfigError(f"{config}: `source` must be an array of tables ([[source]])")
    sources = [_source_from_table(table, config, index) for index, table in enumerate(tables, 1)]
    seen: set[str] = set()
    for source in sources:
        if source.id in seen:
            raise SourceConfigError(f"{config}: source id {source.id!r} is declared twice")
        seen.add(source.id)
    return sources


def declared_organisers(config: Path) -> dict[str, str]:
    """Source id -> the organiser account named by its `organiser` key (when it has one)."""
    load_sources(config)  # the same checks, the same errors
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    return {t["id"]: t["organiser"] for t in data.get("source", []) if t.get("organiser")}


def _source_from_table(table: dict, config: Path, index: int) -> Source:
    where = f"{config}: [[source]] #{index}"
    unknown = set(table) - FIELDS
    if unknown:
        raise SourceConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("id", "name"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise SourceConfigError(f"{where}: field `{key}` is required (a non-empty string)")
    source_id = table["id"]
    where = f"{config}: source {source_id!r}"
    if not SOURCE_ID.match(source_id):
        raise SourceConfigError(
            f"{where}: `id` must be lower-case letters, digits and dashes (at most 63)"
        )
    if bool(table.get("url")) == bool(table.get("path")):
        raise SourceConfigError(f"{where}: give exactly one of `url` or `path`")
    organiser = table.get("organiser")
    if organiser is not None and not (isinstance(organiser, str) and SOURCE_ID.match(organiser)):
        raise SourceConfigError(f"{where}: `organiser` must be an organiser id (lower-case "
                                "letters, digits and dashes)")
    url = table.get("url")
    if url is not None and not re.match(r"^https?://", url):
        raise SourceConfigError(f"{where}: `url` must start with http:// or https://")
    path = Path(table["path"]) if table.get("path") else None
    if path is not None and not path.is_absolute():
        path = (config.parent / path).resolve()
    timezone = table.get("timezone", "Europe/Paris")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SourceConfigError(f"{where}: unknown IANA time zone {timezone!r}") from exc
    return Source(
        id=source_id,
        name=table["name"],
        url=url,
        path=path,
        format=table.get("format"),
        language=table.get("language", "fr"),
        timezone=timezone,
        license=table.get("license"),
    )
