"""A whole site crawled from a start page (links on the same host, robots.txt honoured, a delay
per host, a page cap); only pages with Event markup yield events. See sitemap.py for sitemaps."""

from __future__ import annotations

from ..crawl import crawl_from_page
from . import FeedFormat, ParseContext, Parsed
from . import html
from .sitemap import parse_site


def parse(content: bytes, ctx: ParseContext) -> Parsed:
    return parse_site(content, ctx, crawl_from_page)


FORMAT = FeedFormat(
    name="site",
    label="Site crawled from a start page",
    media_types=(),
    extensions=(),
    sniff=html.FORMAT.sniff,  # the start page is a web page; never chosen before `html`
    parse=parse,
)
