"""Whole sites: the pages listed by a sitemap (indexes and gzip sitemaps included), or the pages
reached from a start page by following links on the same host.

A crawl is polite and bounded: `robots.txt` is honoured (its `Crawl-delay` too, when longer than
ours), requests to one host are spaced by the policy's delay, and it stops at the page cap, saying
so. Every page goes through the guarded fetcher (no private addresses, capped size and time).
Sitemaps are XML read without DOCTYPE or entities, and a gzip sitemap is decompressed under the
byte cap, so neither an entity nor a gzip bomb can blow up.
"""

from __future__ import annotations

import re
import time
import urllib.robotparser
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urldefrag, urljoin, urlsplit
from xml.etree import ElementTree

import lxml.etree
import lxml.html

from .fetch import Fetched, FetchError, FetchPolicy, check_address, fetch_url

ROBOTS_AGENT = "Affiche"
_DTD = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_NOT_PAGES = re.compile(
    r"\.(?:jpe?g|png|gif|webp|svg|ico|pdf|zip|gz|mp[34]|avi|mov|css|js|woff2?|ics|csv|xml)$", re.I)
_MAX_SITEMAPS = 50
_MAX_ROBOTS_DELAY_S = 30.0
# A whole site may weigh this many times the per-feed byte cap before the crawl stops.
SITE_BYTES_FACTOR = 5


class CrawlError(Exception):
    """The site cannot be crawled at all (its sitemap is unreadable, refused or empty)."""


@dataclass
class CrawlResult:
    pages: list[Fetched] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (where, message)


@dataclass
class Pacer:
    """Spaces requests to one host by `delay_s`; the clock and sleep are injectable for tests."""

    delay_s: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last: dict[str, float] = field(default_factory=dict)

    def wait(self, host: str, delay_s: float | None = None) -> None:
        delay = self.delay_s if delay_s is None else delay_s
        last = self._last.get(host)
        if last is not None:
            remaining = last + delay - self.clock()
            if remaining > 0:
                self.sleep(remaining)
        self._last[host] = self.clock()


class Robots:
    """robots.txt of each host, fetched once through the guarded client; no file means no rule."""

    def __init__(self, policy: FetchPolicy, pacer: Pacer) -> None:
        self.policy, self.pacer = policy, pacer
        self._parsers: dict[str, urllib.robotparser.RobotFileParser] = {}

    def _parser(self, url: str) -> urllib.robotparser.RobotFileParser:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._parsers:
            parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
            self.pacer.wait(parts.netloc)
            try:
                text = fetch_url(origin + "/robots.txt", self.policy).content.decode("utf-8", "replace")
            except FetchError as exc:
                # 4xx: no rules (RFC 9309); 5xx or unreachable: assume everything is disallowed.
                text = "" if exc.status and 400 <= exc.status < 500 else "User-agent: *\nDisallow: /"
            parser.parse(text.splitlines())
            self._parsers[origin] = parser
        return self._parsers[origin]

    def allowed(self, url: str) -> bool:
        return self._parser(url).can_fetch(ROBOTS_AGENT, url)

    def delay(self, url: str) -> float:
        declared = self._parser(url).crawl_delay(ROBOTS_AGENT)
        own = self.pacer.delay_s
        return max(own, min(float(declared), _MAX_ROBOTS_DELAY_S)) if declared else own


# --- sitemaps -------------------------------------------------------------------------------


def is_sitemap(content: bytes) -> bool:
    if content[:2] == b"\x1f\x8b":
        return True
    head = content[:2048].decode("utf-8", "replace")
    return "<urlset" in head or "<sitemapindex" in head


def gunzip_capped(content: bytes, max_bytes: int, where: str) -> bytes:
    """Decompress a gzip body without ever holding more than `max_bytes` of output."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(content, max_bytes + 1)
    except zlib.error as exc:
        raise CrawlError(f"{where}: not a valid gzip file ({exc})") from exc
    if len(out) > max_bytes:
        raise CrawlError(f"{where}: decompresses to more than {max_bytes} bytes, over the limit")
    return out


def read_sitemap(content: bytes, where: str, max_bytes: int) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) of a sitemap or sitemap index."""
    if content[:2] == b"\x1f\x8b":
        content = gunzip_capped(content, max_bytes, where)
    if _DTD.search(content):
        raise CrawlError(f"{where}: XML with a DOCTYPE or entity declarations is refused")
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError as exc:
        raise CrawlError(f"{where}: not a valid sitemap: {exc}") from exc
    tag = root.tag.removeprefix(_SITEMAP_NS)
    locations = [(loc.text or "").strip() for loc in root.iter(f"{_SITEMAP_NS}loc")]
    if not locations:  # sitemaps written without the namespace
        locations = [(loc.text or "").strip() for loc in root.iter("loc")]
    locations = [loc for loc in locations if loc]
    if tag == "sitemapindex":
        return [], locations
    if tag == "urlset":
        return locations, []
    raise CrawlError(f"{where}: the root element is <{tag}>, not <urlset> or <sitemapindex>")


def crawl_sitemap(fetched: Fetched, policy: FetchPolicy, pacer: Pacer | None = None) -> CrawlResult:
    """Fetch every page a sitemap (or sitemap index) lists, on the sitemap's own host."""
    pacer = pacer or Pacer(policy.crawl_delay_s)
    robots = Robots(policy, pacer)
    result = CrawlResult()
    host = urlsplit(fetched.location).netloc
    pages, nested = read_sitemap(fetched.content, fetched.location, policy.max_bytes)
    queue, seen_maps = deque(nested), {fetched.location}
    while queue and len(seen_maps) < _MAX_SITEMAPS:
        url = queue.popleft()
        if url in seen_maps or not _same_host(url, host, result):
            continue
        seen_maps.add(url)
        try:
            pacer.wait(host)
            more_pages, more_maps = read_sitemap(fetch_url(url, policy).content, url, policy.max_bytes)
        except (FetchError, CrawlError) as exc:
            result.problems.append((url, str(exc)))
            continue
        pages += more_pages
        queue.extend(more_maps)
    targets = [url for url in dict.fromkeys(pages) if _same_host(url, host, result)]
    _fetch_pages(targets, policy, pacer, robots, result)
    return result


def _same_host(url: str, host: str, result: CrawlResult) -> bool:
    try:
        netloc = urlsplit(url).netloc
    except ValueError as exc:  # `http://[`: listed, but no URL
        result.problems.append((url, f"not a valid URL ({exc}); not read"))
        return False
    if netloc == host:
        return True
    result.problems.append((url, f"not on the sitemap's host {host}; sitemaps may only list their own pages"))
    return False


def _fetch_pages(urls: list[str], policy: FetchPolicy, pacer: Pacer, robots: Robots,
                 result: CrawlResult) -> None:
    for index, url in enumerate(urls):
        if index >= policy.crawl_max_pages:
            result.problems.append((url, f"the crawl stopped at {policy.crawl_max_pages} pages "
                                         f"(the page cap); {len(urls) - index} pages were not read"))
            return
        page = _fetch_page(url, policy, pacer, robots, result)
        if page is not None and _is_web_page(page, result):
            result.pages.append(page)
            if _over_budget(result, policy, url):
                return


def _fetch_page(url: str, policy: FetchPolicy, pacer: Pacer, robots: Robots,
                result: CrawlResult) -> Fetched | None:
    try:
        check_address(url, policy)  # a refused host is reported as such, not as a robots.txt rule
        if not robots.allowed(url):
            result.problems.append((url, "disallowed by robots.txt; not read"))
            return None
        pacer.wait(urlsplit(url).netloc, robots.delay(url))
        return fetch_url(url, policy)
    except FetchError as exc:
        result.problems.append((url, str(exc)))
        return None


def _is_web_page(page: Fetched, result: CrawlResult) -> bool:
    if page.media_type in (None, "text/html", "application/xhtml+xml"):
        return True
    result.problems.append((page.location, f"not a web page ({page.media_type}); not read"))
    return False


def _over_budget(result: CrawlResult, policy: FetchPolicy, url: str) -> bool:
    budget = policy.max_bytes * SITE_BYTES_FACTOR
    if sum(len(page.content) for page in result.pages) <= budget:
        return False
    result.problems.append((url, f"the crawl stopped after {budget} bytes of pages "
                                 f"({SITE_BYTES_FACTOR} × the feed size cap)"))
    return True


# --- start page ----------------------------------------------------------------------------


def crawl_from_page(fetched: Fetched, policy: FetchPolicy, pacer: Pacer | None = None) -> CrawlResult:
    """The start page, then the pages its links reach on the same host, breadth first."""
    pacer = pacer or Pacer(policy.crawl_delay_s)
    robots = Robots(policy, pacer)
    result = CrawlResult(pages=[fetched])
    host = urlsplit(fetched.location).netloc
    seen = {urldefrag(fetched.location).url}
    queue = deque(_links(fetched, host))
    while queue:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        if len(result.pages) >= policy.crawl_max_pages:
            result.problems.append((url, f"the crawl stopped at {policy.crawl_max_pages} pages "
                                         "(the page cap); links beyond it were not followed"))
            return result
        page = _fetch_page(url, policy, pacer, robots, result)
        if page is None or not _is_web_page(page, result):
            continue
        result.pages.append(page)
        if _over_budget(result, policy, url):
            return result
        queue.extend(link for link in _links(page, host) if link not in seen)
    return result


def _links(page: Fetched, host: str) -> list[str]:
    try:
        tree = lxml.html.fromstring(page.content)
    except (ValueError, lxml.etree.ParserError):
        return []
    links = []
    for href in tree.xpath("//a/@href"):
        try:
            url = urldefrag(urljoin(page.location, str(href).strip())).url
            parts = urlsplit(url)
        except ValueError:  # `http://[`: not a link that can be followed
            continue
        if parts.scheme in ("http", "https") and parts.netloc == host and not _NOT_PAGES.search(parts.path):
            links.append(url)
    return list(dict.fromkeys(links))
