"""docs/architecture.md stays true: every path it names exists, and the arrows of its map point only into
checks/ (agent/ and collector/ import checks/, never each other; checks/ imports neither)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
# `collector/storage/queries/`, `checks/probes/cloud/`, `policies/mappings/areas.yaml`, docs/probes.md ...
PATH = re.compile(r"(?<![\w/.<])((?:checks|agent|collector|policies|tests|docs)/[\w./]*[\w/])")


def named_paths() -> list[str]:
    return sorted({match.group(1) for match in PATH.finditer(DOC.read_text(encoding="utf-8"))})


def test_the_document_names_real_paths() -> None:
    paths = named_paths()
    assert len(paths) > 40, paths  # the pattern still finds what the document names
    missing = [path for path in paths if "<" not in path and not (ROOT / path).exists()]
    assert missing == []


def imported_packages(package: str) -> set[tuple[str, str]]:
    """(file, top-level package) of every import in `package`, at any depth (lazy imports too)."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(ROOT)), alias.name.split(".")[0]) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(ROOT)), node.module.split(".")[0]))
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"), [("checks", {"agent", "collector"}), ("agent", {"collector"}), ("collector", {"agent"})]
)
def test_arrows_point_only_into_checks(package: str, forbidden: set[str]) -> None:
    assert sorted(f"{file} imports {top}" for file, top in imported_packages(package) if top in forbidden) == []
