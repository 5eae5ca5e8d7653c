"""Whole sites over a real HTTP server on 127.0.0.1: sitemap indexes and gzip sitemaps, robots.txt,
the page cap, the per-host delay, and XML or gzip that would blow up refused."""

from __future__ import annotations

import gzip
from dataclasses import replace

import pytest
from rdflib.namespace import RDF

from harvester.crawl import CrawlError, Pacer, Robots, crawl_from_page, crawl_sitemap, read_sitemap
from harvester.fetch import FetchPolicy, fetch
from harvester.formats import ParseError
from harvester.pipeline import check
from harvester.sources import Source
from ontology import AFFICHE, DISCIPLINE, SCHEMA

BASE = "http://affiche.test"
SOURCE = Source(id="cirque-du-nord", name="Cirque du Nord")


def names(graph) -> set[str]:
    return {str(graph.value(e, SCHEMA.name)) for e in graph.subjects(RDF.type, SCHEMA.Event)}


def test_sitemap_index_with_gzip_sitemap_yields_the_event_pages_only(site_server, local_policy) -> None:
    checked = check(site_server.base + "/sitemap_index.xml", SOURCE, BASE, "sitemap", local_policy)
    assert names(checked.published) == {"Les Funambules", "Trapèzes"}
    assert DISCIPLINE.circus in set(checked.published.objects(None, AFFICHE.discipline))
    origins = {e.origin.split(",")[0] for e in checked.report.events}
    assert origins == {site_server.base + "/spectacles/funambules.html",
                       site_server.base + "/spectacles/trapezes.html"}
    problems = {p.where: p.message for p in checked.report.feed_problems}
    assert "robots.txt" in problems[site_server.base + "/prive/repetition.html"]
    assert "HTTP 404" in problems[site_server.base + "/disparu.html"]
    assert "not on the sitemap's host" in problems["https://ailleurs.example/page.html"]
    assert "/prive/repetition.html" not in site_server.paths()
    assert site_server.paths().count("/robots.txt") == 1


def test_sitemap_is_detected_without_a_declared_format(site_server, local_policy) -> None:
    checked = check(site_server.base + "/sitemap-spectacles.xml", SOURCE, BASE, None, local_policy)
    assert checked.report.format == "sitemap"
    assert names(checked.published) == {"Les Funambules", "Trapèzes"}


def test_start_page_crawl_follows_same_host_links_within_robots(site_server, local_policy) -> None:
    checked = check(site_server.base + "/", SOURCE, BASE, "site", local_policy)
    assert names(checked.published) == {"Les Funambules", "Trapèzes"}
    fetched = site_server.paths()
    assert "/a-propos.html" in fetched
    assert "/affiche.pdf" not in fetched and "/prive/repetition.html" not in fetched
    assert fetched.count("/spectacles/trapezes.html") == 1  # the #fragment link is the same page


def test_page_cap_stops_the_crawl_and_says_so(site_server, local_policy) -> None:
    policy = replace(local_policy, crawl_max_pages=2)
    result = crawl_from_page(fetch(site_server.base + "/", policy), policy)
    assert len(result.pages) == 2
    assert any("page cap" in message for _, message in result.problems)


def test_robots_crawl_delay_and_pacer_space_requests_per_host(site_server, local_policy) -> None:
    site_server.routes["/robots.txt"] = (200, {}, b"User-agent: *\nCrawl-delay: 7\n")
    slept: list[float] = []
    now = [100.0]
    pacer = Pacer(delay_s=2.0, clock=lambda: now[0], sleep=slept.append)
    robots = Robots(local_policy, pacer)
    assert robots.delay(site_server.base + "/x") == 7.0
    pacer.wait("a.example")
    now[0] += 0.5
    pacer.wait("a.example")
    pacer.wait("b.example")
    assert slept == [1.5]


def test_robots_unreachable_means_disallowed_and_missing_means_allowed(site_server, local_policy) -> None:
    site_server.routes["/robots.txt"] = (503, {}, b"busy")
    assert not Robots(local_policy, Pacer(0)).allowed(site_server.base + "/spectacles/trapezes.html")
    site_server.routes["/robots.txt"] = (404, {}, b"")
    assert Robots(local_policy, Pacer(0)).allowed(site_server.base + "/prive/repetition.html")


def test_gzip_bomb_is_refused_under_the_byte_cap(site_server, local_policy) -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * 5_000_000 + b"</urlset>")
    assert len(bomb) < 20_000
    with pytest.raises(CrawlError, match="decompresses to more than 100000 bytes"):
        read_sitemap(bomb, "sitemap.xml.gz", max_bytes=100_000)
    site_server.routes["/bomb.xml.gz"] = (200, {"Content-Type": "application/gzip"}, bomb)
    policy = replace(local_policy, max_bytes=100_000)
    with pytest.raises(ParseError, match="over the limit"):
        check(site_server.base + "/bomb.xml.gz", SOURCE, BASE, "sitemap", policy)


def test_sitemap_with_doctype_or_entities_is_refused() -> None:
    billion = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
               b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&lol;</loc></url></urlset>')
    with pytest.raises(CrawlError, match="DOCTYPE or entity"):
        read_sitemap(billion, "sitemap.xml", max_bytes=10_000)
    with pytest.raises(CrawlError, match="not <urlset> or <sitemapindex>"):
        read_sitemap(b"<rss><channel/></rss>", "feed.xml", max_bytes=10_000)


def test_sitemap_pages_on_private_addresses_are_refused_without_allow_list(site_server) -> None:
    policy = FetchPolicy(crawl_delay_s=0.0)
    sitemap = fetch(site_server.base + "/sitemap-spectacles.xml", replace(
        policy, allow_hosts=frozenset({"127.0.0.1"})))
    result = crawl_sitemap(sitemap, policy)
    assert result.pages == []
    assert all("non-public address" in message for _, message in result.problems)


def test_site_byte_budget_and_non_html_pages(site_server, local_policy) -> None:
    page = b"<html><body>" + b"x" * 888 + b"</body></html>"  # 914 bytes
    urls = [f"/page-{n}.html" for n in range(8)]
    for url in urls:
        site_server.routes[url] = (200, {"Content-Type": "text/html"}, page)
    site_server.routes["/affiche.pdf"] = (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4")
    locs = "".join(f"<url><loc>{site_server.base}{u}</loc></url>" for u in ["/affiche.pdf", *urls])
    site_server.routes["/sitemap.xml"] = (200, {"Content-Type": "application/xml"}, (
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>').encode())
    policy = replace(local_policy, max_bytes=1000)  # the site may weigh 5 × 1000 bytes
    result = crawl_sitemap(fetch(site_server.base + "/sitemap.xml", policy), policy)
    messages = [message for _, message in result.problems]
    assert any("not a web page (application/pdf)" in m for m in messages)
    assert any("stopped after 5000 bytes" in m for m in messages)
    assert len(result.pages) == 6  # the sixth page crossed the budget; the last two were not fetched
    assert "/page-7.html" not in site_server.paths()


def test_a_sitemap_given_as_a_local_file_says_it_needs_its_url(tmp_path) -> None:
    sitemap = tmp_path / "sitemap.xml"
    sitemap.write_text('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>')
    with pytest.raises(ParseError, match="crawled from its URL"):
        check(sitemap, SOURCE, BASE, "sitemap")
