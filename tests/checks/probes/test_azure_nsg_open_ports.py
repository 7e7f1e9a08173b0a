"""azure_nsg_open_ports on recorded network security groups (tests/data/probes/azure_nsg_open_ports/)."""

from __future__ import annotations

from checks.results import Status
from tests.support.cloud_replay import run_example, run_probe


def test_rdp_open_through_a_range_and_ssh_denied_first() -> None:
    resources, _ = run_probe("azure_nsg_open_ports", "rdp-open")
    by_name = {r.name: r.facts for r in resources}
    assert by_name["web-nsg"] == {
        "open_ports": [3389],
        "open_rules": [
            {
                "rule": "AllowMgmt",
                "priority": 200,
                "port": 3389,
                "ports": ["22", "3380-3390"],
                "sources": ["0.0.0.0/0"],
                "protocol": "Tcp",
            }
        ],
        "inbound_rules": 6,  # three of its own, three default inbound rules
    }
    assert by_name["db-nsg"] == {"open_ports": [], "open_rules": [], "inbound_rules": 4}


def test_another_port_list() -> None:
    resources, _ = run_probe("azure_nsg_open_ports", "rdp-open", {"ports": [443, 22]})
    assert {r.name: r.facts["open_ports"] for r in resources} == {"web-nsg": [443], "db-nsg": []}


def test_the_example_check() -> None:
    statuses = {r.subject.name: r.status for r in run_example("azure_nsg_open_ports", "rdp-open")}
    assert statuses == {"web-nsg": Status.FAIL, "db-nsg": Status.PASS}
