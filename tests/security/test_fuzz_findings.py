"""What coverage-guided fuzzing (fuzz/fuzz_parsers.py) found, kept as tests: each input once
crashed a parser, or kept it busy for minutes, or made it allocate without bound."""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timezone

import pytest
from dateutil import rrule as dateutil_rrule

from harvester.fetch import FetchPolicy
from harvester.formats import ParseContext, ParseError, formats
from ontology import SCHEMA

NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)


def calendar(*lines: str) -> bytes:
    body = "".join(f"{line}\r\n" for line in lines)
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Maison de la Marionnette (fictive)//FR\r\n"
            "BEGIN:VEVENT\r\nUID:castelet@marionnette.example\r\nDTSTAMP:20261201T090000Z\r\n"
            f"{body}END:VEVENT\r\nEND:VCALENDAR\r\n").encode()


def parse_ics(content: bytes, **context) -> object:
    return formats()["ics"].parse(content, ParseContext(source_id="marionnette", now=NOW, **context))


def starts(parsed) -> list[str]:
    return sorted(str(o) for o in parsed.graph.objects(None, SCHEMA.startDate))


# --- a property RFC 5545 allows once, written twice ----------------------------------------------


@pytest.mark.parametrize("recurring", [False, True])
@pytest.mark.parametrize("name", ["DTSTART", "RECURRENCE-ID"])
def test_a_repeated_start_leaves_the_event_out_and_says_why(name, recurring):
    lines = ["SUMMARY:Le Castelet enchanté", "DTSTART:20270312T150000"]
    lines += [f"{name}:20270313T150000", f"{name}:20270314T150000"]
    lines += ["RRULE:FREQ=WEEKLY;COUNT=3"] if recurring else []
    parsed = parse_ics(calendar(*lines))
    assert starts(parsed) == []
    assert [(p.field, p.message) for p in parsed.problems] == [
        (("startDate" if name == "DTSTART" else "eventSchedule"),
         f"{name} appears {2 if name == 'RECURRENCE-ID' else 3} times, once allowed: the event is left out")]


@pytest.mark.parametrize("recurring", [False, True])
@pytest.mark.parametrize("name, first, second", [
    ("DTEND", "20270312T160000", "20270312T170000"),
    ("DURATION", "PT1H", "PT2H"),
    ("GEO", "50.4669;4.8675", "45.5;-73.56"),
    ("SUMMARY", "Le Castelet enchanté", "Ombres chinoises"),
    ("URL", "https://marionnette.example/castelet", "https://marionnette.example/ombres"),
    ("STATUS", "CANCELLED", "CONFIRMED"),
    ("ORGANIZER;CN=Maison de la Marionnette", "mailto:info@marionnette.example", "mailto:x@y.example"),
    ("LOCATION", "Salle du Castelet, 3 rue des Fils, Namur", "Ailleurs"),
])
def test_a_repeated_detail_keeps_the_first_and_says_so(name, first, second, recurring):
    lines = ["DTSTART:20270312T150000", f"{name}:{first}", f"{name}:{second}"]
    lines += ["RRULE:FREQ=WEEKLY;COUNT=3"] if recurring else []
    if name != "SUMMARY":
        lines.append("SUMMARY:Le Castelet enchanté")
    parsed = parse_ics(calendar(*lines))
    assert starts(parsed) == (["2027-03-12T15:00:00", "2027-03-19T15:00:00", "2027-03-26T15:00:00"]
                              if recurring else ["2027-03-12T15:00:00"])
    bare = name.split(";")[0]
    assert [p.message for p in parsed.problems] == [f"{bare} appears 2 times, once allowed: the first is kept"]
    if bare == "SUMMARY":
        names = {str(o) for o in parsed.graph.objects(None, SCHEMA.name)}
        assert "Le Castelet enchanté" in names and "Ombres chinoises" not in names
    if bare == "DTEND":
        assert {str(o) for o in parsed.graph.objects(None, SCHEMA.endDate)} >= {"2027-03-12T16:00:00"}


@pytest.mark.parametrize("recurring", [False, True])
def test_a_repeated_uid_keeps_the_first(recurring):
    """icalendar gives a list, which the expansion used as a key (TypeError: unhashable)."""
    content = calendar("UID:second@marionnette.example", "SUMMARY:Castelet", "DTSTART:20270312T150000",
                       *(["RRULE:FREQ=WEEKLY;COUNT=2"] if recurring else []))
    parsed = parse_ics(content)
    assert len(starts(parsed)) == (2 if recurring else 1)
    assert [p.message for p in parsed.problems] == ["UID appears 2 times, once allowed: the first is kept"]
    assert all(str(uid).startswith("castelet@marionnette.example")
               for uid in parsed.graph.objects(None, SCHEMA.identifier))


def test_a_single_detail_is_not_reported():
    parsed = parse_ics(calendar("DTSTART:20270312T150000", "DTEND:20270312T160000",
                                "SUMMARY:Le Castelet enchanté"))
    assert starts(parsed) == ["2027-03-12T15:00:00"] and parsed.problems == []


# --- recurrences that never end, or never happen --------------------------------------------------


def test_a_recurrence_over_the_event_cap_is_refused_before_it_is_expanded():
    """Every minute for 30 days is 43,200 occurrences: once built one by one (a minute of work
    and 400 MB for a 200-byte feed; hours and gigabytes every second for 18 months)."""
    content = calendar("SUMMARY:Carillon", "DTSTART:20270101T000000Z", "RRULE:FREQ=MINUTELY")
    tracemalloc.start()
    try:
        with pytest.raises(ParseError, match=r"more occurrences in the next 30 days than the cap of "
                                             r"1000 events per feed \(AFFICHE_HARVEST_MAX_EVENTS\)"):
            parse_ics(content, recurrence_days=30, fetch_policy=FetchPolicy(max_events=1000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


def test_a_recurrence_under_the_cap_is_expanded_whole():
    content = calendar("SUMMARY:Carillon", "DTSTART:20270101T120000Z", "RRULE:FREQ=DAILY")
    parsed = parse_ics(content, recurrence_days=30, fetch_policy=FetchPolicy(max_events=1000))
    assert len(starts(parsed)) == 30 and parsed.problems == []  # 1 to 30 January


def test_the_cap_counts_every_series_of_the_feed():
    lines = ["SUMMARY:Carillon", "DTSTART:20270101T120000Z", "RRULE:FREQ=HOURLY;COUNT=600"]
    one = calendar(*lines).decode()
    event = one[one.index("BEGIN:VEVENT"):one.index("END:VCALENDAR")]
    two = one.replace("END:VCALENDAR", event.replace("castelet@", "carillon@") + "END:VCALENDAR")
    policy = FetchPolicy(max_events=1000)
    assert len(starts(parse_ics(one.encode(), recurrence_days=60, fetch_policy=policy))) == 600
    with pytest.raises(ParseError, match="AFFICHE_HARVEST_MAX_EVENTS"):
        parse_ics(two.encode(), recurrence_days=60, fetch_policy=policy)


@pytest.fixture
def dateutil_years(monkeypatch) -> list[int]:
    """How many years (and months) dateutil's rule iterator walks through."""
    walked: list[int] = []
    rebuild = dateutil_rrule._iterinfo.rebuild

    def counting(self, year, month):
        walked.append(year)
        return rebuild(self, year, month)

    monkeypatch.setattr(dateutil_rrule._iterinfo, "rebuild", counting)
    return walked


@pytest.mark.parametrize("rule", [
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",  # 30 February
    "FREQ=SECONDLY;BYMONTH=4;BYMONTHDAY=31",  # 31 April, every second of it
    "FREQ=MINUTELY;BYSECOND=1;BYMINUTE=1;BYHOUR=1;BYMONTHDAY=31;BYMONTH=6",
    "FREQ=YEARLY;BYMONTH=11;BYMONTHDAY=31",
])
def test_a_recurrence_that_never_happens_is_not_searched_until_the_year_9999(rule, dateutil_years):
    """dateutil looks for the next occurrence until the year 9999: for a rule that matches no day
    it walked 8,000 years day by day (13 to 100 s for one VEVENT)."""
    parsed = parse_ics(calendar("SUMMARY:Jamais", "DTSTART:20270101T010101", f"RRULE:{rule}"))
    assert starts(parsed) == ["2027-01-01T01:01:01"]  # DTSTART is the first occurrence (RFC 5545)
    assert len(dateutil_years) < 1000


def test_a_rare_recurrence_is_still_found(dateutil_years):
    """29 February on a Tuesday: 2028 is in the window."""
    parsed = parse_ics(calendar("SUMMARY:Bal bissextile", "DTSTART:20270101T200000",
                                "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=TU"))
    assert starts(parsed) == ["2027-01-01T20:00:00", "2028-02-29T20:00:00"]


def test_a_vevent_swallowed_by_an_unclosed_one_does_not_break_the_series():
    """END:VEVENT missing: the next VEVENT (an override without DTSTART) nests inside the first,
    and the expansion read it as part of the series (KeyError: 'DTSTART')."""
    content = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:plage@marees.example\r\n"
               "SUMMARY:Concert sur la plage\r\nDTSTART;TZID=Europe/Paris:20270701T213000\r\n"
               "RRULE:FREQ=WEEKLY;COUNT=3\r\nBEGIN:VEVENT\r\nUID:plage@marees.example\r\n"
               "RECURRENCE-ID;TZID=Europe/Paris:20270708T213000\r\nSUMMARY:Sans date\r\n"
               "END:VEVENT\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    parsed = parse_ics(content)
    assert starts(parsed) == ["2027-07-01T21:30:00+02:00", "2027-07-08T21:30:00+02:00",
                              "2027-07-15T21:30:00+02:00"]


# --- malformed URLs: `urlsplit` raises on them -----------------------------------------------------

BAD_URLS = ["http://[", "http://[zz]/agenda.ics", "https://cirque.example:99999/", "https://cirque.example:abc/"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_malformed_url_is_refused_by_the_fetcher_not_raised(url):
    from harvester.fetch import FetchError, check_address, fetch_url

    with pytest.raises(FetchError, match="not a valid URL"):
        check_address(url, FetchPolicy())
    with pytest.raises(FetchError, match="not a valid URL"):
        fetch_url(url, FetchPolicy())


def test_a_redirect_to_a_malformed_url_is_a_fetch_error():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    from harvester.fetch import FetchError, fetch_url

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(302)
            self.send_header("Location", "http://[")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FetchError, match="not a valid URL"):
            fetch_url(f"http://127.0.0.1:{server.server_address[1]}/agenda.csv",
                      FetchPolicy(allow_hosts=frozenset({"127.0.0.1"})))
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_malformed_url_in_a_feed_is_a_reported_problem(url):
    csv = f"titre;debut;lieu;billetterie\r\nBal;12/03/2027 20h00;Namur;{url}\r\n".encode()
    parsed = formats()["csv"].parse(csv, ParseContext(source_id="bal", now=NOW))
    assert [(p.field, url in p.message) for p in parsed.problems] == [("offers", True)]
    parsed = parse_ics(calendar("SUMMARY:Castelet", "DTSTART:20270312T150000", f"URL:{url}"))
    assert [(p.field, url in p.message) for p in parsed.problems] == [("url", True)]
    assert starts(parsed) == ["2027-03-12T15:00:00"]


def test_a_malformed_url_in_a_site_is_skipped_or_reported():
    from harvester.crawl import _links, crawl_sitemap
    from harvester.fetch import Fetched

    page = Fetched(content=b'<html><body><a href="http://[">x</a><a href="/spectacles/trapezes">ok</a>'
                           b'<a href="https://cirque.example:abc/">y</a></body></html>',
                   location="https://cirque.example/")
    assert _links(page, "cirque.example") == ["https://cirque.example/spectacles/trapezes"]
    sitemap = Fetched(content=b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                              b"<url><loc>http://[</loc></url></urlset>",
                      location="https://cirque.example/sitemap.xml")
    result = crawl_sitemap(sitemap, FetchPolicy())
    assert result.pages == [] and [(where, "not a valid URL" in why) for where, why in result.problems] \
        == [("http://[", True)]


@pytest.fixture
async def checker(tmp_path):
    import httpx

    from publisher.app import create_app
    from publisher.settings import Settings
    from sparql.store import EmbeddedStore

    app = create_app(Settings(base_url="http://affiche.test", data_dir=tmp_path), store=EmbeddedStore(None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://affiche.test") as http:
        yield http


@pytest.mark.anyio
@pytest.mark.parametrize("url", BAD_URLS)
async def test_the_checker_answers_a_malformed_url_with_400_not_500(checker, url):
    form = await checker.post("/check", data={"url": url, "format": "csv"})
    assert form.status_code == 400 and "not a valid URL" in form.text
    api = await checker.post("/api/check", json={"url": url})
    assert api.status_code == 400
    assert api.headers["content-type"].startswith("application/problem+json")
    assert "not a valid URL" in api.json()["detail"]


@pytest.mark.parametrize("zone", ["Europe", "America"])
def test_a_tzid_naming_a_folder_of_the_zone_database_is_a_parse_error(zone):
    """zoneinfo opened the folder and raised IsADirectoryError, which icalendar let through."""
    with pytest.raises(ParseError, match=f"a TZID names no time zone \\(one of '{zone}'\\)") as refused:
        parse_ics(calendar("SUMMARY:Castelet", f"DTSTART;TZID={zone}:20270312T150000"))
    assert "/" not in str(refused.value)  # no path of the server in the organiser's report


def test_a_tzid_that_is_a_zone_is_read():
    parsed = parse_ics(calendar("SUMMARY:Castelet", "DTSTART;TZID=Europe/Brussels:20270312T150000"))
    assert starts(parsed) == ["2027-03-12T15:00:00+01:00"]


def google_style(*lines: str) -> bytes:
    """X-WR-TIMEZONE makes x_wr_timezone rewrite the calendar, which loses icalendar's `errors`."""
    return calendar(*lines).replace(b"PRODID:", b"X-WR-TIMEZONE:Europe/Paris\r\nPRODID:")


@pytest.mark.parametrize("recurring", [False, True])
def test_an_unreadable_geo_is_dropped_even_after_x_wr_timezone(recurring):
    content = google_style("SUMMARY:Concert sur la plage", "DTSTART:20270701T193000Z",
                           "GEO:48.6553;-2.0110!", *(["RRULE:FREQ=WEEKLY;COUNT=2"] if recurring else []))
    parsed = parse_ics(content)
    assert len(starts(parsed)) == (2 if recurring else 1)
    assert [(p.field, "GEO cannot be read" in p.message) for p in parsed.problems] == [("geo", True)]
    assert not list(parsed.graph.objects(None, SCHEMA.latitude))


def test_an_unreadable_start_is_reported_even_after_x_wr_timezone():
    parsed = parse_ics(google_style("SUMMARY:Concert sur la plage", "DTSTART:2027-07-01 vers 21h",
                                    "RRULE:FREQ=WEEKLY;COUNT=2"))
    assert starts(parsed) == []
    assert [(p.field, "DTSTART cannot be read" in p.message) for p in parsed.problems] == [("startDate", True)]


def test_a_recurrence_rule_without_freq_leaves_the_event_out_and_says_why():
    """dateutil raised TypeError (rrule() missing 'freq') from inside the expansion."""
    parsed = parse_ics(calendar("SUMMARY:Castelet", "DTSTART:20270312T150000", "RRULE:FREQKLY;COUNT=6"))
    assert starts(parsed) == []
    assert [(p.field, "RRULE cannot be read: no FREQ" in p.message) for p in parsed.problems] \
        == [("eventSchedule", True)]


# --- JSON APIs: an object or a list where a code belongs -------------------------------------------


@pytest.mark.parametrize("name, fixture, items, codes", [
    ("openagenda", "openagenda/agenda-v3.json", "data", ("status", "attendanceMode")),
    ("uitdatabank", "uitdatabank/zoekresultaat.json", "member", ("attendanceMode",)),
])
@pytest.mark.parametrize("odd", [{"fr": "annulé"}, ["online"], 2.5])
def test_an_odd_value_where_a_code_belongs_is_ignored_not_raised(name, fixture, items, codes, odd):
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "fixtures" / fixture
    document = json.loads(path.read_text(encoding="utf-8"))
    context = ParseContext(source_id=name, now=NOW)
    expected = formats()[name].parse(path.read_bytes(), context)
    for code in codes:
        document[items][0][code] = odd  # was: TypeError: unhashable type
    parsed = formats()[name].parse(json.dumps(document).encode(), context)
    assert len(starts(parsed)) == len(starts(expected))


@pytest.mark.parametrize("end", ["99991231T230000", "40540404T220000"])
def test_a_series_ending_near_the_year_9999_is_reported_not_raised(end):
    """recurring_ical_events added the duration to each occurrence: OverflowError."""
    parsed = parse_ics(calendar("SUMMARY:Fin des temps", "DTSTART:20270312T150000", f"DTEND:{end}",
                                "RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270629T215959Z"))
    assert starts(parsed) == []
    assert [(p.field, "cannot be expanded: date value out of range" in p.message)
            for p in parsed.problems] == [("eventSchedule", True)]
