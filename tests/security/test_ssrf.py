"""SSRF: harvest URLs that resolve or redirect to non-public addresses are refused.

DNS is stubbed by replacing `socket.getaddrinfo` (the resolver hook the fetcher goes through), so
hostile names can be tested without any network; redirects come from a real server on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harvester.fetch import FetchError, FetchPolicy, check_address, fetch

HOSTILE_ADDRESSES = [
    "127.0.0.1", "127.1.2.3", "10.0.0.8", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
    "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
]


def stub_dns(monkeypatch, address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def resolve(host, port, *args, **kwargs):
        return [(family, socket.SOCK_STREAM, 6, "", (address, port or 80))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.mark.parametrize("address", HOSTILE_ADDRESSES)
def test_names_resolving_to_non_public_addresses_are_refused(monkeypatch, address):
    stub_dns(monkeypatch, address)
    with pytest.raises(FetchError, match="non-public address"):
        check_address("https://feeds.organiser.example/agenda.ics", FetchPolicy())


@pytest.mark.parametrize("url", [
    "http://2130706433/",        # 127.0.0.1 in decimal
    "http://0x7f000001/",        # in hex
    "http://0177.0.0.1/",        # in octal
    "http://127.1/",             # shortened
    "http://[::1]/",
    "http://[::ffff:7f00:1]/",
    "http://localhost/",
])
def test_ip_spellings_of_loopback_are_refused(url):
    with pytest.raises(FetchError):
        check_address(url, FetchPolicy())


def test_a_public_address_passes(monkeypatch):
    stub_dns(monkeypatch, "93.184.215.14")
    check_address("https://feeds.organiser.example/agenda.ics", FetchPolicy())


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "ftp://x/", "javascript:alert(1)"])
def test_other_schemes_are_refused(url):
    with pytest.raises(FetchError):
        check_address(url, FetchPolicy())


class Redirector(BaseHTTPRequestHandler):
    target = "http://169.254.169.254/latest/meta-data/"

    def do_GET(self):  # noqa: N802
        self.send_response(302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/", "http://10.1.2.3/",
])
def test_redirects_to_private_addresses_are_refused(target):
    Redirector.target = target
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # the operator allow-lists the (local) feed host, not where it redirects to
        policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}))
        with pytest.raises(FetchError, match="non-public address"):
            fetch(f"http://127.0.0.1:{server.server_address[1]}/feed", policy)
    finally:
        server.shutdown()
