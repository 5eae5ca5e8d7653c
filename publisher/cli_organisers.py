"""The operator's commands for organisers: `affiche organisers`, `affiche tokens`, `harvest --due`.

Tokens are printed once, when issued; only their hash is kept (publisher.accounts).
"""

from __future__ import annotations

import argparse
import sys

from sparql.store import open_store

from .accounts import AccountError, Accounts
from .jobs import JobRunner
from .settings import Settings


def cmd_organisers_add(args, settings: Settings) -> int:
    try:
        Accounts(settings.data_dir).add_organiser(args.organiser_id, args.name)
    except AccountError as exc:
        sys.stderr.write(f"affiche organisers add: {exc}\n")
        return 2
    print(f"organiser {args.organiser_id} added; issue a token with "
          f"`affiche tokens issue --organiser {args.organiser_id}`")
    return 0


def cmd_organisers_list(args, settings: Settings) -> int:
    for organiser in Accounts(settings.data_dir).organisers():
        print(f"{organiser['id']:<24} {organiser['name']}  (since {organiser['created_at']})")
    return 0


def cmd_tokens_issue(args, settings: Settings) -> int:
    try:
        issued = Accounts(settings.data_dir).issue_token(args.organiser, args.label or "")
    except AccountError as exc:
        sys.stderr.write(f"affiche tokens issue: {exc}\n")
        return 2
    who = f"organiser {issued.organiser}" if issued.organiser else "the operator"
    sys.stderr.write(f"token {issued.id} for {who}; it is shown once, keep it now:\n")
    print(issued.token)
    return 0


def cmd_tokens_revoke(args, settings: Settings) -> int:
    if not Accounts(settings.data_dir).revoke_token(args.token_id):
        sys.stderr.write(f"affiche tokens revoke: no live token {args.token_id!r}\n")
        return 2
    print(f"token {args.token_id} revoked")
    return 0


def cmd_tokens_list(args, settings: Settings) -> int:
    for token in Accounts(settings.data_dir).tokens():
        state = f"revoked {token['revoked_at']}" if token["revoked_at"] else "live"
        print(f"{token['id']}  {token['role']:<9} {token['organiser'] or '-':<24} {state}  {token['label']}")
    return 0


def cmd_harvest_due(settings: Settings) -> int:
    """What `affiche serve`'s scheduler does, once: harvest every due source, then exit."""
    from .cli import fetch_policy  # the cli imports this module

    store = open_store(settings.store, settings.data_dir, **settings.store_options())
    runner = JobRunner(settings, store, fetch_policy(settings), settings.jobs_max_concurrent)
    try:
        jobs = [runner.wait(job.id) for job in runner.submit_due()]
    finally:
        runner.close()
        store.close()
    if not jobs:
        print("no source is due")
        return 0
    failed = [job for job in jobs if job.state != "done"]
    for job in jobs:
        report = job.to_json()["report"] or {}
        summary = report.get("summary", {})
        print(f"{job.source:<24} {job.state:<8} found {summary.get('found', 0)}, published "
              f"{summary.get('published', 0)}, quarantined {summary.get('quarantined', 0)}"
              f"{'  ' + job.error if job.error else ''}")
    return 1 if failed else 0


def add_account_commands(commands: argparse._SubParsersAction) -> None:
    organisers = commands.add_parser("organisers", help="add and list organisers")
    sub = organisers.add_subparsers(dest="organisers_command", required=True)
    add = sub.add_parser("add", help="add an organiser")
    add.add_argument("organiser_id", metavar="ID", help="lower-case letters, digits and dashes")
    add.add_argument("--name", required=True, help="the organiser's name")
    add.set_defaults(handler=cmd_organisers_add)
    sub.add_parser("list", help="list organisers").set_defaults(handler=cmd_organisers_list)

    tokens = commands.add_parser("tokens", help="issue, list and revoke API tokens")
    sub = tokens.add_subparsers(dest="tokens_command", required=True)
    issue = sub.add_parser("issue", help="issue a token (printed once)")
    issue.add_argument("--organiser", help="the organiser it acts for (default: an operator token)")
    issue.add_argument("--label", help="a note to tell tokens apart")
    issue.set_defaults(handler=cmd_tokens_issue)
    revoke = sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the part before the dot")
    revoke.set_defaults(handler=cmd_tokens_revoke)
    sub.add_parser("list", help="list tokens (never their secrets)").set_defaults(handler=cmd_tokens_list)
