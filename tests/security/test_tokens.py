"""Organiser tokens: checked in constant time, never written to logs, the store or answers.

Skipped where the organiser API (publisher/accounts.py) is not part of the build.
"""

from __future__ import annotations

import ast
import inspect
import logging
import sqlite3
import textwrap

import httpx
import pytest

accounts_module = pytest.importorskip("publisher.accounts")

from harvester.pipeline import harvest  # noqa: E402
from publisher.app import create_app  # noqa: E402
from publisher.settings import Settings  # noqa: E402
from sparql.store import EmbeddedStore  # noqa: E402

pytestmark = pytest.mark.anyio
BASE = "http://affiche.test"


def comparisons(function) -> tuple[int, list[str]]:
    """(calls to hmac.compare_digest, `==`/`!=` comparisons naming a secret or digest) in a function."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    digests, plain = 0, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in {"hmac.compare_digest", "compare_digest"}:
            digests += 1
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            text = ast.unparse(node)
            if any(word in text for word in ("secret", "digest", "stored", "token", "sha256")):
                plain.append(text)
    return digests, plain


def test_token_checks_use_a_constant_time_compare():
    digests, plain = comparisons(accounts_module.Accounts.authenticate)
    assert digests >= 1 and plain == []


def test_the_timing_probe_would_catch_a_plain_compare():
    """The probe above can fail: a hand-written `==` on a digest is found."""
    def leaky(secret: str, stored: str) -> bool:
        return accounts_module._digest(secret) == stored
    assert comparisons(leaky) == (0, ["accounts_module._digest(secret) == stored"])


def test_only_a_hash_of_the_secret_is_stored(tmp_path):
    accounts = accounts_module.Accounts(tmp_path)
    issued = accounts.issue_token(label="Théâtre des Hirondelles")
    secret = issued.token.partition(".")[2]
    dump = "\n".join(sqlite3.connect(tmp_path / accounts_module.FILE_NAME).iterdump())
    assert secret not in dump and issued.token not in dump
    assert accounts.authenticate(issued.token) is not None
    assert accounts.authenticate(issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")) is None


@pytest.fixture
async def api_client(tmp_path, demo_sources):
    settings = Settings(base_url=BASE, data_dir=tmp_path)
    store = EmbeddedStore(tmp_path / "store")
    harvest(demo_sources[0], store, BASE, settings.reports_dir)
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http, accounts_module.Accounts(tmp_path)
    store.close()


async def test_tokens_never_reach_logs_or_answers(api_client, caplog):
    http, accounts = api_client
    good = accounts.issue_token().token
    revoked = accounts.issue_token()
    accounts.revoke_token(revoked.token.partition(".")[0])
    unknown = "0123456789abcdef.ceci-n-est-pas-un-jeton-valide-du-tout"
    caplog.set_level(logging.DEBUG)
    answers = []
    for token in (good, revoked.token, unknown, good + "x"):
        for path in ("/api/me", "/api/sources", "/api/organisers"):
            answers.append(await http.get(path, headers={"Authorization": f"Bearer {token}"}))
    assert answers[0].status_code == 200
    assert all(a.status_code == 401 for a in answers[3:])  # revoked, unknown, altered
    for token in (good, revoked.token, unknown):
        secret = token.partition(".")[2]
        assert secret not in caplog.text
        for answer in answers:
            assert secret not in answer.text and secret not in str(answer.headers)
