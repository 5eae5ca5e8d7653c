"""Whole sites: `sitemap` reads every page a sitemap.xml lists (indexes and .gz included), `site`
follows links from a start page; each page is read as HTML (harvester/formats/html.py) and only
pages with Event markup yield events. The crawl itself (robots.txt, delay, page cap) is in
harvester/crawl.py; it needs the fetch policy, which the pipeline gives in the parse context.
"""

from __future__ import annotations

from dataclasses import replace

from ..crawl import CrawlError, CrawlResult, crawl_sitemap, is_sitemap
from ..fetch import Fetched
from . import FeedFormat, ParseContext, Parsed, ParseError, ParseProblem
from . import html
from ._events import event_nodes


def parse_sitemap(content: bytes, ctx: ParseContext) -> Parsed:
    return parse_site(content, ctx, crawl_sitemap)


def parse_site(content: bytes, ctx: ParseContext, crawl) -> Parsed:
    if ctx.fetch_policy is None or not ctx.base_url:
        raise ParseError("a site is crawled from its URL: give the sitemap or start page as `url`")
    try:
        result = crawl(Fetched(content=content, location=ctx.base_url), ctx.fetch_policy)
    except CrawlError as exc:
        raise ParseError(str(exc)) from exc
    return pages_to_parsed(result, ctx)


def pages_to_parsed(result: CrawlResult, ctx: ParseContext) -> Parsed:
    """One graph for the site: each page read on its own, problems named by page URL."""
    parsed = Parsed()
    parsed.problems += [ParseProblem(where=where, message=message) for where, message in result.problems]
    for page in result.pages:
        page_context = replace(ctx, base_url=page.location)
        try:
            page_parsed = html.parse(page.content, page_context)
        except ParseError as exc:
            parsed.problems.append(ParseProblem(where=page.location, message=str(exc)))
            continue
        parsed.problems += [ParseProblem(where=f"{page.location}, {p.where}", message=p.message,
                                         field=p.field) for p in page_parsed.problems]
        parsed.triples.add_all(page_parsed.triples)
        for node in event_nodes(page_parsed.triples):
            where = page_parsed.origins.get(node, "")
            parsed.origins[node] = f"{page.location}, {where}" if where else page.location
    return parsed


FORMAT = FeedFormat(
    name="sitemap",
    label="Site crawled from its sitemap.xml",
    media_types=("application/xml", "text/xml", "application/gzip", "application/x-gzip"),
    extensions=("sitemap.xml", "sitemap.xml.gz", "sitemap_index.xml"),
    sniff=is_sitemap,
    parse=parse_sitemap,
)
