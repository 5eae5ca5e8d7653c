"""Organisers and tokens: stored hashed, scoped, revocable; the operator's commands."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from publisher.accounts import AccountError, Accounts, registered_sources, withheld_events

ROOT = Path(__file__).parents[2]


def test_tokens_are_stored_hashed_and_authenticate(tmp_path):
    accounts = Accounts(tmp_path)
    accounts.add_organiser("rideau-rouge", "Théâtre du Rideau Rouge")
    issued = accounts.issue_token("rideau-rouge", label="billetterie")
    token_id, secret = issued.token.split(".")
    assert len(secret) >= 43  # 32 random bytes, base64url
    with sqlite3.connect(accounts.path) as db:
        [(stored,)] = db.execute("SELECT secret_sha256 FROM tokens WHERE id = ?", (token_id,))
        dumped = "\n".join(db.iterdump())
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in dumped
    who = accounts.authenticate(issued.token)
    assert who.role == "organiser" and who.organiser == "rideau-rouge" and not who.is_operator


def test_operator_tokens_have_no_organiser(tmp_path):
    who = Accounts(tmp_path).authenticate(Accounts(tmp_path).issue_token().token)
    assert who.is_operator and who.organiser is None


@pytest.mark.parametrize("mangle", [
    lambda t: t + "x", lambda t: t.split(".")[0], lambda t: "." + t.split(".")[1],
    lambda t: "ffffffffffffffff." + t.split(".")[1], lambda t: "", lambda t: t.replace(".", ""),
])
def test_wrong_tokens_do_not_authenticate(tmp_path, mangle):
    accounts = Accounts(tmp_path)
    token = accounts.issue_token().token
    assert accounts.authenticate(mangle(token)) is None
    assert accounts.authenticate(token) is not None


def test_a_revoked_token_no_longer_authenticates(tmp_path):
    accounts = Accounts(tmp_path)
    issued = accounts.issue_token()
    assert accounts.revoke_token(issued.id) is True
    assert accounts.authenticate(issued.token) is None
    assert accounts.revoke_token(issued.id) is False
    [listed] = accounts.tokens()
    assert listed["revoked_at"] is not None


def test_tokens_for_unknown_organisers_and_duplicate_organisers_are_refused(tmp_path):
    accounts = Accounts(tmp_path)
    with pytest.raises(AccountError, match="no organiser"):
        accounts.issue_token("nobody")
    accounts.add_organiser("aurores", "Festival des Aurores")
    with pytest.raises(AccountError, match="already exists"):
        accounts.add_organiser("aurores", "Festival des Aurores")
    with pytest.raises(AccountError, match="lower-case"):
        accounts.add_organiser("Les Aurores", "Festival des Aurores")


def test_nothing_registered_means_no_sources_and_no_file(tmp_path):
    assert registered_sources(tmp_path) == []
    assert withheld_events(tmp_path, "rideau-agenda") == frozenset()
    assert not (tmp_path / "organisers.sqlite").exists()


def affiche(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(data_dir), "AFFICHE_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "publisher.cli", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_the_operator_commands(tmp_path):
    added = affiche(tmp_path, "organisers", "add", "rideau-rouge", "--name", "Théâtre du Rideau Rouge")
    assert added.returncode == 0, added.stderr
    assert affiche(tmp_path, "organisers", "add", "rideau-rouge", "--name", "x").returncode == 2
    assert "rideau-rouge" in affiche(tmp_path, "organisers", "list").stdout

    issued = affiche(tmp_path, "tokens", "issue", "--organiser", "rideau-rouge", "--label", "site")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    who = Accounts(tmp_path).authenticate(token)
    assert who is not None and who.organiser == "rideau-rouge"
    listing = affiche(tmp_path, "tokens", "list").stdout
    assert token.split(".")[0] in listing and token.split(".")[1] not in listing

    assert affiche(tmp_path, "tokens", "issue", "--organiser", "nobody").returncode == 2
    assert affiche(tmp_path, "tokens", "revoke", token.split(".")[0]).returncode == 0
    assert Accounts(tmp_path).authenticate(token) is None
    assert affiche(tmp_path, "tokens", "revoke", token.split(".")[0]).returncode == 2

    operator = affiche(tmp_path, "tokens", "issue").stdout.strip()
    assert Accounts(tmp_path).authenticate(operator).is_operator


def test_withdrawals_of_declared_and_registered_sources_are_kept(tmp_path):
    from publisher.accounts import RegisteredSource, now_iso, source_withdrawn_at, withdrawals

    assert withdrawals(tmp_path) == {} and source_withdrawn_at(tmp_path, "rideau-saison") is None
    assert not (tmp_path / "organisers.sqlite").exists()  # asking creates no registry
    accounts = Accounts(tmp_path)
    accounts.add_organiser("rideau-rouge", "Théâtre du Rideau Rouge")
    accounts.add_source(RegisteredSource(
        id="rideau-agenda", organiser="rideau-rouge", name="Agenda", url=None, upload=None,
        format="jsonld", language="fr", timezone="Europe/Brussels", license=None,
        schedule_minutes=None, created_at=now_iso(), withdrawn_at=None))
    accounts.withdraw_declared("rideau-saison")  # a TOML source: no row in `sources`
    accounts.withdraw_declared("rideau-saison")  # twice: the first date stays
    accounts.withdraw_source("rideau-agenda")
    assert set(withdrawals(tmp_path)) == {"rideau-saison", "rideau-agenda"}
    assert source_withdrawn_at(tmp_path, "rideau-saison") == withdrawals(tmp_path)["rideau-saison"]
    assert source_withdrawn_at(tmp_path, "aurores-ete") is None
    accounts.withhold_declared_event("rideau-saison", "http://affiche.test/event/rideau-saison-0123456789ab")
    accounts.withhold_event("rideau-agenda", "http://affiche.test/event/rideau-agenda-ba9876543210")
    assert withheld_events(tmp_path, "rideau-saison") == {
        "http://affiche.test/event/rideau-saison-0123456789ab"}
    assert withheld_events(tmp_path, "rideau-agenda") == {
        "http://affiche.test/event/rideau-agenda-ba9876543210"}
    assert registered_sources(tmp_path) == []  # withdrawn: not harvested
