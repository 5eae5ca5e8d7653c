"""The real thing: `affiche demo` in a subprocess, read by headless Chromium and by SPARQLWrapper."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from ontology import EVENT_TYPES, SCHEMA

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LEAD_SCREENSHOT = Path("/tmp/affiche-event.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
             "octobre", "novembre", "décembre"]
COUNT_EVENTS = """PREFIX schema: <http://schema.org/>
SELECT (COUNT(DISTINCT ?event) AS ?events) WHERE { ?event schema:startDate ?start ; schema:name ?name }"""


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs /usr/bin/chromium and /usr/bin/chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path / "chromium-profile"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1280,1400",
                     f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def event_graph(base: str, path: str) -> Graph:
    """The event's own data, as the server publishes it, to compare the rendered page with."""
    response = httpx.get(base + path, headers={"Accept": "application/n-triples"}, timeout=10)
    response.raise_for_status()
    return Graph().parse(data=response.text, format="nt")


@pytest.mark.browser
def test_event_page_in_a_real_browser(browser, demo_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    # Chromium asks for English; ask for the French pages so the date format below is known.
    browser.get(demo_server + "/?lang=fr")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    first = browser.find_element(By.CSS_SELECTOR, "ol.events li a")
    listed_name = first.text.strip()
    assert listed_name
    first.click()
    WebDriverWait(browser, 15).until(expected_conditions.url_contains("/event/"))
    WebDriverWait(browser, 15).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "article.event h1")))

    path = "/" + browser.current_url.split("/", 3)[3].split("?")[0]
    iri = URIRef(demo_server + path)
    graph = event_graph(demo_server, path)

    assert browser.find_element(By.TAG_NAME, "h1").text.strip() == listed_name
    assert listed_name in {str(n) for n in graph.objects(iri, SCHEMA.name)}

    start = datetime.fromisoformat(str(graph.value(iri, SCHEMA.startDate)))
    when = browser.find_element(By.CSS_SELECTOR, ".when")
    assert datetime.fromisoformat(
        when.find_element(By.TAG_NAME, "time").get_attribute("datetime")) == start
    assert f"{start.day} {MONTHS_FR[start.month - 1]} {start.year}" in when.text
    assert f"{start.hour} h {start.minute:02d}" in when.text

    venue = str(graph.value(graph.value(iri, SCHEMA.location), SCHEMA.name))
    assert venue in browser.find_element(By.CSS_SELECTOR, ".where").text

    scripts = browser.find_elements(By.CSS_SELECTOR, 'script[type="application/ld+json"]')
    assert len(scripts) == 1
    data = json.loads(scripts[0].get_attribute("textContent"))
    assert data["@context"] in ("https://schema.org", "http://schema.org")
    assert SCHEMA[data["@type"]] in EVENT_TYPES
    assert data["@id"] == str(iri)
    assert data["name"] == listed_name
    assert datetime.fromisoformat(data["startDate"]) == start

    screenshot = tmp_path / "event.png"
    assert browser.save_screenshot(str(screenshot))
    content = screenshot.read_bytes()
    assert content.startswith(PNG_MAGIC)
    assert len(content) > 10_000
    # One copy where the lead can look at it; the test's own copy stays in the pytest tmp dir.
    shutil.copyfile(screenshot, LEAD_SCREENSHOT)


@pytest.fixture
def expected_event_count(demo_data) -> int:
    return sum(report.summary["published"] for report in demo_data[2].values())


def test_sparqlwrapper_select_counts_the_events(demo_server, expected_event_count):
    from SPARQLWrapper import JSON, SPARQLWrapper

    endpoint = SPARQLWrapper(f"{demo_server}/sparql")
    endpoint.setQuery(COUNT_EVENTS)
    endpoint.setReturnFormat(JSON)
    endpoint.setTimeout(30)
    results = endpoint.query().convert()

    assert results["head"]["vars"] == ["events"]
    [row] = results["results"]["bindings"]
    assert int(row["events"]["value"]) == expected_event_count


def test_sparqlwrapper_construct_returns_turtle(demo_server, expected_event_count):
    from SPARQLWrapper import TURTLE, SPARQLWrapper

    endpoint = SPARQLWrapper(f"{demo_server}/sparql")
    endpoint.setQuery("""PREFIX schema: <http://schema.org/>
        CONSTRUCT { ?event schema:name ?name ; schema:startDate ?start }
        WHERE { ?event schema:startDate ?start ; schema:name ?name }""")
    endpoint.setReturnFormat(TURTLE)
    endpoint.setTimeout(30)
    result = endpoint.query()

    assert result.info()["content-type"].split(";")[0] == "text/turtle"
    body = result.convert()
    graph = Graph().parse(data=body, format="turtle")
    events = set(graph.subjects(SCHEMA.startDate, None))
    assert len(events) == expected_event_count
    assert all(str(e).startswith(demo_server + "/event/") for e in events)
    assert all(graph.value(e, SCHEMA.name) is not None for e in events)
    assert (None, RDF.type, None) not in graph
