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
from harvester.pipeline import Checked, Report, check, harvest
from harvester.sources import Source, SourceConfigError, load_sources
from shapes import LANGUAGES, SEVERITY_ORDER
from sparql.store import StoreError, open_store

from .accounts import registered_sources, withheld_events
from .cli_organisers import add_account_commands, cmd_harvest_due
from .dumps import NQUADS, write_dumps
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
        stream.write(f"{report.source_id:<24} {s['found']:>6} {s['published']:>10} "
                     f"{s['quarantined']:>12}  {status}\n")


def change_log(settings: Settings) -> ChangeLog:
    """The log behind /feed: every event created, updated or removed by a harvest."""
    return ChangeLog(settings.data_dir, page_size=settings.feed_page_size)


def harvest_sources(settings: Settings, sources: list[Source], show_progress: bool = True) -> list[Report]:
    """Harvest into the configured store, then refresh the dumps if anything changed."""
    store = open_store(settings.store, settings.data_dir, **settings.store_options())
    changes = change_log(settings)
    try:
        before = changes.position()
        reports = []
        for index, source in enumerate(sources):
            if show_progress:
                progress(index, len(sources), source.id)
            history = FeedHistory(settings.harvest_dir, source.id, settings.harvest_archive_keep)
            reports.append(harvest(source, store, settings.base_url, settings.reports_dir,
                                   fetch_policy(settings), changes=changes, history=history,
                                   withheld=withheld_events(settings.data_dir, source.id)))
        if show_progress:
            progress(len(sources), len(sources), "done")
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
    if args.due:
        return cmd_harvest_due(settings)
    config = args.config or settings.config
    registered = registered_sources(settings.data_dir)
    if config is None and not registered:
        raise SourceConfigError("no sources: give --config FILE, set AFFICHE_CONFIG, or register "
                                "sources through the organiser API")
    reports = harvest_sources(settings, select_sources(Path(config) if config else None,
                                                       args.source_ids, registered))
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

    print(f"Affiche is serving {settings.base_url}/ (listening on http://{host}:{port}/)", flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def cmd_serve(args, settings: Settings) -> int:
    serve(settings, args.host, args.port)
    return 0


def cmd_demo(args, settings: Settings) -> int:
    if "base_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"base_url": f"http://{args.host}:{args.port}"})
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
