#!/usr/bin/env python3
"""Build the agent's Debian package from its wheel: `make package` runs it (docs/deploy.md).

    python3 packaging/build_deb.py deb dist/rampart-0.1.0-py3-none-any.whl --out dist
    python3 packaging/build_deb.py conffile          # the /etc/rampart/config.yaml it ships, on stdout

The package holds a virtual environment in /opt/rampart-agent with the agent's wheel and its dependencies
(binary wheels from the package index; never the collector's extra), `/usr/bin/rampart-agent`, the systemd
units from agent/deploy/ and /etc/rampart/config.yaml as a conffile. A virtual environment is tied to its
interpreter, so the one built here runs only where the same interpreter exists at the same path: by default
Debian 12's /usr/bin/python3.11, and the package depends on `python3.11` to say so. `--python` names another
(e.g. Ubuntu 24.04's /usr/bin/python3.12 when building there). The interpreter running this script only
lends its pip (22.3 or later, for `pip --python`).

Plain dpkg-deb rather than debhelper or dh-virtualenv: neither is installed here, and a package whose only
content is a prepared tree needs no source package; the maintainer scripts in packaging/debian/ are what
dh_installsystemd would write, plus the `rampart` user. Needs dpkg-deb and dpkg-shlibdeps (dpkg-dev).
"""

from __future__ import annotations

import argparse
import csv
import email.utils
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_FILES = ROOT / "packaging" / "debian"
DEPLOY = ROOT / "agent" / "deploy"
PACKAGE = "rampart-agent"
VENV = "/opt/rampart-agent"
UNITS = ("rampart-agent.service", "rampart-agent-once.service", "rampart-agent.timer")
CONFFILE = "/etc/rampart/config.yaml"
DEFAULT_PYTHON = "/usr/bin/python3.11"
DEFAULT_MAINTAINER = "Rampart maintainers <maintainers@users.noreply.r-seed-1a7df8b1.example>"
# Distributions the agent must never carry: the collector's server stack (pyproject.toml, `collector` extra).
SERVER_ONLY = ("fastapi", "uvicorn", "sqlmodel", "sqlalchemy", "alembic", "psycopg", "msal", "jinja2")


class BuildError(Exception):
    """Something the build needs is missing or wrong: printed as `build_deb: error: ...`, exit 1."""


def run(
    argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def debian_version(version: str) -> str:
    """A PEP 440 version as a Debian one that sorts the same: pre-releases before the release (`~`), a dev
    release before anything it precedes (`~~` ahead of a final release's pre-releases), posts after (`+`)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)*)(?:(a|b|rc)(\d+))?(?:\.post(\d+))?(?:\.dev(\d+))?", version)
    if not match:
        raise BuildError(f"version {version!r}: not a release, pre-, post- or dev release PEP 440 names")
    release, pre, pre_number, post, dev = match.groups()
    upstream = release
    if pre:
        upstream += f"~{pre}{pre_number}"
    if post:
        upstream += f"+post{post}"
    if dev:
        upstream += ("~dev" if pre or post else "~~dev") + dev
    return f"{upstream}-1"


def agent_conffile(example: str) -> str:
    """config.example.yaml's `agent:` section, every setting commented out at its default."""
    lines = example.splitlines()
    try:
        start = lines.index("agent:")
    except ValueError:
        raise BuildError("config.example.yaml has no top-level `agent:` section") from None
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith((" ", "#"))), len(lines)
    )
    out = [
        "# Rampart agent configuration, installed by the rampart-agent package: your changes are kept on",
        "# upgrade. Every setting is shown commented out at its default; remove the `#` to change one.",
        "# Environment variables RAMPART_AGENT__<KEY> override settings. See docs/deploy.md; the collector's",
        "# and the cloud checks' sections are not for agents.",
        "",
        "agent:",
    ]
    for line in lines[start + 1 : end]:
        text = line.lstrip()
        indent = line[: len(line) - len(text)]
        out.append(line if not text or text.startswith("#") else f"{indent}#{text}")
    while out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def wheel_version(wheel: Path) -> str:
    match = re.fullmatch(r"rampart-([^-]+)-py3-none-any\.whl", wheel.name)
    if not match:
        raise BuildError(f"{wheel}: not a rampart wheel (rampart-VERSION-py3-none-any.whl)")
    return match.group(1)


def build_venv(stage: Path, python: str, wheel: Path, constraints: Path | None) -> None:
    """The environment, with no pip or setuptools of its own: this interpreter's pip installs into it."""
    venv = stage / VENV.lstrip("/")
    run([python, "-m", "venv", "--without-pip", str(venv)])
    # Binary wheels only: no compiler runs, and what is installed is what the index built.
    install = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "--disable-pip-version-check"]
    install += ["--no-input", "install", "--quiet", "--no-compile", "--only-binary=:all:", str(wheel)]
    if constraints:
        install += ["--constraint", str(constraints)]
    run(install, env={**os.environ, "PIP_NO_WARN_SCRIPT_LOCATION": "1"})


def site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python3.*/site-packages")
    return found


def distributions(venv: Path) -> list[tuple[str, str, str]]:
    """(name, version, licence) of every distribution installed in the environment."""
    found = []
    for meta in sorted(site_packages(venv).glob("*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(meta.read_text(encoding="utf-8"), headersonly=True)
        licence = headers.get("License-Expression") or headers.get("License") or ""
        if not licence or len(licence) > 60 or "\n" in licence:  # some put the whole licence text here
            classifiers = [c.split(" :: ")[-1] for c in headers.get_all("Classifier") or [] if c.startswith("License")]
            licence = ", ".join(classifiers) or "see its METADATA"
        found.append((headers["Name"], headers["Version"], licence))
    return found


def drop_collector(venv: Path) -> None:
    """The wheel carries the collector's code too; endpoints get none of it (nor its script)."""
    packages = site_packages(venv)
    shutil.rmtree(packages / "collector")
    (venv / "bin" / "rampart-collector").unlink()
    (record,) = packages.glob("rampart-*.dist-info/RECORD")
    kept = [row for row in csv.reader(record.read_text().splitlines()) if not _is_collector(row[0])]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(kept)
    record.write_text(buffer.getvalue())


def _is_collector(path: str) -> bool:
    return path.startswith("collector/") or path.endswith("/bin/rampart-collector")


def relocate(stage: Path) -> None:
    """Make the environment built under `stage` run from /opt/rampart-agent."""
    venv = stage / VENV.lstrip("/")
    built_at = str(venv)
    for activate in venv.glob("bin/[Aa]ctivate*"):
        activate.unlink()  # shell activation scripts: nobody activates a service's environment
    for script in (venv / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(b"#!" + built_at.encode()):
            script.write_bytes(b"#!" + VENV.encode() + data[2 + len(built_at) :])
    shutil.rmtree(venv / "include")  # headers for building extensions: empty, and nothing is built here
    for path in site_packages(venv).rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o644)  # modules and libraries are loaded, never run: no executable bits
    config = venv / "pyvenv.cfg"
    config.write_text(config.read_text().replace(built_at, VENV))
    leftovers = [
        str(path.relative_to(stage))
        for path in venv.rglob("*")
        if path.is_file() and not path.is_symlink() and built_at.encode() in path.read_bytes()
    ]
    if leftovers:
        raise BuildError(f"the build directory is still named in: {', '.join(leftovers[:10])}")


def compile_bytecode(stage: Path, python: str) -> None:
    """Bytecode for every module, made by the target interpreter: the service sees /opt read-only.

    unchecked-hash: valid whatever the files' times (dpkg-deb may clamp them to SOURCE_DATE_EPOCH), and the
    package replaces sources and bytecode together.
    """
    lib = stage / VENV.lstrip("/") / "lib"
    run(
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(stage),
            "-p",
            "/",
            str(lib),
        ]
    )


def shlib_depends(stage: Path) -> str:
    """The shared libraries the wheels' native extensions need, as Depends (dpkg-shlibdeps decides)."""
    objects = [str(p) for p in (stage / VENV.lstrip("/")).rglob("*.so*") if p.is_file() and not p.is_symlink()]
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "debian").mkdir()
        (Path(scratch) / "debian" / "control").write_text(
            f"Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n"
        )
        result = run(["dpkg-shlibdeps", "-O", "--ignore-missing-info", f"-l{stage}{VENV}", *objects], cwd=scratch)
    line = next((x for x in result.stdout.splitlines() if x.startswith("shlibs:Depends=")), "shlibs:Depends=")
    return line.split("=", 1)[1]


def copyright_file(version: str, venv: Path, year: int) -> str:
    bundled = "\n".join(f"  {name} {ver}: {licence}" for name, ver, licence in distributions(venv) if name != "rampart")
    return (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        f"Upstream-Name: rampart\nComment: rampart {version} with the Python distributions it depends on, in\n"
        f" {VENV}. Each one's licence text is in its .dist-info directory there.\n\n"
        f"Files: *\nCopyright: {year} Rampart maintainers\nLicense: proprietary\n"
        " Proprietary; not for redistribution outside the organisation that built it.\n\n"
        f"Files: {VENV.lstrip('/')}/lib/*\nCopyright: their authors\nLicense: various\n"
        " The bundled distributions and their licences:\n" + bundled.replace("\n\n", "\n") + "\n"
    )


def changelog(version: str, maintainer: str, when: float) -> bytes:
    text = (
        f"{PACKAGE} ({version}) unstable; urgency=medium\n\n"
        f"  * Built from the rampart wheel {version.rsplit('-', 1)[0]} (CHANGELOG.md upstream).\n\n"
        f" -- {maintainer}  {email.utils.formatdate(when)}\n"
    )
    return gzip.compress(text.encode(), compresslevel=9, mtime=int(when))


def install_file(source: Path | bytes | str, target: Path, mode: int = 0o644) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, Path):
        shutil.copyfile(source, target)
    else:
        target.write_bytes(source.encode() if isinstance(source, str) else source)
    target.chmod(mode)


def files_under(stage: Path) -> Iterator[Path]:
    for path in sorted(stage.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.relative_to(stage).parts[0] != "DEBIAN":
            yield path


def build_deb(wheel: Path, out: Path, python: str, maintainer: str, constraints: Path | None) -> Path:
    version = debian_version(wheel_version(wheel))
    if not Path(python).is_file():
        raise BuildError(f"{python} does not exist: the package's environment is built for the target's interpreter")
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "dpkg"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} is not installed (Debian packages dpkg and dpkg-dev)")
    interpreter = run([python, "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"]).stdout.strip()
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    when = float(os.environ.get("SOURCE_DATE_EPOCH") or time.time())
    os.umask(0o022)
    with tempfile.TemporaryDirectory(prefix="rampart-deb-") as scratch:
        stage = Path(scratch) / "root"
        venv = stage / VENV.lstrip("/")
        build_venv(stage, python, wheel, constraints)
        installed = {name.lower() for name, _, _ in distributions(venv)}
        pulled = sorted(installed & set(SERVER_ONLY))
        if pulled:
            raise BuildError(f"the agent's environment pulled in server dependencies: {', '.join(pulled)}")
        drop_collector(venv)
        relocate(stage)
        compile_bytecode(stage, python)
        (stage / "usr" / "bin").mkdir(parents=True)
        install_file(DEBIAN_FILES / "rampart-agent", stage / "usr/bin/rampart-agent", 0o755)
        for unit in UNITS:
            install_file(DEPLOY / unit, stage / "lib/systemd/system" / unit)
        install_file(agent_conffile((ROOT / "config.example.yaml").read_text()), stage / CONFFILE.lstrip("/"))
        doc = stage / "usr/share/doc" / PACKAGE
        install_file(copyright_file(version, venv, time.gmtime(when).tm_year), doc / "copyright")
        install_file(changelog(version, maintainer, when), doc / "changelog.Debian.gz")
        packages = "".join(f"{name}=={ver}\n" for name, ver, _ in distributions(venv))
        install_file(packages, doc / "python-packages.txt")
        install_file(
            gzip.compress((DEBIAN_FILES / "rampart-agent.8").read_bytes(), 9, mtime=int(when)),
            stage / "usr/share/man/man8/rampart-agent.8.gz",
        )
        install_file(DEBIAN_FILES / "lintian-overrides", stage / "usr/share/lintian/overrides" / PACKAGE)

        control = stage / "DEBIAN"
        control.mkdir()
        for script in ("postinst", "prerm", "postrm"):
            install_file(DEBIAN_FILES / script, control / script, 0o755)
        install_file(CONFFILE + "\n", control / "conffiles")
        conffiles = {CONFFILE.lstrip("/")}
        install_file(
            "".join(
                f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(stage)}\n"
                for p in files_under(stage)
                if str(p.relative_to(stage)) not in conffiles
            ),
            control / "md5sums",
        )
        size_kb = sum(p.stat().st_size for p in files_under(stage)) // 1024 + 1
        depends = ", ".join(
            part for part in (interpreter, shlib_depends(stage), "adduser", "init-system-helpers (>= 1.54~)") if part
        )
        install_file(
            f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: {maintainer}\n"
            f"Installed-Size: {size_kb}\nDepends: {depends}\nSection: admin\nPriority: optional\n"
            "Homepage: https://github.com/rampart/rampart\n"
            "Description: Rampart security-posture agent\n"
            " Runs the checks of a YAML policy on this machine (patch level, disk\n"
            " encryption, firewall, hardening), keeps the results in a crash-safe spool\n"
            " and delivers them, signed, to a Rampart collector. It observes and never\n"
            " changes the machine.\n"
            " .\n"
            f" Installed in {VENV}, its own Python environment for {interpreter};\n"
            " run by systemd as the rampart user with two capabilities.\n",
            control / "control",
        )
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{PACKAGE}_{version}_{arch}.deb"
        # xz at its fastest level: an eighth bigger than at the default level, and a quarter of the time.
        run(["dpkg-deb", "--root-owner-group", "-Zxz", "-z1", "--build", str(stage), str(target)])
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_deb", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    deb = commands.add_parser("deb", help="build the .deb from the agent's wheel")
    deb.add_argument("wheel", type=Path)
    deb.add_argument("--out", type=Path, default=ROOT / "dist", help="output directory (default: dist/)")
    deb.add_argument("--python", default=DEFAULT_PYTHON, help=f"the target's interpreter (default: {DEFAULT_PYTHON})")
    deb.add_argument("--maintainer", default=os.environ.get("RAMPART_DEB_MAINTAINER", DEFAULT_MAINTAINER))
    deb.add_argument("--constraints", type=Path, help="pip constraints file pinning the dependencies")
    commands.add_parser("conffile", help="print the /etc/rampart/config.yaml the package ships")
    args = parser.parse_args(argv)
    try:
        if args.command == "conffile":
            sys.stdout.write(agent_conffile((ROOT / "config.example.yaml").read_text()))
            return 0
        if not args.wheel.is_file():
            raise BuildError(f"{args.wheel}: no such wheel (run `python -m build` first, or `make package`)")
        print(build_deb(args.wheel.resolve(), args.out.resolve(), args.python, args.maintainer, args.constraints))
    except BuildError as exc:
        print(f"build_deb: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
