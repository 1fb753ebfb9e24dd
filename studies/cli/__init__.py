"""The ``actdiag`` command line: one sub-command per module, errors as one line and exit 2."""

from __future__ import annotations

import argparse
import sys

from studies.cli import bench, catalog, study, train

COMMANDS = (train, study, bench, catalog)


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
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
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
    except KeyboardInterrupt:
        print(f"actdiag {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
