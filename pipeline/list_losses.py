"""``list-losses [NAME ...] [--json]``: every loss with its parameters, defaults, ranges and paper.

Reads ``losses.catalog`` (no TensorFlow), so it answers at once. The names
are what a config's ``loss.name`` takes, the parameters its ``loss.params``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from losses import catalog
from pipeline import console
from pipeline.errors import ConfigError, exits_cleanly


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="list-losses",
        description="List the losses a config's loss.name can take, with parameters, defaults, ranges and papers.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these losses (default: all)")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return console.add_arguments(parser)


def describe(loss: catalog.Loss) -> str:
    """One loss as a few indented lines of text."""
    lines = [f"{loss.name}: {loss.summary}", f"    {loss.reference}"]
    if not loss.parameters:
        lines.append("    (no parameters)")
    settings = [f"{p.name}: {_as_yaml(p.default)}" for p in loss.parameters]
    width = max(map(len, settings), default=0)
    ranges = max((len(p.range_text()) for p in loss.parameters), default=0)
    for setting, parameter in zip(settings, loss.parameters):
        lines.append(f"    {setting:<{width}}  {parameter.range_text():<{ranges}}  {parameter.meaning}")
    return "\n".join(lines)


def _as_yaml(value) -> str:
    """A default as a config would spell it: ``null``, ``false``, ``0.7``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    console.configure(arguments)
    names = arguments.names or catalog.names()
    unknown = [name for name in names if name not in catalog.CATALOG]
    if unknown:
        raise ConfigError(f"unknown loss {unknown[0]!r}; choose one of: {', '.join(catalog.names())}")
    if arguments.json:
        chosen = set(names)
        json.dump([loss for loss in catalog.as_json() if loss["name"] in chosen], sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print("\n\n".join(describe(catalog.CATALOG[name]) for name in names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
