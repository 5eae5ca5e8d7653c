"""Jinja2 templates and static files for the public pages (a data package, no logic)."""

from importlib import resources
from pathlib import Path


def static_dir() -> Path:
    return Path(str(resources.files(__package__).joinpath("static")))
