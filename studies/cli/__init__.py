"""The ``actdiag`` command line: one sub-command per module, errors as one line and exit 2."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

EXAMPLES = """examples:
  actdiag list                                   # the names every flag accepts
  actdiag train --preset question --seeds 1000   # the user's program over 1000 seeds
  actdiag report --quick                         # every study, fewer seeds: runs/report-quick/
Each command has its own --help, with defaults and examples.
"""
COMMANDS = ("train", "study", "bench", "catalog")  # modules of studies.cli, one per command


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="actdiag",
        description=(
            "Measure why networks with some activations train slowly or fail: train thousands "
            "of seeds at once, record what happens inside them, and report with statistics."
        ),
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    import importlib

    for name in COMMANDS:  # imported here, so that a signal during the imports is handled too
        importlib.import_module(f"studies.cli.{name}").add_parser(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that the same clean-up runs."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run one command; with ``argv`` None (the console script), exit the process at once
    after an interruption, whatever threads a library left behind."""
    console = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    command = argv[0] if argv and not argv[0].startswith("-") else "actdiag"
    try:
        code = _main(argv)
    except KeyboardInterrupt as exc:
        code = _interrupted(command, exc)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if console and code in (130, 143):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return int(args.run(args) or 0)
    except ValueError as exc:
        print(f"actdiag {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the disk, not the input: e.g. full while writing
        print(f"actdiag {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _interrupted(command: str, exc: KeyboardInterrupt) -> int:
    """One line saying what finished and how to resume; 130 (SIGINT) or 143 (SIGTERM)."""
    notes = [n for n in getattr(exc, "__notes__", []) if "chunks" in n]
    if notes:
        said = f"{notes[-1]}; rerun the same command to resume"
    elif command == "train":
        said = "nothing written; rerun the same command to train again"
    else:
        said = "rerun the same command to resume"
    print(f"actdiag {command}: interrupted: {said}", file=sys.stderr)
    return 143 if isinstance(exc, Terminated) else 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
