"""What the organiser features cost the public pages and the API.

    .venv/bin/python bench/bench_organisers.py [--requests 2000] [--rounds 5]

Harvests the demo feeds into an embedded store, then, in process (httpx over ASGI, no network),
alternating in each round:

- event pages with the usage counter (the app as `affiche serve` builds it) and without it
  (the same app with `UsageMiddleware` taken out): the ratio is the counter's cost per page;
- `GET /api/me` with a valid organiser token (SQLite look-up, SHA-256, constant-time compare)
  next to `GET /robots.txt` (a tiny page of the same app): the ratio is what authenticating costs;
- `/sparql` (a SELECT naming every event) with SPARQL inclusions measured on every answer
  (`AFFICHE_USAGE_SPARQL_SAMPLE=1`, the worst case), on one answer in ten (the default) and not at
  all (0): the ratios are what measuring inclusions costs a query.

Then, alone, the time to find the sources named in a 10,000-row SPARQL JSON answer (the row cap),
next to the time to parse that answer as JSON.

Prints requests per second for each, and the ratios (medians over the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from harvester.pipeline import harvest  # noqa: E402
from harvester.sources import load_sources  # noqa: E402
from publisher.accounts import Accounts  # noqa: E402
from publisher.app import create_app  # noqa: E402
from publisher.cli import demo_config  # noqa: E402
from publisher.settings import Settings  # noqa: E402
from publisher.usage import UsageMiddleware, sources_named  # noqa: E402
from sparql.store import EmbeddedStore  # noqa: E402

BASE = "http://affiche.bench"


async def rate(app, paths: list[str], count: int, headers: dict | None = None) -> float:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        await http.get(paths[0], headers=headers)  # warm
        started = time.perf_counter()
        for index in range(count):
            answer = await http.get(paths[index % len(paths)], headers=headers)
            assert answer.status_code == 200, answer.status_code
        return count / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="affiche-bench-"))
    settings = Settings(base_url=BASE, data_dir=data_dir, scheduler_poll_s=0, sparql_rate_per_minute=0)
    store = EmbeddedStore(data_dir / "store")
    reports = [harvest(s, store, BASE, settings.reports_dir) for s in load_sources(demo_config())]
    paths = ["/event/" + e.iri.rsplit("/", 1)[-1] for r in reports for e in r.events
             if e.status == "published"]
    counted = create_app(settings, store=store)
    plain = create_app(settings, store=store)
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not UsageMiddleware]
    accounts = Accounts(data_dir)
    accounts.add_organiser("rideau-rouge", "Théâtre du Rideau Rouge")
    token = accounts.issue_token("rideau-rouge").token
    auth = {"Authorization": f"Bearer {token}"}

    sampled = {n: create_app(settings.model_copy(update={"usage_sparql_sample": n}), store=store)
               for n in (0, 1, 10)}
    query = ["/sparql?query=SELECT%20%3Fe%20WHERE%20%7B%20%3Fe%20%3Chttp%3A%2F%2Fschema.org%2F"
             "startDate%3E%20%3Fd%20%7D"]
    results = {"Accept": "application/sparql-results+json"}

    figures: dict[str, list[float]] = {k: [] for k in ("counted", "plain", "api_me", "robots",
                                                       "sparql_0", "sparql_1", "sparql_10")}
    order = list(sampled.items())
    for round_ in range(args.rounds):
        figures["plain"].append(await rate(plain, paths, args.requests))
        figures["counted"].append(await rate(counted, paths, args.requests))
        figures["robots"].append(await rate(counted, ["/robots.txt"], args.requests))
        figures["api_me"].append(await rate(counted, ["/api/me"], args.requests, auth))
        for n, app in order[round_ % 3:] + order[:round_ % 3]:  # each first in turn
            figures[f"sparql_{n}"].append(await rate(app, query, args.requests, results))
    median = {k: statistics.median(v) for k, v in figures.items()}
    print(f"{len(paths)} event pages, {args.requests} requests x {args.rounds} rounds, in process")
    for name, label in (("plain", "event pages, no usage counter"),
                        ("counted", "event pages, usage counter"),
                        ("robots", "/robots.txt"), ("api_me", "/api/me with a token")):
        print(f"  {label:<34} {median[name]:8.0f} req/s")
    print(f"  usage counter: {median['counted'] / median['plain']:.3f} x the pages without it")
    print(f"  token check:   {median['api_me'] / median['robots']:.3f} x a tiny public page")
    print(f"  /sparql, inclusions not measured     {median['sparql_0']:8.0f} req/s")
    print(f"  /sparql, one answer in 10 (default)  {median['sparql_10']:8.0f} req/s  "
          f"{median['sparql_10'] / median['sparql_0']:.3f} x not measured")
    print(f"  /sparql, every answer                {median['sparql_1']:8.0f} req/s  "
          f"{median['sparql_1'] / median['sparql_0']:.3f} x not measured")
    answer = json.dumps({"head": {"vars": ["e"]}, "results": {"bindings": [
        {"e": {"type": "uri", "value": f"{BASE}/event/source-{n % 40:02d}-{n:012x}"}}
        for n in range(10_000)]}}).encode()
    scan, parse = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        named = sources_named(answer, BASE)
        scan.append(time.perf_counter() - started)
        started = time.perf_counter()
        json.loads(answer)
        parse.append(time.perf_counter() - started)
    assert len(named) == 40
    scan_s, parse_s = statistics.median(scan), statistics.median(parse)
    print(f"  a 10,000-row answer ({len(answer) / 1e6:.1f} MB): sources found in "
          f"{scan_s * 1000:.1f} ms, {scan_s / parse_s:.2f} x parsing it as JSON")
    for app in sampled.values():
        app.state.usage.flush()
    counted.state.usage.flush()
    store.close()


if __name__ == "__main__":
    asyncio.run(main())
