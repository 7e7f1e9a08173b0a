"""The third-party assets the collector serves: GOV.UK Frontend (CSS, JS, fonts, images) and Swagger UI.

They come from npm at build time (`make assets`: `npm ci` in collector/dashboard/frontend, from its
committed package-lock.json, then this module copies what is served into collector/dashboard/built/,
which is not committed). Nothing is fetched from a CDN at run time: the network may be isolated.

    python -m collector.dashboard.assets        # copy from node_modules into built/

A collector whose assets were not built still starts: pages say so, and /assets/ answers 404 with what
to run.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent
FRONTEND = HERE / "frontend"
BUILT = HERE / "built"
OWN = HERE / "static"  # ours, committed: served at /static/
MARKER = BUILT / "built.json"

GOVUK = FRONTEND / "node_modules" / "govuk-frontend" / "dist" / "govuk"
SWAGGER = FRONTEND / "node_modules" / "swagger-ui-dist"
# (source, destination under built/)
COPIES = (
    (GOVUK / "govuk-frontend.min.css", "govuk-frontend.min.css"),
    (GOVUK / "govuk-frontend.min.js", "govuk-frontend.min.js"),
    (GOVUK / "assets" / "fonts", "fonts"),
    (GOVUK / "assets" / "images", "images"),
    (GOVUK / "assets" / "manifest.json", "manifest.json"),
    (SWAGGER / "swagger-ui-bundle.js", "swagger-ui/swagger-ui-bundle.js"),
    (SWAGGER / "swagger-ui.css", "swagger-ui/swagger-ui.css"),
)


def built(directory: Path | None = None) -> bool:
    return ((directory or BUILT) / MARKER.name).is_file()


def directory_of(configured: str) -> Path:
    return Path(configured) if configured else BUILT


def versions() -> dict[str, str]:
    found = {}
    for name, root in (("govuk-frontend", GOVUK.parents[1]), ("swagger-ui-dist", SWAGGER)):
        package = root / "package.json"
        if package.is_file():
            found[name] = str(json.loads(package.read_text(encoding="utf-8")).get("version", ""))
    return found


def copy_assets() -> list[str]:
    missing = [str(source) for source, _ in COPIES if not source.exists()]
    if missing:
        raise SystemExit(f"missing {missing[0]}: run `npm ci --ignore-scripts` in {FRONTEND} first (or `make assets`)")
    if BUILT.exists():
        shutil.rmtree(BUILT)
    copied = []
    for source, name in COPIES:
        target = BUILT / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
        copied.append(name)
    MARKER.write_text(json.dumps({"versions": versions(), "files": copied}, indent=2) + "\n", encoding="utf-8")
    return copied


def main() -> int:
    copied = copy_assets()
    print(f"dashboard assets: {len(copied)} entries copied into {BUILT} ({json.dumps(versions())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
