"""Reading a policy or waiver file: its text, its YAML, and the context that gives each problem its line.

A file that cannot be read or parsed is a `PolicyError` at once; the problems found after parsing are
collected in a `Context` and reported together, sorted by line.
"""

from __future__ import annotations

from pathlib import Path

from checks.policy.errors import Issue, PathT, PolicyError
from checks.policy.expr_parser import Problem
from checks.policy.yamlsource import YamlDocument, YamlSyntaxError, parse_yaml


class Context:
    """One file's problems as they are found, each with its path; `issues` gives them their lines."""

    def __init__(self, source: str, document: YamlDocument | None) -> None:
        self.source = source
        self.document = document
        self.problems: list[Problem] = []

    def line(self, path: PathT) -> int:
        return self.document.line_of(path) if self.document else 0

    def issues(self, extra: list[Problem] | None = None) -> list[Issue]:
        problems = list(extra or []) + self.problems
        issues = {Issue(self.source, self.line(p.path), p.message) for p in problems}
        return sorted(issues, key=lambda issue: (issue.line, issue.message))


def read_document(path: str | Path) -> tuple[str, YamlDocument]:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PolicyError([Issue(source, 0, "no such file")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([Issue(source, 0, f"cannot read: {exc}")]) from exc
    return source, parse_document(text, source)


def parse_document(text: str, source: str) -> YamlDocument:
    try:
        document = parse_yaml(text)
    except YamlSyntaxError as exc:
        raise PolicyError([Issue(source, exc.line, exc.message)]) from exc
    if document.problems:
        raise PolicyError([Issue(source, p.line, p.message) for p in document.problems])
    return document
