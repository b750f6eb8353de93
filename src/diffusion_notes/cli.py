"""The ``diffusion-notes`` command line.

Each part of the package that has commands registers them through a ``register(subparsers)``
function in its own module; this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that expose ``register(subparsers) -> None``; each adds its sub-commands.
COMMAND_MODULES = [
    "diffusion_notes.bib.cli",
    "diffusion_notes.train_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffusion-notes",
        description="Tools of the diffusion-notes knowledge base: papers, citations, training.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
