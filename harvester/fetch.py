"""Fetch a feed's raw bytes: a local file, or an HTTP(S) URL through a guarded client.

The guard: only http/https; no private, loopback, link-local, multicast or reserved address (checked
after DNS resolution and again on every redirect) unless the operator allow-lists it; a cap on bytes,
time and redirects; an honest User-Agent.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

USER_AGENT = "Affiche/0.1 (+https://affiche.example/bot; cultural events linked data harvester)"


class FetchError(Exception):
    """The feed could not be read; the message says where and why (and the HTTP status, if any)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = 20 * 1024 * 1024
    timeout_s: float = 30.0
    max_redirects: int = 5
    allow_hosts: frozenset[str] = field(default_factory=frozenset)
    crawl_delay_s: float = 1.0  # between two requests to one host while crawling a site
    crawl_max_pages: int = 500  # pages fetched per crawled site
    max_triples: int = 2_000_000  # what one feed may bring once parsed (checked by the pipeline)
    max_events: int = 50_000
    recurrence_days: int = 548  # how far ahead recurring events are expanded (iCalendar RRULE…)
    max_loss: float = 0.5  # share of published events a harvest may lose before it is held back


@dataclass(frozen=True)
class Fetched:
    content: bytes
    location: str  # the final URL, or the file path
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # a conditional GET answered 304: `content` is empty

    @property
    def media_type(self) -> str | None:
        if not self.content_type:
            return None
        return self.content_type.split(";")[0].strip().lower()


def fetch(location: str | Path, policy: FetchPolicy = FetchPolicy(),
          validators: dict[str, str] | None = None) -> Fetched:
    """Read a URL or a local path and return its bytes.

    `validators` (`If-None-Match`, `If-Modified-Since`) make the request conditional: an unchanged
    feed answers 304 and comes back as `Fetched(not_modified=True)` without content.
    """
    text = str(location)
    if text.startswith(("http://", "https://")):
        return fetch_url(text, policy, validators)
    return read_file(Path(text), policy)


def read_file(path: Path, policy: FetchPolicy) -> Fetched:
    try:
        size = path.stat().st_size
        if size > policy.max_bytes:
            raise FetchError(f"{path}: {size} bytes, over the limit of {policy.max_bytes}")
        return Fetched(content=path.read_bytes(), location=str(path))
    except IsADirectoryError as exc:
        raise FetchError(f"{path}: is a directory, not a feed file") from exc
    except FileNotFoundError as exc:
        raise FetchError(f"{path}: no such file") from exc
    except OSError as exc:
        raise FetchError(f"{path}: cannot read ({exc.strerror})") from exc


def check_address(url: str, policy: FetchPolicy) -> None:
    """Refuse URLs whose host resolves to an address that is not public."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port  # both raise on a malformed host or port
    except ValueError as exc:
        raise FetchError(f"{url}: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"{url}: only http and https URLs are harvested")
    if not host:
        raise FetchError(f"{url}: the URL has no host")
    if host in policy.allow_hosts:
        return
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchError(f"{url}: cannot resolve host {host!r}") from exc
    for info in infos:
        address = _embedded_ipv4(ipaddress.ip_address(info[4][0].split("%")[0]))
        if not address.is_global or address.is_multicast:
            raise FetchError(
                f"{url}: host {host!r} resolves to {address}, a non-public address; "
                "Affiche does not harvest private networks unless the operator allow-lists the host"
            )


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """The IPv4 address an IPv6 one reaches (mapped, NAT64, 6to4, Teredo), else the address."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    return address


def fetch_url(url: str, policy: FetchPolicy, validators: dict[str, str] | None = None) -> Fetched:
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **(validators or {})}
    with httpx.Client(timeout=policy.timeout_s, follow_redirects=False, headers=headers) as client:
        for _ in range(policy.max_redirects + 1):
            check_address(url, policy)
            try:
                with client.stream("GET", url) as response:
                    if response.has_redirect_location:  # not 304, nor a 3xx without Location
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code == 304 and validators:
                        return Fetched(content=b"", location=str(response.url), not_modified=True,
                                       etag=response.headers.get("etag"),
                                       last_modified=response.headers.get("last-modified"))
                    if response.status_code != 200:
                        raise FetchError(f"{url}: the server answered HTTP {response.status_code}",
                                         status=response.status_code)
                    content = _read_capped(response, url, policy.max_bytes)
                    return Fetched(
                        content=content,
                        location=str(response.url),
                        content_type=response.headers.get("content-type"),
                        etag=response.headers.get("etag"),
                        last_modified=response.headers.get("last-modified"),
                    )
            except httpx.TimeoutException as exc:
                raise FetchError(f"{url}: no complete answer within {policy.timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"{url}: {exc}") from exc
            except (httpx.InvalidURL, ValueError) as exc:  # a malformed URL, or redirect Location
                raise FetchError(f"{url}: not a valid URL ({exc})") from exc
    raise FetchError(f"{url}: more than {policy.max_redirects} redirects")


def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url}: {declared} bytes announced, over the limit of {max_bytes}")
    chunks, total = [], 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise FetchError(f"{url}: more than {max_bytes} bytes, over the limit")
        chunks.append(chunk)
    return b"".join(chunks)
