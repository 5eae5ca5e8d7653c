"""Stable IRIs minted by Affiche: `{base}/event/{key}`, `/place/{key}`, `/organization/{key}`…

A key is derived from the source and the organiser's own identifier, so re-harvesting the same feed
yields the same IRIs. Places and organisations are keyed by their name and locality (or their
external identifier), without the source, so that several sources naming the same venue meet on one
IRI.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

KINDS = ("event", "place", "organization", "person", "work", "source")


def slugify(text: str, limit: int = 40) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].rstrip("-")


def digest(*parts: str, length: int = 12) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:length]


def event_key(source_id: str, organiser_id: str) -> str:
    return f"{source_id}-{digest(source_id, organiser_id)}"


def entity_key(label: str, identity: str) -> str:
    """A readable, stable key: a slug of the label, then a digest of what identifies the entity."""
    slug = slugify(label) or "x"
    return f"{slug}-{digest(identity, length=8)}"


def iri(base_url: str, kind: str, key: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    return f"{base_url.rstrip('/')}/{kind}/{key}"


def graph_iri(base_url: str, source_id: str) -> str:
    """The named graph holding one source's published data."""
    return f"{base_url.rstrip('/')}/graph/{source_id}"


def parse_iri(base_url: str, value: str) -> tuple[str, str] | None:
    """(kind, key) when `value` is an IRI minted by this instance, else None."""
    prefix = base_url.rstrip("/") + "/"
    if not value.startswith(prefix):
        return None
    kind, _, key = value[len(prefix):].partition("/")
    if kind in KINDS and key and "/" not in key and "#" not in key:
        return kind, key
    return None


# External identifiers that name the same venue or organisation across sources, strongest first.
_EXTERNAL_PATTERNS = (
    ("wikidata", re.compile(r"wikidata\.org/(?:wiki|entity)/(Q\d+)\b", re.I)),
    ("artsdata", re.compile(r"artsdata\.ca/resource/(K\d+-\d+)\b", re.I)),
    ("isni", re.compile(r"isni(?:\.org)?/(?:isni/)?([0-9 ]{15,19}[0-9X])\b", re.I)),
)
_SCHEMES = ("wikidata", "artsdata", "isni", "siret", "kbo")
_SCHEME_ALIASES = {"siret": "siret", "kbo": "kbo", "bce": "kbo", "cbe": "kbo", "isni": "isni",
                   "wikidata": "wikidata", "artsdata": "artsdata", "vat": "kbo", "vatid": "kbo"}


def external_id(value: str, scheme: str | None = None) -> str | None:
    """`wikidata:Q42`, `artsdata:K11-19`, `isni:0000000121032683`, `siret:…` (14 digits),
    `kbo:…` (10 digits) — one spelling for each, whatever URL form or punctuation the feed used;
    None when `value` is not one of these. `scheme` is a feed's own label (a propertyID)."""
    text = value.strip()
    for name, pattern in _EXTERNAL_PATTERNS:
        match = pattern.search(text)
        if match:
            return f"{name}:{re.sub(r'[^0-9A-Z-]', '', match.group(1).upper())}"
    label = _SCHEME_ALIASES.get(re.sub(r"[^a-z]", "", (scheme or "").lower()))
    digits = re.sub(r"[\s.\-]", "", text.upper()).removeprefix("BE")
    if label == "siret" and re.fullmatch(r"\d{14}", digits):
        return f"siret:{digits}"
    if label == "kbo" and re.fullmatch(r"[01]\d{9}", digits):
        return f"kbo:{digits}"
    if label in ("wikidata",) and re.fullmatch(r"Q\d+", digits):
        return f"wikidata:{digits}"
    if label == "isni" and re.fullmatch(r"\d{15}[\dX]", digits):
        return f"isni:{digits}"
    return None


def strongest(ids: set[str]) -> str | None:
    """The identifier two sources are most likely to share (Wikidata first, then Artsdata…)."""
    ranked = sorted(ids, key=lambda i: (_SCHEMES.index(i.split(":", 1)[0]), i))
    return ranked[0] if ranked else None
