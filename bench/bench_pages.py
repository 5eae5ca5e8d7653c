"""Event pages per second, next to a static file of the same size served by the same server.

    .venv/bin/python bench/bench_pages.py [--events 100000] [--seconds 10] [--connections 8]
                                          [--rounds 2] [--latency-seconds 5] [--tool wrk|httpx]

Writes N synthetic events (40 source graphs, 500 venues, 300 organisers, 2,000 performers, an
offer each) as N-Quads straight into an embedded store, starts the app `affiche serve` runs (real
uvicorn, one process, on 127.0.0.1) with one extra static directory, and measures in the same run,
alternating, for `--seconds` each:

- `static`: GET of a static file holding the bytes of one event page (same size, same server,
  same middleware: ETag, gzip, HEAD);
- `event pages`: GET of `/event/{key}` for random keys (HTML with the embedded JSON-LD: one
  CONSTRUCT on the store, the view, the template).

Before measuring it waits for the agenda and the sitemap, which the server computes in the
background after start (`publisher.warmer`), and prints the server's resident memory. Then it
times, once cold and once warm, other pages computed from the whole store (a filtered agenda,
`/calendar.ics`, `/.well-known/void`).

The load generator is `wrk` with a Lua script when installed (`apt-get install wrk`), otherwise
Python (httpx, `--connections` concurrent clients). The figure that matters is the ratio
event pages / static; the aim is at least 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

BASE = "http://bench.affiche.test"
SOURCES, PLACES, ORGANISERS, PERFORMERS = 40, 500, 300, 2000
TOWNS = ["Lyon", "Liège", "Québec", "Nantes", "Namur", "Montréal", "Saint-Malo", "Gand"]
TYPES = ["TheaterEvent", "DanceEvent", "MusicEvent", "ComedyEvent", "Event"]
DISCIPLINES = ["theatre", "dance", "music", "comedy", "circus"]
S, XSD = "http://schema.org/", "http://www.w3.org/2001/XMLSchema#"
AFF, DISC = "https://affiche.example/ns#", "https://affiche.example/ns/discipline/"
PROV = "http://www.w3.org/ns/prov#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


# --- data --------------------------------------------------------------------------------------


def _quad(s: str, p: str, o: str, g: str) -> str:
    return f"<{s}> <{p}> {o} <{g}> .\n"


def _iri(value: str) -> str:
    return f"<{value}>"


def _text(value: str, lang: str | None = None, datatype: str | None = None) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    if lang:
        return f'"{escaped}"@{lang}'
    if datatype:
        return f'"{escaped}"^^<{datatype}>'
    return f'"{escaped}"'


def synthetic_nquads(events: int, seed: int = 5) -> bytes:
    """N events as N-Quads: venues, organisers and performers shared, each in its source's graph."""
    return b"".join(synthetic_chunks(events, seed))


def synthetic_chunks(events: int, seed: int = 5, chunk: int = 50_000):
    """The same N-Quads in parts of `chunk` events, so that a million events never sit in memory
    at once (as one text they took several GB)."""
    rng = random.Random(seed)
    lines: list[str] = []
    graph = lambda i: f"{BASE}/graph/source-{i % SOURCES:02d}"  # noqa: E731
    for i in range(SOURCES):  # as the pipeline writes them: the latest dct:modified dates the data
        source, g = f"{BASE}/source/source-{i:02d}", graph(i)
        lines += [_quad(source, RDF_TYPE, _iri(AFF + "Source"), g),
                  _quad(source, "http://purl.org/dc/terms/title", _text(f"Source {i}"), g),
                  _quad(source, "http://purl.org/dc/terms/modified",
                        _text("2026-11-20T08:00:00+00:00", datatype=XSD + "dateTime"), g)]
    for i in range(PLACES):
        place, address, g = f"{BASE}/place/salle-{i}", f"{BASE}/place/salle-{i}#address", graph(i)
        lines += [_quad(place, RDF_TYPE, _iri(S + "Place"), g),
                  _quad(place, S + "name", _text(f"Salle {i} des Arts", "fr"), g),
                  _quad(place, S + "address", _iri(address), g),
                  _quad(address, RDF_TYPE, _iri(S + "PostalAddress"), g),
                  _quad(address, S + "streetAddress", _text(f"{i} rue de la Scène"), g),
                  _quad(address, S + "postalCode", _text(f"{10000 + i}"), g),
                  _quad(address, S + "addressLocality", _text(TOWNS[i % len(TOWNS)]), g),
                  _quad(address, S + "addressCountry", _text("FR"), g)]
    for i in range(ORGANISERS):
        org, g = f"{BASE}/organization/compagnie-{i}", graph(i)
        lines += [_quad(org, RDF_TYPE, _iri(S + "Organization"), g),
                  _quad(org, S + "name", _text(f"Compagnie des Tréteaux {i}"), g),
                  _quad(org, S + "url", _iri(f"https://compagnie-{i}.example/"), g)]
    for i in range(PERFORMERS):
        person, g = f"{BASE}/person/artiste-{i}", graph(i)
        lines += [_quad(person, RDF_TYPE, _iri(S + "Person"), g),
                  _quad(person, S + "name", _text(f"Artiste {i}"), g)]
    for i in range(events):
        if i and i % chunk == 0:
            yield "".join(lines).encode("utf-8")
            lines = []
        event, offer, g = f"{BASE}/event/bench-{i}", f"{BASE}/event/bench-{i}#offer", graph(i)
        day = 1 + i % 28
        month = 1 + (i // 28) % 12
        start = f"2027-{month:02d}-{day:02d}T{18 + i % 4}:30:00+01:00"
        end = f"2027-{month:02d}-{day:02d}T{20 + i % 4}:30:00+01:00"
        lines += [
            _quad(event, RDF_TYPE, _iri(S + TYPES[i % len(TYPES)]), g),
            _quad(event, S + "name", _text(f"Spectacle numéro {i}", "fr"), g),
            _quad(event, S + "description", _text(
                "Une création pour la scène, avec musique live, décors mobiles et une troupe de "
                f"six interprètes ; représentation {i}.", "fr"), g),
            _quad(event, S + "startDate", _text(start, datatype=XSD + "dateTime"), g),
            _quad(event, S + "endDate", _text(end, datatype=XSD + "dateTime"), g),
            _quad(event, S + "location", _iri(f"{BASE}/place/salle-{rng.randrange(PLACES)}"), g),
            _quad(event, S + "organizer", _iri(f"{BASE}/organization/compagnie-{rng.randrange(ORGANISERS)}"), g),
            _quad(event, S + "performer", _iri(f"{BASE}/person/artiste-{rng.randrange(PERFORMERS)}"), g),
            _quad(event, S + "image", _iri(f"https://images.example/affiche-{i}.jpg"), g),
            _quad(event, S + "url", _iri(f"https://billetterie.example/spectacle/{i}"), g),
            _quad(event, S + "eventStatus", _iri(S + "EventScheduled"), g),
            _quad(event, S + "eventAttendanceMode", _iri(S + "OfflineEventAttendanceMode"), g),
            _quad(event, S + "offers", _iri(offer), g),
            _quad(offer, RDF_TYPE, _iri(S + "Offer"), g),
            _quad(offer, S + "price", _text(f"{10 + i % 30}.50", datatype=XSD + "decimal"), g),
            _quad(offer, S + "priceCurrency", _text("EUR"), g),
            _quad(offer, S + "url", _iri(f"https://billetterie.example/spectacle/{i}/billets"), g),
            _quad(event, AFF + "discipline", _iri(DISC + DISCIPLINES[i % len(DISCIPLINES)]), g),
            _quad(event, AFF + "harvestedAt", _text("2026-11-20T08:00:00+00:00", datatype=XSD + "dateTime"), g),
            _quad(event, PROV + "wasDerivedFrom", _iri(f"{BASE}/source/source-{i % SOURCES:02d}"), g),
        ]
    yield "".join(lines).encode("utf-8")


def build_store(data_dir: Path, events: int) -> float:
    """Bulk-load the synthetic events; returns the seconds it took."""
    import pyoxigraph as ox

    started = time.perf_counter()
    store = ox.Store(str(data_dir / "store"))
    for part in synthetic_chunks(events):
        store.bulk_load(part, format=ox.RdfFormat.N_QUADS)
    store.flush()
    del store
    return time.perf_counter() - started


# --- the server (a subprocess running this file with --serve) ------------------------------------


def serve(data_dir: Path, static_dir: Path, port: int) -> None:
    import uvicorn
    from fastapi.staticfiles import StaticFiles

    from publisher.app import create_app
    from publisher.settings import Settings
    from sparql.store import EmbeddedStore

    settings = Settings(base_url=BASE, data_dir=data_dir, sparql_max_concurrent=1)
    app = create_app(settings, store=EmbeddedStore(data_dir / "store"))
    app.mount("/bench-static", StaticFiles(directory=static_dir), name="bench-static")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def rss_mb(pid: int) -> float:
    """The server's resident memory (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


def stop_server(process: subprocess.Popen) -> None:
    """Ask the server to stop; kill it if it has not within 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


# --- load generators ---------------------------------------------------------------------------


WRK_SCRIPT = """
math.randomseed(5)
local events = {events}
local static = "{static}"
request = function()
  if static ~= "" then
    return wrk.format("GET", static, {{["Accept"] = "text/html"}})
  end
  return wrk.format("GET", "/event/bench-" .. math.random(0, events - 1), {{["Accept"] = "text/html"}})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(base: str, path: str | None, events: int, seconds: int, connections: int,
            work_dir: Path) -> dict:
    script = work_dir / ("static.lua" if path else "events.lua")
    script.write_text(WRK_SCRIPT.format(events=events, static=path or ""), encoding="utf-8")
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s",
                          "-s", str(script), base], capture_output=True, text=True, check=True)
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
    requests, duration_us, errors, p50, p99 = map(int, line.split()[1:])
    return {"rps": requests / (duration_us / 1e6), "requests": requests, "errors": errors,
            "p50_ms": p50 / 1000, "p99_ms": p99 / 1000}


def run_httpx(base: str, path: str | None, events: int, seconds: int, connections: int) -> dict:
    async def main() -> dict:
        rng = random.Random(5)
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30,
                                     headers={"Accept": "text/html"}) as client:
            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < deadline:
                    target = path or f"/event/bench-{rng.randrange(events)}"
                    began = time.perf_counter()
                    response = await client.get(target)
                    latencies.append(time.perf_counter() - began)
                    errors += response.status_code != 200
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        return {"rps": len(latencies) / elapsed, "requests": len(latencies), "errors": errors,
                "p50_ms": latencies[len(latencies) // 2] * 1000,
                "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000}

    return asyncio.run(main())


# --- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency-seconds", type=int, default=5,
                        help="then p50/p99 with 1 connection for this long (0: skip)")
    parser.add_argument("--tool", choices=("wrk", "httpx"),
                        default="wrk" if shutil.which("wrk") else "httpx")
    parser.add_argument("--serve", nargs=3, metavar=("DATA_DIR", "STATIC_DIR", "PORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), Path(args.serve[1]), int(args.serve[2]))
        return

    with tempfile.TemporaryDirectory(prefix="affiche-bench-pages-") as work:
        work_dir = Path(work)
        data_dir, static_dir = work_dir / "data", work_dir / "static"
        data_dir.mkdir()
        static_dir.mkdir()
        print(f"loading {args.events:,} synthetic events…", flush=True)
        load_s = build_store(data_dir, args.events)
        print(f"  bulk load: {load_s:.1f} s")

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env = {k: v for k, v in env.items() if not k.startswith("AFFICHE_")}
        process = subprocess.Popen([sys.executable, __file__, "--serve", str(data_dir),
                                    str(static_dir), str(port)], env=env)
        try:
            wait_for(base + "/robots.txt", process)
            began = time.perf_counter()
            for path in ("/", "/sitemap.xml"):  # computed after start by the warmer; wait for it
                httpx.get(base + path, headers={"Accept": "text/html"}, timeout=3600)
            print(f"  agenda and sitemap ready {time.perf_counter() - began:.1f} s after start "
                  f"(publisher.warmer); RSS {rss_mb(process.pid):.0f} MB", flush=True)
            page = httpx.get(f"{base}/event/bench-{args.events // 2}",
                             headers={"Accept": "text/html"}, timeout=30)
            page.raise_for_status()
            (static_dir / "event.html").write_bytes(page.content)
            static = "/bench-static/event.html"
            check = httpx.get(base + static, timeout=30)
            assert check.content == page.content
            print(f"event page: {len(page.content):,} bytes; static file: {len(check.content):,} "
                  f"bytes; tool: {args.tool}, {args.connections} connections, "
                  f"{args.seconds} s per measure, {args.rounds} rounds, server: 1 uvicorn process")

            results: dict[str, list[dict]] = {"static": [], "event pages": []}
            for _ in range(args.rounds):
                for name, path in (("static", static), ("event pages", None)):
                    if args.tool == "wrk":
                        result = run_wrk(base, path, args.events, args.seconds, args.connections,
                                         work_dir)
                    else:
                        result = run_httpx(base, path, args.events, args.seconds, args.connections)
                    results[name].append(result)
                    print(f"  {name:12s} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.1f} ms"
                          f"  p99 {result['p99_ms']:6.1f} ms  errors {result['errors']}", flush=True)
            if args.latency_seconds:
                print(f"latency with 1 connection ({args.latency_seconds} s each):")
                for name, path in (("static", static), ("event pages", None)):
                    if args.tool == "wrk":
                        result = run_wrk(base, path, args.events, args.latency_seconds, 1, work_dir)
                    else:
                        result = run_httpx(base, path, args.events, args.latency_seconds, 1)
                    print(f"  {name:12s} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.1f} ms"
                          f"  p99 {result['p99_ms']:6.1f} ms  errors {result['errors']}", flush=True)
            print(f"  server RSS after the event pages: {rss_mb(process.pid):.0f} MB")
            print("\nwhole-store pages (the first two warmed in the background after start; a new "
                  "filter computes, the next ones reuse it until the next harvest):")
            for path in ("/", "/", "/?city=Lyon&discipline=music", "/?city=Lyon&discipline=music",
                         "/calendar.ics", "/sitemap.xml", "/sitemap.xml", "/.well-known/void"):
                began = time.perf_counter()
                answer = httpx.get(base + path, headers={"Accept": "text/html"}, timeout=600)
                print(f"  {path:32s} {answer.status_code} {len(answer.content):>10,} bytes "
                      f"{(time.perf_counter() - began) * 1000:9.0f} ms", flush=True)
        finally:
            stop_server(process)

    static_rps = max(r["rps"] for r in results["static"])
    pages_rps = max(r["rps"] for r in results["event pages"])
    ratio = pages_rps / static_rps
    print(f"\nbest of {args.rounds}: static {static_rps:.0f} req/s, event pages {pages_rps:.0f} "
          f"req/s over {args.events:,} events")
    print(f"ratio event pages / static: {ratio:.2f} (aim: >= 0.50) -> "
          f"{'OK' if ratio >= 0.5 else 'BELOW AIM'}")


if __name__ == "__main__":
    main()
