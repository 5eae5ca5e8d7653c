"""The `affiche` command: demo, serve, harvest, check, convert, dump.

Exit codes: 0 success; 1 some events have Violations (check) or some sources failed (harvest);
2 the input or the configuration cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

from harvester.changes import ChangeLog
from harvester.fetch import FetchError, FetchPolicy
from harvester.formats import ParseError, formats
from harvester.incremental import FeedHistory
from harvester.pipeline import Checked, HarvestTask, Report, check, harvest_all
from harvester.sources import Source, SourceConfigError, load_sources
from shapes import LANGUAGES, SEVERITY_ORDER
from sparql.store import StoreError, open_store

from . import base_url
from .accounts import registered_sources, withdrawals, withheld_events
from .base_url import ensure_base_url
from .cli_organisers import add_account_commands, cmd_harvest_due
from .dumps import NQUADS, graph_files, write_dumps
from .settings import Settings, load_settings

RDF_OUTPUTS = {"ttl": "turtle", "nt": "nt", "jsonld": "json-ld", "nq": "nquads"}


def demo_config() -> Path:
    return Path(str(resources.files("publisher").joinpath("demo", "sources.toml")))


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(max_bytes=settings.fetch_max_bytes, timeout_s=settings.fetch_timeout_s,
                       allow_hosts=frozenset(settings.fetch_allow_hosts),
                       crawl_delay_s=settings.crawl_delay_s, crawl_max_pages=settings.crawl_max_pages,
                       max_triples=settings.harvest_max_triples, max_events=settings.harvest_max_events,
                       recurrence_days=settings.harvest_recurrence_days,
                       max_loss=settings.harvest_max_loss)


# --- harvest --------------------------------------------------------------------------------


def progress(done: int, total: int, label: str, stream=sys.stderr) -> None:
    width = 24
    filled = width * done // max(total, 1)
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<40}")
    if done == total:
        stream.write("\n")
    stream.flush()


def print_summary(reports: list[Report], stream=sys.stdout) -> None:
    stream.write(f"{'source':<24} {'found':>6} {'published':>10} {'quarantined':>12}  status\n")
    for report in reports:
        s = report.summary
        status = f"ERROR: {report.error}" if report.error else "unchanged" if report.unchanged else "ok"
        if report.held_back:
            status += f" (to publish it anyway: affiche harvest {report.source_id} --accept-loss)"
        stream.write(f"{report.source_id:<24} {s['found']:>6} {s['published']:>10} "
                     f"{s['quarantined']:>12}  {status}\n")


def change_log(settings: Settings) -> ChangeLog:
    """The log behind /feed: every event created, updated or removed by a harvest."""
    return ChangeLog(settings.data_dir, page_size=settings.feed_page_size)


def harvest_sources(settings: Settings, sources: list[Source], show_progress: bool = True,
                    accept_loss: bool = False) -> list[Report]:
    """Harvest into the configured store, then refresh the dumps if anything changed. Sources
    their organiser withdrew are skipped; `accept_loss` publishes what the loss guards hold back."""
    withdrawn = withdrawals(settings.data_dir)
    for source in sources:
        if source.id in withdrawn:
            sys.stderr.write(f"{source.id}: withdrawn by its organiser on {withdrawn[source.id]}; "
                             "not harvested\n")
    sources = [s for s in sources if s.id not in withdrawn]
    store = open_store(settings.store, settings.data_dir, **settings.store_options())
    changes = change_log(settings)
    try:
        ensure_base_url(settings.data_dir, store, settings.base_url)
        before = changes.position()
        tasks = [HarvestTask(source, FeedHistory(settings.harvest_dir, source.id,
                                                 settings.harvest_archive_keep),
                             withheld_events(settings.data_dir, source.id)) for source in sources]
        done = 0

        def on_done(report: Report) -> None:
            nonlocal done
            done += 1
            if show_progress:
                progress(done, len(sources), report.source_id)

        if show_progress:
            progress(0, len(sources), "")
        reports = harvest_all(tasks, store, settings.base_url, settings.reports_dir,
                              fetch_policy(settings), changes, settings.harvest_workers,
                              accept_loss, on_done, graph_files=graph_files(settings.dumps_dir),
                              summaries_only=True)
        store.flush()
        if changes.position() != before or not (settings.dumps_dir / NQUADS).exists():
            write_dumps(store, settings.dumps_dir, changes=changes, snapshots=settings.dump_snapshots)
        return reports
    finally:
        store.close()


def select_sources(config: Path | None, wanted: list[str],
                   registered: list[Source] = ()) -> list[Source]:
    """The TOML file's sources and those organisers registered through /api/ (all, or `wanted`)."""
    sources = (load_sources(config) if config is not None else []) + list(registered)
    if not wanted:
        return sources
    known = {s.id: s for s in sources}
    missing = [w for w in wanted if w not in known]
    if missing:
        raise SourceConfigError(f"{config or 'registry'}: no source with id {', '.join(missing)}")
    return [known[w] for w in wanted]


def cmd_harvest(args, settings: Settings) -> int:
    if args.accept_loss and (args.due or not args.source_ids):
        raise SourceConfigError("--accept-loss publishes a held-back harvest: name its sources "
                                "(affiche harvest SOURCE_ID --accept-loss), without --due")
    if args.due:
        return cmd_harvest_due(settings)
    config = args.config or settings.config
    registered = registered_sources(settings.data_dir)
    if config is None and not registered:
        raise SourceConfigError("no sources: give --config FILE, set AFFICHE_CONFIG, or register "
                                "sources through the organiser API")
    reports = harvest_sources(settings, select_sources(Path(config) if config else None,
                                                       args.source_ids, registered),
                              accept_loss=args.accept_loss)
    print_summary(reports)
    return 1 if any(r.error for r in reports) else 0


# --- check / convert ------------------------------------------------------------------------


def _adhoc_source(args) -> Source:
    return Source(id="check", name="check", path=Path(args.input) if "://" not in args.input else None,
                  url=args.input if "://" in args.input else None, format=args.format,
                  language=args.language, timezone=args.timezone)


def _check(args, settings: Settings) -> Checked:
    source = _adhoc_source(args)
    return check(args.input, source, settings.base_url, args.format, fetch_policy(settings))


def print_report(report: Report, language: str, stream=sys.stdout) -> None:
    s = report.summary
    stream.write(f"{report.location} ({report.format}): {s['found']} events, {s['published']} "
                 f"publishable, {s['quarantined']} quarantined, {s['warnings']} warnings")
    stream.write(f", score {report.score}/100\n" if report.score is not None else "\n")
    for problem in report.feed_problems:
        field = f" [{problem.field}]" if problem.field else ""
        stream.write(f"  ! {problem.where}{field}: {problem.message}\n")
    for event in report.events:
        mark = "OK " if event.status == "published" else "BAD"
        stream.write(f"\n{mark} {event.name or '(no name)'} — {event.origin} — {event.score}/100\n"
                     f"    {event.iri}\n")
        for problem in sorted(event.problems, key=lambda p: ("violation", "warning", "info").index(p.severity)):
            stream.write(f"    {problem.severity.upper():<9} {problem.field}: {problem.message(language)}\n")


def cmd_check(args, settings: Settings) -> int:
    checked = _check(args, settings)
    if args.json:
        json.dump(checked.report.to_json(args.language), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        print_report(checked.report, args.language)
    return 1 if fails(checked.report, args.fail_on) else 0


def fails(report: Report, fail_on: str) -> bool:
    """True when some event has a problem at least as grave as `fail_on` (for organisers' CI)."""
    graver = SEVERITY_ORDER[: SEVERITY_ORDER.index(fail_on) + 1]
    return any(p.severity in graver for event in report.events for p in event.problems)


def cmd_convert(args, settings: Settings) -> int:
    checked = _check(args, settings)
    graph = checked.published
    if args.to == "nq":
        from rdflib import Dataset, URIRef

        dataset = Dataset()
        target = dataset.graph(URIRef(f"{settings.base_url}/graph/check"))
        for triple in graph:
            target.add(triple)
        sys.stdout.write(dataset.serialize(format="nquads"))
    else:
        sys.stdout.write(graph.serialize(format=RDF_OUTPUTS[args.to]))
    quarantined = checked.report.summary["quarantined"]
    if quarantined:
        sys.stderr.write(f"{quarantined} event(s) left out: run `affiche check` to see why\n")
    return 0


# --- serve / demo / dump --------------------------------------------------------------------


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from .app import create_app
    from .memory import bound_the_allocator

    bound_the_allocator()  # before the server's threads start: see publisher/memory.py
    print(f"Affiche is serving {settings.base_url}/ (listening on http://{host}:{port}/)", flush=True)
    # proxy_headers off: uvicorn would believe X-Forwarded-For from 127.0.0.1 by default; which
    # proxies are believed is AFFICHE_TRUSTED_PROXIES' to say (sparql.throttle.ClientAddresses).
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning",
                proxy_headers=False)


def cmd_serve(args, settings: Settings) -> int:
    check_base_url(settings)
    serve(settings, args.host, args.port)
    return 0


def check_base_url(settings: Settings, clear: bool = False) -> None:
    """Refuse (or, with `clear`, drop) data minted under another base URL; record the base."""
    store = open_store(settings.store, settings.data_dir, **settings.store_options())
    try:
        published = base_url.mismatch(settings.data_dir, store, settings.base_url)
        if published is not None and clear:
            dropped = base_url.clear_published(settings.data_dir, store)
            sys.stderr.write(f"{settings.data_dir} held data published under {published}: "
                             f"{dropped} graph(s) dropped, harvesting again under "
                             f"{settings.base_url}\n")
        ensure_base_url(settings.data_dir, store, settings.base_url)
    finally:
        store.close()


def cmd_clear(args, settings: Settings) -> int:
    if not args.yes:
        sys.stderr.write(f"affiche clear drops every published graph in {settings.data_dir}, its "
                         "change log, dumps and reports; run it again with --yes to do so\n")
        return 2
    store = open_store(settings.store, settings.data_dir, **settings.store_options())
    try:
        dropped = base_url.clear_published(settings.data_dir, store)
    finally:
        store.close()
    print(f"{dropped} graph(s) dropped from {settings.data_dir}; the next harvest publishes under "
          f"{settings.base_url}")
    return 0


def cmd_demo(args, settings: Settings) -> int:
    if "base_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"base_url": f"http://{args.host}:{args.port}"})
    check_base_url(settings, clear=True)
    reports = harvest_sources(settings, load_sources(demo_config()))
    print_summary(reports)
    serve(settings, args.host, args.port)
    return 0


def cmd_dump(args, settings: Settings) -> int:
    out = Path(args.out) if args.out else settings.dumps_dir
    store = open_store(settings.store, settings.data_dir, **settings.store_options())
    try:
        for dump in write_dumps(store, out, changes=change_log(settings),
                                snapshots=settings.dump_snapshots):
            print(f"{out / dump.name}  {dump.size} bytes  sha256 {dump.sha256}")
    finally:
        store.close()
    return 0


# --- wiring ---------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="affiche", description="Cultural event listings as linked open data.")
    commands = root.add_subparsers(dest="command", required=True)

    def host_port(p):
        p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")

    demo = commands.add_parser("demo", help="harvest the bundled example feeds and serve the site")
    host_port(demo)
    demo.set_defaults(handler=cmd_demo)

    serve_cmd = commands.add_parser("serve", help="serve the site, SPARQL endpoint and dumps")
    host_port(serve_cmd)
    serve_cmd.set_defaults(handler=cmd_serve)

    harvest_cmd = commands.add_parser("harvest", help="harvest the sources of a TOML file")
    harvest_cmd.add_argument("--config", help="TOML file with [[source]] tables (default AFFICHE_CONFIG)")
    harvest_cmd.add_argument("source_ids", nargs="*", metavar="SOURCE_ID", help="only these sources")
    harvest_cmd.add_argument("--due", action="store_true",
                             help="only the registered sources whose schedule says they are due "
                                  "(for cron), as jobs")
    harvest_cmd.add_argument("--accept-loss", action="store_true",
                             help="publish the named sources' feeds even if they lost more events "
                                  "than AFFICHE_HARVEST_MAX_LOSS or have none (confirms a held-back "
                                  "harvest)")
    harvest_cmd.set_defaults(handler=cmd_harvest)

    format_names = sorted(formats())
    for name, handler, help_text in (
        ("check", cmd_check, "parse, normalise and validate a file or URL; store nothing"),
        ("convert", cmd_convert, "print the normalised RDF of the valid events"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("input", help="a file path or an http(s) URL")
        sub.add_argument("--format", choices=format_names, help="feed format (default: detected)")
        sub.add_argument("--language", default="fr", choices=LANGUAGES,
                         help="language of untagged text, and of the report (default fr)")
        sub.add_argument("--timezone", default="Europe/Paris",
                         help="IANA zone for times without offset (default Europe/Paris)")
        if name == "check":
            sub.add_argument("--json", action="store_true", help="print the report as JSON")
            sub.add_argument("--fail-on", choices=SEVERITY_ORDER[:2], default="violation",
                             help="exit 1 when an event has a problem this grave or graver "
                                  "(default violation; warning for a strict CI)")
        else:
            sub.add_argument("--to", choices=sorted(RDF_OUTPUTS), default="ttl",
                             help="output syntax (default ttl)")
        sub.set_defaults(handler=handler)

    clear = commands.add_parser("clear", help="drop the published data (to harvest again, "
                                              "for example under a new base URL)")
    clear.add_argument("--yes", action="store_true", help="really drop it")
    clear.set_defaults(handler=cmd_clear)

    dump = commands.add_parser("dump", help="write the bulk dumps")
    dump.add_argument("--out", help="directory (default: DATA_DIR/dumps)")
    dump.set_defaults(handler=cmd_dump)
    add_account_commands(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
        return args.handler(args, settings)
    except (SourceConfigError, FetchError, ParseError, StoreError, ValueError) as exc:
        sys.stderr.write(f"affiche {args.command}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
