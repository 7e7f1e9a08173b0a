"""The editor schema accepts an input reference wherever a probe parameter goes, as the loader does."""

from __future__ import annotations

import jsonschema
import yaml

from checks.policy.schema import policy_schema

POLICY = """
id: p
version: "1"
title: P
inputs:
  cap: {type: integer, default: 10, description: cap}
checks:
  - id: c
    title: t
    description: d
    rationale: r
    remediation: m
    severity: low
    probe: {name: entra_mfa_coverage, params: {evidence_limit: %s}}
    expect: {fact: members, gte: 1}
"""


def errors(value: str) -> list[str]:
    document = yaml.safe_load(POLICY % value)
    return [e.message for e in jsonschema.Draft202012Validator(policy_schema()).iter_errors(document)]


def test_an_input_reference_is_a_valid_parameter() -> None:
    assert errors("{input: cap}") == []


def test_a_literal_of_the_wrong_type_is_still_refused() -> None:
    assert errors('"ten"')
    assert errors("{inptu: cap}")
