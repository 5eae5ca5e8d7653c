"""The README keeps the promises: every setting, command and option is documented there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from publisher.cli import parser
from publisher.settings import PREFIX, Settings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name):
    assert f"`{PREFIX}{name.upper()}`" in README


def test_every_setting_has_a_description():
    assert all(field.description for field in Settings.model_fields.values())


def subcommands():
    root = parser()
    action = next(a for a in root._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_command_and_option_is_documented(command):
    row = next((line for line in README.splitlines() if line.startswith(f"| `affiche {command}")), None)
    assert row is not None, f"affiche {command} has no row in the README's command table"
    for action in subcommands()[command]._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                assert option in row, f"{option} of affiche {command} is not documented"


def test_quick_start_commands_are_the_ones_ci_runs():
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    test_command = re.search(r"\*\*2\..*?```sh\n(.*?)\n```", README, re.S).group(1)
    assert test_command in ci
