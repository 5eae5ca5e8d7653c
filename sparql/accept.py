"""HTTP `Accept` negotiation with quality values (RFC 9110 §12.5.1), shared by every router."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    type: str
    subtype: str
    q: float
    order: int

    @property
    def specificity(self) -> int:
        return (self.type != "*") + (self.subtype != "*")

    def matches(self, media_type: str) -> bool:
        main, _, sub = media_type.partition("/")
        return self.type in ("*", main) and self.subtype in ("*", sub)


def parse_accept(header: str | None) -> list[Range]:
    if not header or not header.strip():
        return [Range("*", "*", 1.0, 0)]
    ranges = []
    for order, part in enumerate(header.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if "/" not in media:
            if media == "*":
                media = "*/*"
            else:
                continue
        q = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        main, _, sub = media.partition("/")
        ranges.append(Range(main, sub, q, order))
    return ranges


def best_match(header: str | None, offered: list[str]) -> str | None:
    """The offered media type the client prefers, None when it accepts none of them.

    Each offered type takes the q of the most specific range matching it; ties go to the order
    of `offered` (the server's preference), so `*/*` yields the first offered type.
    """
    ranges = parse_accept(header)
    best, best_q = None, 0.0
    for media_type in offered:
        matching = [r for r in ranges if r.matches(media_type)]
        if not matching:
            continue
        top = max(matching, key=lambda r: (r.specificity, -r.order))
        if top.q > best_q:
            best, best_q = media_type, top.q
    return best
