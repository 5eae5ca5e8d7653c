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
