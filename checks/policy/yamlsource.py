"""YAML read into plain JSON-like data, remembering the line of every key and item.

Duplicate keys are reported (PyYAML silently keeps the last), dates become ISO strings so that what is
hashed and validated is what JSON would carry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass
class SourceProblem:
    line: int
    message: str


@dataclass
class YamlDocument:
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[SourceProblem] = field(default_factory=list)

    def line_of(self, path: Path) -> int:
        """The line of a path, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), 1)


class _Builder:
    def __init__(self) -> None:
        self.constructor = yaml.constructor.SafeConstructor()
        self.lines: dict[Path, int] = {}
        self.problems: list[SourceProblem] = []

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    key = str(key) if not isinstance(key, bool) else str(key).lower()
                line = key_node.start_mark.line + 1
                if key in result:
                    self.problems.append(SourceProblem(line, f"duplicate key {key!r}"))
                self.lines[path + (key,)] = line
                result[key] = self.build(value_node, path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]
        try:
            value = self.constructor.construct_object(node, deep=True)
        except ValueError:
            # A scalar that looks like a timestamp but is no real date (2026-02-30): keep the text,
            # and let validation say what is wrong with it.
            value = node.value
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value


class YamlSyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def parse_yaml(text: str) -> YamlDocument:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"invalid YAML: {exc}") from exc
    if node is None:
        return YamlDocument(None, {(): 1})
    builder = _Builder()
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise YamlSyntaxError(mark.line + 1 if mark else 1, f"invalid YAML: {exc.problem}") from exc
    return YamlDocument(data, builder.lines, builder.problems)
