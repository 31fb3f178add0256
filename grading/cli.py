"""``python -m grading COMMAND``: grade, batch, serve, run, doctor, bundle, gradescope-autograder.

Each command lives in ``grading/commands/<name>.py`` and registers its own parser.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import grading.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grading",
        description="infergrade: grade LLM-inference lab submissions against simulated or real services.",
        epilog="Run 'python -m grading COMMAND --help' for a command's options.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(grading.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"grading.commands.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
