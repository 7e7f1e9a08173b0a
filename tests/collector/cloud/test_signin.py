"""Signing in through msal against the fake tenant: secret, certificate, refusals, trust and clouds."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.results import Status
from collector.cloud.config import CloudConfig
from collector.cloud.endpoints import resolve
from tests.collector.cloud.conftest import cloud_config, result_of, run_checks
from tests.fakes.microsoft import CLIENT_ID, CLIENT_SECRET, App, FakeMicrosoft, make_certificate

TOKEN_PATH_SUFFIX = "/oauth2/v2.0/token"


def token_requests(fake: FakeMicrosoft) -> int:
    return sum(1 for r in fake.requests if r.path.endswith(TOKEN_PATH_SUFFIX))


def test_client_secret_sign_in_reads_discovery_then_gets_one_token_per_api(fake: FakeMicrosoft) -> None:
    run = run_checks(fake)
    assert {r.status for r in run.results} == {Status.PASS}
    discovery = [r for r in fake.requests if r.path.endswith("/v2.0/.well-known/openid-configuration")]
    assert len(discovery) == 1
    # msal caches the token: one for Graph, one for ARM, however many requests follow.
    assert token_requests(fake) == 2
    assert run.stats.requests > 10


def test_certificate_sign_in_sends_an_rs256_assertion_the_tenant_verifies(fake: FakeMicrosoft) -> None:
    certificate = fake.scenario.apps[CLIENT_ID].certificate
    assert certificate is not None
    run = run_checks(fake, client_secret="", certificate_path=str(certificate.pem_path))
    assert {r.status for r in run.results} == {Status.PASS}
    assert token_requests(fake) == 2


def test_encrypted_certificate_key_needs_its_password(fake: FakeMicrosoft, tmp_path: Path) -> None:
    certificate = make_certificate(tmp_path, "locked", password="pem-pass")
    fake.scenario.apps[CLIENT_ID] = App(CLIENT_ID, certificate=certificate)
    run = run_checks(
        fake, client_secret="", certificate_path=str(certificate.pem_path), certificate_password="pem-pass"
    )
    assert {r.status for r in run.results} == {Status.PASS}

    refused = run_checks(fake, client_secret="", certificate_path=str(certificate.pem_path))
    reasons = {r.reason for r in refused.results}
    assert {r.status for r in refused.results} == {Status.ERROR}
    assert any("certificate_password" in reason for reason in reasons)


def test_a_certificate_the_app_does_not_have_is_refused(fake: FakeMicrosoft, tmp_path: Path) -> None:
    stranger = make_certificate(tmp_path, "stranger")
    run = run_checks(fake, client_secret="", certificate_path=str(stranger.pem_path))
    assert {r.status for r in run.results} == {Status.ERROR}
    assert "AADSTS700027" in run.results[0].reason


def test_bad_secret_is_an_error_on_every_check_never_a_fail_and_never_shows_the_secret(fake: FakeMicrosoft) -> None:
    wrong = "wrong-secret-value-123"
    run = run_checks(fake, client_secret=wrong)
    assert run.results and {r.status for r in run.results} == {Status.ERROR}
    reason = result_of(run, "mfa-coverage").reason
    assert "invalid_client" in reason and "AADSTS7000215" in reason
    for result in run.results:
        assert wrong not in result.reason and CLIENT_SECRET not in result.reason
        assert wrong not in repr(result.to_dict())
    # The refusal is remembered for the run instead of being retried by every probe.
    assert token_requests(fake) == 1
    assert not fake.paths("/graph") and not fake.paths("/arm")


def test_unknown_tenant_is_an_error_naming_the_sign_in_service(fake: FakeMicrosoft) -> None:
    run = run_checks(fake, tenant_id="99999999-0000-0000-0000-000000000000")
    assert {r.status for r in run.results} == {Status.ERROR}
    assert "sign-in" in run.results[0].reason


def test_configured_ca_wins_over_the_environment(fake: FakeMicrosoft, monkeypatch: pytest.MonkeyPatch) -> None:
    # The environment names a CA bundle that does not exist: requests would fail if it listened to it.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    run = run_checks(fake)
    assert {r.status for r in run.results} == {Status.PASS}


def test_the_environment_cannot_make_us_trust_a_ca_the_config_does_not_name(
    fake: FakeMicrosoft, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake's CA is in the environment but not in the config: the public CAs do not know it.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_path)
    monkeypatch.setenv("CURL_CA_BUNDLE", fake.ca_path)
    run = run_checks(fake, ca_bundle="")
    assert {r.status for r in run.results} == {Status.ERROR}
    assert "CERTIFICATE_VERIFY_FAILED" in run.results[0].reason or "SSL" in run.results[0].reason
    assert not fake.paths("/graph")


def test_national_clouds_resolve_to_their_own_endpoints() -> None:
    def endpoints(cloud: str) -> tuple[str, str, str, bool | None]:
        resolved = resolve(CloudConfig(tenant_id="t", cloud=cloud))
        return resolved.authority, resolved.graph_scope, resolved.arm_scope, resolved.instance_discovery

    assert endpoints("public") == (
        "https://login.microsoftonline.com/t",
        "https://graph.microsoft.com/.default",
        "https://management.azure.com/.default",
        None,
    )
    assert endpoints("usgov")[:3] == (
        "https://login.microsoftonline.us/t",
        "https://graph.microsoft.us/.default",
        "https://management.usgovcloudapi.net/.default",
    )
    assert endpoints("usgov_dod")[1] == "https://dod-graph.microsoft.us/.default"
    assert endpoints("china")[:3] == (
        "https://login.chinacloudapi.cn/t",
        "https://microsoftgraph.chinacloudapi.cn/.default",
        "https://management.chinacloudapi.cn/.default",
    )
    # msal's instance discovery would ask login.microsoftonline.com about a national authority.
    assert endpoints("usgov")[3] is False and endpoints("china")[3] is False


def test_explicit_urls_override_the_cloud(fake: FakeMicrosoft) -> None:
    config = cloud_config(fake, cloud="china")
    resolved = resolve(config)
    assert resolved.authority == f"{fake.base_url}/{config.tenant_id}"
    assert resolved.graph == fake.graph_url and resolved.instance_discovery is False
