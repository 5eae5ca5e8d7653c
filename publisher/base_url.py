"""The base URL a data directory's IRIs were minted under, recorded at its first harvest.

Every IRI Affiche mints starts with `AFFICHE_BASE_URL`; serving a data directory harvested under
another base would publish pages whose links and JSON-LD point to the old host. The base is
written to `DATA_DIR/base-url.txt` at the first harvest; a directory harvested before that file
existed is judged by its named graphs (`{base}/graph/{source}`). `affiche serve` refuses a
mismatch; `affiche demo` clears the directory's published data and harvests again;
`affiche clear` does the same for an operator who wants a fresh start under the new base.
"""

from __future__ import annotations

import shutil
from pathlib import Path

FILE_NAME = "base-url.txt"
GRAPH_PATH = "/graph/"
# What was minted under the old base, besides the store's graphs: the change log behind /feed,
# the feeds' hashes (an unchanged feed would otherwise not be harvested again), reports, dumps.
MINTED = ("changes.sqlite", "harvest", "reports", "dumps", "sparql-snapshots")


class BaseUrlMismatch(ValueError):
    """The data directory holds IRIs minted under another base URL."""


def recorded_base_url(data_dir: Path) -> str | None:
    path = Path(data_dir) / FILE_NAME
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def record_base_url(data_dir: Path, base_url: str) -> None:
    """Write the base URL the directory's data is minted under."""
    path = Path(data_dir) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(base_url + "\n", encoding="utf-8")


def published_base_url(data_dir: Path, store) -> str | None:
    """The base the directory's data was minted under: the record, else its graphs' names."""
    recorded = recorded_base_url(data_dir)
    if recorded is not None:
        return recorded
    for graph in store.graphs():
        if GRAPH_PATH in graph:
            return graph[: graph.index(GRAPH_PATH)]
    return None


def mismatch(data_dir: Path, store, base_url: str) -> str | None:
    """The base the data was minted under when it is not `base_url`, else None."""
    published = published_base_url(data_dir, store)
    return published if published is not None and published != base_url else None


def refusal(data_dir: Path, published: str, base_url: str) -> str:
    return (f"the data in {data_dir} was published under {published}, but the base URL is now "
            f"{base_url}: its pages would link to the old host. Set AFFICHE_BASE_URL={published} "
            f"to serve it as it is, or run `affiche clear` to drop it and harvest again under "
            f"{base_url}")


def clear_published(data_dir: Path, store) -> int:
    """Drop every graph and what was minted with them; the next harvest starts afresh. Organisers,
    tokens, registered sources, jobs and usage figures stay. Returns how many graphs went."""
    graphs = store.graphs()
    for graph in graphs:
        store.drop_graph(graph)
    store.flush()
    for name in MINTED:
        path = Path(data_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
            if leftover.is_file():
                leftover.unlink()
    (Path(data_dir) / FILE_NAME).unlink(missing_ok=True)
    return len(graphs)


def ensure_base_url(data_dir: Path, store, base_url: str) -> None:
    """Refuse data minted under another base; record the base when nothing is recorded yet."""
    published = mismatch(data_dir, store, base_url)
    if published is not None:
        raise BaseUrlMismatch(refusal(data_dir, published, base_url))
    if recorded_base_url(data_dir) is None:
        record_base_url(data_dir, base_url)
