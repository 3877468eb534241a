"""The ``perdure`` command (also ``python -m actors``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run the ``perdure`` command line; return the exit code."""
    parser = argparse.ArgumentParser(prog="perdure", description="Durable actors for asyncio.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="run an order that crashes its process and recovers from the journal"
    )
    demo.add_argument("--db", type=Path, default=None, help="the SQLite file (default: temp)")
    demo.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from ._demo import demo as run_demo  # noqa: PLC0415 - only this command needs it
    from ._demo import demo_once  # noqa: PLC0415

    if args.once:
        return demo_once(args.db)
    return run_demo(args.db)


if __name__ == "__main__":
    sys.exit(main())
