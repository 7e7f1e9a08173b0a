"""The collector composes its jobs at start-up from the config it is given: no job registers itself on
import (so no import cycle between collector.jobs and collector.cloud.job), and the cloud job reads the
file it was built with, never the one $RAMPART_CONFIG names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from collector.config import CollectorConfig
from collector.jobs import build_jobs, run_due
from collector.storage import models
from tests.support.live import LiveCollector

ROOT = Path(__file__).resolve().parents[2]


def fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_the_cloud_job_module_does_not_import_the_job_scheduler() -> None:
    # Imported first, in a fresh interpreter: a cycle would pull collector.jobs in half-initialised.
    code = (
        "import sys; import collector.cloud.job; print('collector.jobs' in sys.modules); "
        "from collector.jobs import build_jobs; print(sorted(build_jobs(None)))"
    )
    done = fresh(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["False", "['cloud', 'retention']"]


def cloud_file(path: Path, **cloud: object) -> str:
    path.write_text(yaml.safe_dump({"cloud": cloud} if cloud else {}))
    return str(path)


def test_a_cloud_job_uses_the_config_it_was_built_with_not_rampart_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = cloud_file(tmp_path / "given.yaml", tenant_id="tenant-given", interval="2h")
    monkeypatch.setenv("RAMPART_CONFIG", cloud_file(tmp_path / "environment.yaml", interval="3h"))
    collector = CollectorConfig()

    cloud = build_jobs(given)["cloud"]
    assert cloud.enabled(collector) and cloud.interval_s(collector) == 7200

    from_environment_file = build_jobs(str(tmp_path / "environment.yaml"))["cloud"]
    assert not from_environment_file.enabled(collector) and from_environment_file.interval_s(collector) == 10800
    assert not build_jobs(None)["cloud"].enabled(collector)  # no file given: none read, whatever the environment


def test_a_scheduled_cloud_run_reads_the_given_file_at_its_slot(
    live: LiveCollector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment's file has no cloud section: a job that read it would not run at all.
    monkeypatch.setenv("RAMPART_CONFIG", cloud_file(tmp_path / "environment.yaml"))
    given = cloud_file(tmp_path / "given.yaml", tenant_id="tenant-given")
    ran = run_due(live.engine, live.config, "composition-test", only={"cloud"}, jobs=build_jobs(given))
    assert [(r["job"], r["status"]) for r in ran] == [("cloud", "failed")]
    assert "cloud.client_id is not set" in ran[0]["detail"]["error"]
    (row,) = live.rows(sa.select(models.job_runs.c.status).where(models.job_runs.c.name == "cloud"))
    assert row.status == "failed"
