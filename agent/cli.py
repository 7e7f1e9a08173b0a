"""`rampart-agent`: run checks on this machine, author and test policies.

Exit codes: 0 ok, 1 failed (invalid policy, failing policy tests), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from agent.commands import FORMAT_HELP, CommandError, add_commands
from checks import __version__
from checks.cliargs import add_config_everywhere
from checks.completion import add_completion_command
from checks.output import error_notes, format_table, note_rows, print_json, remediation_rows

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input: printed as `rampart-agent: error: ...`, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rampart-agent",
        description="Rampart endpoint agent: runs security checks from YAML policies on this machine.",
        epilog="Exit codes: 0 ok, 1 failed, 2 bad usage or input. Run `rampart-agent COMMAND --help` for more.",
    )
    parser.add_argument("--version", action="version", version=f"rampart-agent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check",
        help="evaluate a policy on this machine and print the results (no collector needed)",
        description="Evaluate a policy on this machine and print one result per check. Exit 0 when the "
        "checks ran, whatever their results; 2 when the policy or waivers are invalid.",
    )
    check.add_argument("--policy", metavar="FILE", help="policy file (default: the shipped baseline)")
    check.add_argument("--waivers", metavar="FILE", action="append", default=[], help="waiver file (repeatable)")
    check.add_argument(
        "--group",
        action="append",
        default=[],
        help="group this host is in, for input overrides and waivers (repeatable)",
    )
    check.add_argument("--only", metavar="CHECK_ID", action="append", help="run only this check (repeatable)")
    check.add_argument(
        "--replay",
        metavar="DIR",
        help="judge a recorded machine (a directory with host.json) instead of this one",
    )
    check.add_argument(
        "--no-cache",
        action="store_true",
        help="keep no tools' caches between runs (by default apt's package cache is kept: in the agent's state "
        "directory when it is this user's, else in $XDG_CACHE_HOME/rampart or ~/.cache/rampart)",
    )
    check.add_argument("--format", choices=("table", "json"), default="table", help=FORMAT_HELP)
    check.set_defaults(handler=cmd_check)

    policy = commands.add_parser("policy", help="validate, test and describe policies")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    validate = policy_commands.add_parser(
        "validate",
        help="check policy and waiver files; print every problem as file:line: message",
        description="Check policy and waiver files (told apart by their top-level key). Every problem is "
        "printed as file:line: message. Exit 1 when any file is invalid.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="policy or waiver files (YAML)")
    validate.add_argument("--format", choices=("table", "json"), default="table", help=FORMAT_HELP)
    validate.set_defaults(handler=cmd_policy_validate)

    test = policy_commands.add_parser(
        "test",
        help="run a policy's tests: section on recorded facts",
        description="Run the `tests:` section of policies: each test gives recorded probe facts (or a probe "
        "error) and the status the check must reach. Nothing on this machine is read. Exit 1 when a test fails.",
    )
    test.add_argument("files", nargs="+", metavar="FILE", help="policy files with a tests: section")
    test.add_argument("--format", choices=("table", "json"), default="table", help=FORMAT_HELP)
    test.set_defaults(handler=cmd_policy_test)

    schema = policy_commands.add_parser("schema", help="print the JSON Schema of policy files (for editors)")
    schema.add_argument("--waivers", action="store_true", help="print the schema of waiver files instead")
    schema.set_defaults(handler=cmd_policy_schema)

    probes = policy_commands.add_parser("probes", help="list the probes policies can use, with parameters and facts")
    probes.add_argument("--format", choices=("table", "json"), default="table", help=FORMAT_HELP)
    probes.set_defaults(handler=cmd_policy_probes)
    add_commands(commands)  # enroll, run, status
    add_completion_command(commands, build_parser, "rampart-agent")
    add_config_everywhere(parser)  # before the command and after it, on every command
    return parser


def _load_policy_and_waivers(policy_file: str | None, waiver_files: list[str]) -> tuple[Any, list[Any]]:
    from checks.policy.loader import PolicyError, load_policy_file
    from checks.policy.waiverfile import check_waivers_against, load_waiver_file
    from policies import shipped_path

    path = policy_file or str(shipped_path("baseline.yaml"))
    try:
        policy = load_policy_file(path)
        waivers = [w for f in waiver_files for w in load_waiver_file(f)]
    except PolicyError as exc:
        raise UsageError("invalid input:\n" + "\n".join(str(issue) for issue in exc.issues)) from exc
    issues = check_waivers_against(waivers, [policy])
    if issues:
        raise UsageError("invalid input:\n" + "\n".join(str(issue) for issue in issues))
    return policy, waivers


def cmd_check(args: argparse.Namespace) -> int:
    from checks.policy.evaluate import CachingRunner, evaluate_policy
    from checks.probes.host import Host
    from checks.probes.local import LocalHost
    from checks.probes.replay import ReplayHost
    from checks.results import Subject, SubjectKind, score

    policy, waivers = _load_policy_and_waivers(args.policy, args.waivers)
    host: Host
    if args.replay:
        try:
            host = ReplayHost(args.replay)
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"cannot read recording {args.replay}: {exc}") from exc
    else:
        host = LocalHost(cache_dir=_cache_dir(args))
    if args.only:
        unknown = [c for c in args.only if policy.check(c) is None]
        if unknown:
            raise UsageError(f"policy {policy.id} has no check {unknown[0]!r}")
    hostname = _hostname(host)
    subject = Subject(SubjectKind.HOST, hostname or "local", hostname or "")
    evaluation = evaluate_policy(
        policy,
        subject=subject,
        platform=host.platform,
        run_probe=CachingRunner(host),
        groups=tuple(args.group),
        waivers=waivers,
        only=set(args.only) if args.only else None,
    )
    summary = score(evaluation.results, weighted=policy.scoring == "weighted")
    if args.format == "json":
        print_json(
            {
                "policy": {
                    "id": policy.id,
                    "version": policy.version,
                    "hash": policy.sha256,
                    "source": policy.source,
                },
                "subject": subject.to_dict(),
                "platform": host.platform,
                # The whole remediation text of each failure and error (what to do about it), and for an error
                # the probe's notes (what it could not read, and why); None and [] otherwise.
                "results": [
                    {
                        **r.to_dict(),
                        "remediation": _remediation(policy, r.check_id, r.status.value),
                        "notes": error_notes(r.status.value, r.observed),
                    }
                    for r in evaluation.results
                ],
                "expired_waivers": [w.to_dict() for w in evaluation.expired_waivers],
                "score": {
                    "ratio": summary.ratio,
                    "passed": summary.passed,
                    "failed": summary.failed,
                    "errors": summary.errors,
                    "not_applicable": summary.not_applicable,
                    "waived": summary.waived,
                    "weighted": policy.scoring == "weighted",
                },
            }
        )
        return EXIT_OK
    rows = [
        (
            r.status.value,
            r.severity.value,
            r.check_id,
            r.title if r.status.value == "pass" else (r.reason or r.title),
        )
        for r in evaluation.results
    ]
    where = f"{subject.name or subject.id} [{host.platform}]"
    print(f"{policy.title} ({policy.id} {policy.version}, sha256 {policy.sha256[:12]}) on {where}")
    print(format_table(("STATUS", "SEVERITY", "CHECK", "DETAIL"), rows, coloured=(0, 1)))
    fixes = remediation_rows(
        [(r.check_id, r.status.value, _remediation(policy, r.check_id, r.status.value)) for r in evaluation.results]
    )
    if fixes:
        print("\nTo fix (the whole text: --format json):")
        print(format_table(("CHECK", "REMEDIATION"), fixes))
    notes = note_rows([(r.check_id, r.status.value, r.observed) for r in evaluation.results])
    if notes:
        print("\nWhy it could not be judged (the probe's notes; all of them: --format json):")
        print(format_table(("CHECK", "NOTE"), notes))
    counts = {
        status: sum(1 for r in evaluation.results if r.status.value == status)
        for status in ("pass", "fail", "error", "not_applicable", "waived")
    }
    ratio = "n/a" if summary.ratio is None else f"{summary.ratio:.0%}"
    print(
        f"\n{counts['pass']} pass, {counts['fail']} fail, {counts['error']} error, "
        f"{counts['not_applicable']} not applicable, {counts['waived']} waived; "
        f"score {ratio}{' (weighted by severity)' if policy.scoring == 'weighted' else ''}"
        + (f"; {counts['error']} could not be judged" if counts["error"] else "")
    )
    for waiver in evaluation.expired_waivers:
        origin = f"{waiver.source}:{waiver.line}"
        print(f"expired waiver: {waiver.id} for {waiver.check} expired on {waiver.expires} ({origin})")
    return EXIT_OK


def _cache_dir(args: argparse.Namespace) -> str | None:
    """Where the probes keep tools' caches, as the daemon's worker does (agent/check_cache.py), or None."""
    import os

    from agent.check_cache import check_cache_dir
    from checks.config import ConfigError

    if args.no_cache:
        return None
    try:
        directory = check_cache_dir(args.config, os.environ)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    return None if directory is None else str(directory)


def _remediation(policy: Any, check_id: str, status: str) -> str | None:
    """The check's `remediation:` text for a failure or an error (what to do next); None for the rest."""
    check = policy.check(check_id)
    if status not in ("fail", "error") or check is None:
        return None
    return str(check.remediation) or None


def _hostname(host: Any) -> str:
    from checks.policy.evaluate import collect
    from checks.policy.model import ProbeRef
    from checks.probes.host import ProbeError

    try:
        facts = collect(host, ProbeRef("os"))
        return str(facts.get("hostname") or "")
    except ProbeError:
        return ""


def cmd_policy_validate(args: argparse.Namespace) -> int:
    from checks.policy.loader import load_files

    loaded = load_files(args.files)
    if args.format == "json":
        print_json(
            {
                "valid": not loaded.issues,
                "issues": [{"file": i.source, "line": i.line, "message": i.message} for i in loaded.issues],
                "policies": [
                    {
                        "id": p.id,
                        "version": p.version,
                        "sha256": p.sha256,
                        "checks": len(p.checks),
                        "file": p.source,
                    }
                    for p in loaded.policies
                ],
                "waivers": len(loaded.waivers),
            }
        )
    else:
        for issue in loaded.issues:
            print(issue)
        if not loaded.issues:
            for p in loaded.policies:
                print(f"ok: {p.source}: policy {p.id} {p.version}, {len(p.checks)} checks, sha256 {p.sha256}")
            if loaded.waivers:
                print(f"ok: {len(loaded.waivers)} waivers")
        else:
            print(f"{len(loaded.issues)} problem(s) found", file=sys.stderr)
    return EXIT_FAILED if loaded.issues else EXIT_OK


def cmd_policy_test(args: argparse.Namespace) -> int:
    from checks.policy.loader import PolicyError, load_policy_file
    from checks.policy.testing import run_policy_tests

    report: list[dict[str, Any]] = []
    failures = 0
    rows = []
    for path in args.files:
        try:
            policy = load_policy_file(path)
        except PolicyError as exc:
            raise UsageError("invalid policy:\n" + "\n".join(str(i) for i in exc.issues)) from exc
        if not policy.tests:
            print(f"{path}: no tests: section", file=sys.stderr)
        for outcome in run_policy_tests(policy):
            failures += not outcome.passed
            rows.append(
                (
                    "ok" if outcome.passed else "FAIL",
                    f"{path}:{outcome.test.line}",
                    outcome.test.check,
                    outcome.test.name + (f": {outcome.problem}" if outcome.problem else ""),
                )
            )
            report.append(
                {
                    "file": path,
                    "line": outcome.test.line,
                    "name": outcome.test.name,
                    "check": outcome.test.check,
                    "passed": outcome.passed,
                    "expected": outcome.test.status.value,
                    "got": outcome.result.status.value,
                    "reason": outcome.result.reason,
                    "problem": outcome.problem,
                }
            )
    if args.format == "json":
        print_json({"passed": failures == 0, "tests": report})
    else:
        print(format_table(("RESULT", "WHERE", "CHECK", "TEST"), rows))
        print(f"\n{len(rows) - failures} passed, {failures} failed")
    return EXIT_FAILED if failures else EXIT_OK


def cmd_policy_schema(args: argparse.Namespace) -> int:
    from checks.policy.schema import policy_schema, waiver_schema

    print_json(waiver_schema() if args.waivers else policy_schema())
    return EXIT_OK


def cmd_policy_probes(args: argparse.Namespace) -> int:
    from checks.probes import registry

    probes = list(registry.all_probes())
    if args.format == "json":
        print_json(
            [
                {
                    "name": spec.name,
                    "description": spec.description,
                    "platforms": list(spec.platforms),
                    "scope": spec.scope,
                    "permissions": list(spec.permissions),
                    "params": {f.name: f.json_schema() for f in spec.params},
                    "facts": {f.name: f.json_schema() for f in spec.facts},
                    "example": spec.example,
                }
                for spec in probes
            ]
        )
        return EXIT_OK
    rows = [(s.name, ",".join(s.platforms), ", ".join(f.name for f in s.params) or "-", s.description) for s in probes]
    print(format_table(("PROBE", "PLATFORMS", "PARAMS", "DESCRIPTION"), rows))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f"rampart-agent: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:
        print(f"rampart-agent: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (`| head`) went away: not an error of ours; keep Python from complaining at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
