"""`rampart-collector host NAME` when several agents share the host name (two agents on one machine, or
machines named alike), run as a process: it says the name is ambiguous, lists them (agent id, group, last
seen), exits 2, and takes an agent id instead."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.agents import SimAgent, make_results
from tests.support.collector import collector_process


def test_host_by_an_ambiguous_name_lists_the_agents_and_exits_2(tmp_path: Path) -> None:
    with collector_process(tmp_path) as collector:
        enrolled = []
        for group in ("servers", "labs"):
            created = collector.cli("enroll-token", "create", "--group", group, "--format", "json")
            assert created.returncode == 0, created.stderr
            agent = SimAgent(collector.url, collector.ca_file)
            host = {"hostname": "vm", "os": "linux", "os_version": "12", "agent_version": "0.1.0"}
            assert agent.enroll(json.loads(created.stdout)["token"], host).status_code == 201
            enrolled.append(agent)
        assert enrolled[0].report(make_results(2)).status_code == 200  # heard from: a last-seen time

        shown = collector.cli("host", "VM")
        assert shown.returncode == 2, (shown.stdout, shown.stderr)
        assert "host name 'VM' is ambiguous: 2 agents have it; name one by its agent id" in shown.stderr
        lines = shown.stderr.splitlines()
        assert lines[1].split() == ["AGENT", "ID", "GROUP", "LAST", "SEEN", "STATE"]
        rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
        assert rows[enrolled[0].agent_id][0] == "servers" and rows[enrolled[0].agent_id][1].endswith("Z")
        assert rows[enrolled[1].agent_id][0] == "labs"
        assert shown.stdout == ""

        by_id = collector.cli("host", enrolled[1].agent_id, "--format", "json")
        assert by_id.returncode == 0, by_id.stderr
        assert json.loads(by_id.stdout)["host"]["group"] == "labs"
        for agent in enrolled:
            agent.session.close()
