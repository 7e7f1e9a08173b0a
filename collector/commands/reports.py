"""`briefing` and `evidence export|verify|key`: what the collector writes for the committee and auditors.

`evidence verify` needs no database and no config: it imports only collector.reports.verify.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from checks.output import format_table, print_json
from checks.safetext import printable
from collector.commands.base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Failed,
    UsageError,
    add_format,
    cli_actor,
    config_of,
    day,
    engine_of,
    now,
)

FRAMEWORK_CHOICES = ("cyber_essentials", "ncsc_caf", "cis_controls_v8")


def register(commands: Any) -> None:
    briefing = commands.add_parser(
        "briefing",
        help="write the audit-committee briefing (HTML or PDF) for a quarter or a period",
        description="The audit-committee briefing: red/amber/green by question, this period against the one "
        "before, trends, accepted risks and framework posture. Quarters follow collector.briefing.year_starts "
        "(default April). Without --quarter or --from/--to: the quarter today is in, so far.",
    )
    briefing.add_argument("--quarter", metavar="YYYY-QN", help="a quarter of the financial year, e.g. 2026-Q3")
    briefing.add_argument("--from", dest="start", type=day, metavar="DATE", help="first day of the period")
    briefing.add_argument("--to", dest="end", type=day, metavar="DATE", help="last day of the period")
    briefing.add_argument("--group", help="only hosts in this group")
    briefing.add_argument("--out", required=True, metavar="FILE", help="FILE.html or FILE.pdf")
    add_format(briefing)
    briefing.set_defaults(handler=cmd_briefing)

    evidence = commands.add_parser("evidence", help="the auditor's signed evidence pack: export, verify")
    actions = evidence.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write a signed evidence pack (zip) for a period or as at a date",
        description="Results with their observed facts, changes, policies and waivers, the audit log, the "
        "agent inventory, the briefing, OSCAL and OCSF, hashed in a manifest signed with the collector key. "
        "Without --from/--to or --as-of: as at today. The export is recorded in the audit log.",
    )
    export.add_argument("--from", dest="start", type=day, metavar="DATE", help="first day of the period")
    export.add_argument("--to", dest="end", type=day, metavar="DATE", help="last day of the period")
    export.add_argument("--as-of", type=day, metavar="DATE", help="the state at the end of this day")
    export.add_argument("--framework", choices=FRAMEWORK_CHOICES, help="only checks mapped to this framework")
    export.add_argument("--group", help="only subjects and agents in this group")
    export.add_argument("--with-reports", action="store_true", help="add the signed agent reports of the period")
    export.add_argument("--out", required=True, metavar="FILE", help="the pack to write, e.g. pack.zip")
    add_format(export)
    export.set_defaults(handler=cmd_export)

    verify = actions.add_parser(
        "verify",
        help="check an evidence pack offline (no database, no config)",
        description="Names every file added, removed or changed, checks the manifest's signature (and the key "
        "against --key), and checks every signed agent report against the inventory's keys. Exit 1 on any "
        "problem, one line each.",
    )
    verify.add_argument("pack", metavar="PACK", help="the evidence pack (zip)")
    verify.add_argument("--key", metavar="FINGERPRINT", help="the collector key's fingerprint the pack must carry")
    add_format(verify)
    verify.set_defaults(handler=cmd_verify)

    key = actions.add_parser("key", help="show the collector key's fingerprint (give it to auditors)")
    add_format(key)
    key.set_defaults(handler=cmd_key)


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int | None], None]]:
    """A progress bar on a terminal (rich, on standard error): a bar where the total is known, a spinner
    otherwise; nothing when standard error is not a terminal."""
    if not enabled:
        yield lambda _what, _count, _total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("starting", total=None)
        shown = ["starting"]

        def update(what: str, count: int, total: int | None = None) -> None:
            # Each new part is drawn at once (not at the next tick), so even a part that takes less than
            # a tick is seen by whoever watches.
            fresh = what != shown[0]
            shown[0] = what
            bar.update(task, description=what, completed=count, total=total, refresh=fresh)

        yield update


def _interactive() -> bool:
    return sys.stderr.isatty()


def cmd_briefing(args: argparse.Namespace) -> int:
    from collector.reports import briefing, figures, periods
    from collector.storage import audit
    from collector.storage.engine import read_tx, write_tx
    from collector.storage.queries.common import QueryError

    out = Path(args.out)
    fmt = out.suffix.lower().lstrip(".")
    fmt = "html" if fmt == "htm" else fmt
    if fmt not in briefing.FORMATS:
        raise UsageError(f"--out must name a .html or .pdf file, got {args.out!r}")
    config = config_of(args)
    moment = now()
    try:
        period = periods.choose(
            quarter_label=args.quarter,
            start=args.start,
            end=args.end,
            today=moment.date(),
            year_starts=periods.month_number(config.briefing.year_starts),
        )
    except periods.PeriodError as exc:
        raise UsageError(str(exc)) from None
    engine = engine_of(config)
    try:
        with progress_bar(_interactive()) as step:
            step("reading the figures", 0, None)
            with read_tx(engine) as connection:
                data = figures.gather(connection, period=period, group=args.group, config=config, now=moment)
            step("drawing the charts" if fmt == "html" else "writing the PDF", 0, None)
            document = briefing.render(data, fmt)
        with write_tx(engine) as connection:
            audit.record(
                connection,
                cli_actor(),
                "briefing.create",
                period.label,
                {"format": fmt, "group": args.group, "from": period.start.isoformat(), "to": period.end.isoformat()},
                moment,
            )
    except QueryError as exc:
        raise UsageError(exc.message) from None
    finally:
        engine.dispose()
    partial = out.with_name(out.name + ".partial")
    try:
        partial.write_bytes(document)
        partial.replace(out)
    except OSError as exc:
        raise Failed(f"cannot write {out}: {exc.strerror or exc}") from None
    areas = [{"question": a["question"], "now": a["rag"], "before": a.get("before_rag")} for a in data["areas"]]
    if args.format == "json":
        print_json({"out": str(out), "period": data["period"], "previous": data["previous"], "areas": areas})
        return EXIT_OK
    print(f"Wrote {out}: briefing for {data['period']['long_label']}, compared with {data['previous']['label']}.")
    print(
        format_table(("QUESTION", "NOW", "LAST PERIOD"), [(a["question"], a["now"], a["before"] or "") for a in areas])
    )
    return EXIT_OK


def _export_request(args: argparse.Namespace, today: dt.date) -> Any:
    from collector.reports.evidence_files import ExportRequest

    if args.as_of and (args.start or args.end):
        raise UsageError("give either --as-of or --from/--to, not both")
    if bool(args.start) != bool(args.end):
        raise UsageError("give both --from and --to")
    if args.start:
        return ExportRequest(
            end=args.end, start=args.start, framework=args.framework, group=args.group, with_reports=args.with_reports
        )
    return ExportRequest(
        end=args.as_of or today, framework=args.framework, group=args.group, with_reports=args.with_reports
    )


def cmd_export(args: argparse.Namespace) -> int:
    from collector.initialise import InitError, load_signing_key
    from collector.reports import evidence

    config = config_of(args)
    moment = now()
    request = _export_request(args, moment.date())
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"--out: the directory {out.parent} does not exist")
    try:
        key = load_signing_key(config)
    except InitError as exc:
        raise Failed(str(exc)) from None
    engine = engine_of(config)
    try:
        with progress_bar(_interactive()) as step:
            payload = evidence.export(engine, config, key, request, out, now=moment, actor=cli_actor(), progress=step)
    except evidence.EvidenceError as exc:
        raise UsageError(exc.message) from None
    except OSError as exc:
        raise Failed(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        engine.dispose()
    if args.format == "json":
        print_json({"out": str(out), **{k: payload[k] for k in ("parameters", "collector", "counts")},
                    "files": len(payload["files"])})  # fmt: skip
        return EXIT_OK
    counts = payload["counts"]
    print(
        f"Wrote {out}: {counts['results']:,} results, {counts['changes']:,} changes, {counts['agents']:,} agents"
        + (f", {counts['signed_reports']:,} signed reports" if "signed_reports" in counts else "")
        + f"; {len(payload['files'])} files signed by collector key {payload['collector']['fingerprint']}"
    )
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from collector.reports.verify import verify

    path = Path(args.pack)
    if not path.is_file():
        print(f"rampart-collector: error: {printable(str(path))}: no such file", file=sys.stderr)
        return EXIT_USAGE
    outcome = verify(path, args.key)
    if args.format == "json":
        answer = {"ok": outcome.ok, "problems": outcome.problems, "files": outcome.files,
                  "signed_reports": outcome.reports, "fingerprint": outcome.fingerprint}  # fmt: skip
        print(json.dumps(answer, indent=2))
        return EXIT_OK if outcome.ok else EXIT_FAILED
    for problem in outcome.problems:
        print(printable(problem))
    if not outcome.ok:
        return EXIT_FAILED
    print(
        f"{printable(str(path))}: verified {outcome.files} files and {outcome.reports} signed agent reports; "
        f"signed by collector key {outcome.fingerprint}"
    )
    return EXIT_OK


def cmd_key(args: argparse.Namespace) -> int:
    from checks import wire
    from collector.initialise import InitError, load_signing_key
    from collector.reports.evidence import fingerprint

    try:
        key = load_signing_key(config_of(args))
    except InitError as exc:
        raise Failed(str(exc)) from None
    data = {"fingerprint": fingerprint(key), "public_key": wire.public_key_text(key), "key_id": wire.key_id(key)}
    if args.format == "json":
        print_json(data)
    else:
        print(f"fingerprint {data['fingerprint']}\npublic key  {data['public_key']}")
    return EXIT_OK
