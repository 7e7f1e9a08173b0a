"""The probe layout (issue 17): every path follows from the probe's name.

A probe is the package checks/probes/<probe_id>/ (or checks/probes/<group>/<probe_id>/) whose spec.py holds
`SPEC = register(ProbeSpec(name="<probe_id>", ...))`; its tests are tests/checks/probes/test_<probe_id>.py.
No exemption: a probe defined anywhere else fails here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import checks.probes
from checks.probes import registry
from checks.probes.registry import ProbeLayoutError, ProbeSpec

PROBES_DIR = Path(checks.probes.__file__).parent
TESTS_DIR = Path(__file__).parent
# The modules that are no single probe's (docs/architecture.md), per folder.
SHARED = {
    PROBES_DIR: {"__init__", "host", "local", "replay", "common", "grammar", "redact", "windows", "registry"},
    PROBES_DIR / "cloud": {"__init__", "context", "common", "directory", "conditional_access"},
}


def holders(spec: ProbeSpec) -> list[str]:
    """The checks.probes modules that hold `spec` as a global (where it is defined, and any re-export)."""
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if name.startswith("checks.probes.") and any(value is spec for value in vars(module).values())
    )


PROBES = list(registry.all_probes())


def package_of(spec: ProbeSpec) -> str:
    return f"{holders(spec)[0].rpartition('.')[0]}"


@pytest.mark.parametrize("spec", PROBES, ids=lambda s: s.name)
def test_a_probe_is_the_package_named_after_it(spec: ProbeSpec) -> None:
    assert holders(spec) == [f"{package_of(spec)}.spec"], f"{spec.name} must be defined in its package's spec.py only"
    package = package_of(spec)
    assert package.rpartition(".")[2] == spec.name
    folder = PROBES_DIR.joinpath(*package.split(".")[2:])
    assert (folder / "spec.py").is_file()
    assert importlib.import_module(f"{package}.spec").SPEC is spec


@pytest.mark.parametrize("spec", PROBES, ids=lambda s: s.name)
def test_a_probe_collects_with_its_own_modules(spec: ProbeSpec) -> None:
    package = package_of(spec)
    # A shared wrapper (azure_collector's walk over subscriptions) counts as the code it wraps.
    own = {p: inspect.unwrap(f) for p, f in spec.collectors.items()}
    outside = {p: f.__module__ for p, f in own.items() if not f.__module__.startswith(f"{package}.")}
    assert outside == {}, f"{spec.name}: collectors outside {package}"


@pytest.mark.parametrize("spec", PROBES, ids=lambda s: s.name)
def test_a_probe_has_its_test_file(spec: ProbeSpec) -> None:
    assert (TESTS_DIR / f"test_{spec.name}.py").is_file(), f"tests/checks/probes/test_{spec.name}.py is missing"


def test_every_spec_file_is_a_registered_probe() -> None:
    registered = {spec.name: spec for spec in PROBES}
    for spec_file in sorted(PROBES_DIR.rglob("spec.py")):
        folder = spec_file.parent
        module = ".".join(("checks", "probes", *folder.relative_to(PROBES_DIR).parts, "spec"))
        assert folder.name in registered, f"{spec_file} is not registered under {folder.name!r}"
        assert importlib.import_module(module).SPEC is registered[folder.name]


def test_every_probe_is_found_by_the_walk() -> None:
    walked = {spec.name for spec in registry.load_specs("checks.probes")}
    assert walked == {spec.name for spec in PROBES}


@pytest.mark.parametrize("folder", list(SHARED), ids=lambda p: str(p.relative_to(PROBES_DIR.parent)))
def test_no_module_of_one_probe_is_left_loose(folder: Path) -> None:
    loose = {path.stem for path in folder.glob("*.py")} - SHARED[folder]
    assert sorted(loose) == [], f"modules of one probe belong in its package, shared ones in SHARED: {sorted(loose)}"


def test_a_probe_package_init_is_a_docstring_only() -> None:
    for spec_file in sorted(PROBES_DIR.rglob("spec.py")):
        body = ast.parse((spec_file.parent / "__init__.py").read_text(encoding="utf-8")).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), (
            f"{spec_file.parent}/__init__.py: a docstring saying what the probe observes, nothing else"
        )


# --- the walk on packages made for the test ----------------------------------------------------------------

SPEC_TEXT = """\
from checks.probes.registry import Field, ProbeSpec, register

SPEC = {wrap}(ProbeSpec(name={name!r}, description="d", facts=(Field("f", "boolean", "f"),)))
"""


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """An importable package of our own, forgotten (modules and registered probes) afterwards."""
    name = f"rampart_layout_{uuid.uuid4().hex}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text('"""Probes made by a test."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(registry._REGISTRY)
    yield name, tmp_path / name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]
    for probe in set(registry._REGISTRY) - before:
        del registry._REGISTRY[probe]


def probe_folder(root: Path, *parts: str, spec: str | None) -> None:
    folder = root.joinpath(*parts)
    for depth in range(1, len(parts) + 1):
        root.joinpath(*parts[:depth]).mkdir(exist_ok=True)
        root.joinpath(*parts[:depth], "__init__.py").write_text('"""A folder made by a test."""\n')
    if spec is not None:
        (folder / "spec.py").write_text(textwrap.dedent(spec))


def test_a_spec_named_unlike_its_folder_is_refused(scratch: tuple[str, Path]) -> None:
    package, root = scratch
    probe_folder(root, "screen_lock_old", spec=SPEC_TEXT.format(wrap="", name="screen_lock_new"))
    with pytest.raises(ProbeLayoutError, match=r"spec\.py: the probe is named 'screen_lock_new' but its folder is "):
        registry.load_specs(package)


def test_a_spec_module_without_a_registered_spec_is_refused(scratch: tuple[str, Path]) -> None:
    package, root = scratch
    probe_folder(root, "no_spec", spec="NOT_A_SPEC = 1\n")
    with pytest.raises(ProbeLayoutError, match=r"no_spec/spec\.py: defines no SPEC"):
        registry.load_specs(package)
    probe_folder(root, "no_spec", spec=SPEC_TEXT.format(wrap="", name="no_spec"))
    importlib.invalidate_caches()
    sys.modules.pop(f"{package}.no_spec.spec", None)
    with pytest.raises(ProbeLayoutError, match=r"SPEC is not registered"):
        registry.load_specs(package)


def test_grouping_folders_are_walked_into(scratch: tuple[str, Path]) -> None:
    package, root = scratch
    name = f"grouped_{uuid.uuid4().hex[:8]}"
    probe_folder(root, "group", name, spec=SPEC_TEXT.format(wrap="register", name=name))
    probe_folder(root, "empty_group", spec=None)
    (root / "loose.py").write_text("raise AssertionError('a module outside a probe package is never imported')\n")
    (specs,) = registry.load_specs(package)
    assert specs.name == name and registry._REGISTRY[name] is specs
