"""An in-memory `CloudContext` that answers from recorded Graph and ARM responses, with no network.

A recording is a folder under tests/data/probes/<probe_id>/ holding `replay.json`:

    {"description": "...",
     "subscriptions": ["..."],              Azure: the subscriptions to check (as if configured)
     "emergency_accounts": ["..."],         the break-glass accounts of the collector's config
     "responses": [{"url": "https://graph.microsoft.com/v1.0/...?$select=...", "status": 200,
                    "file": "page-1.json"}, ...]}

and one JSON file per response body, in the shape Microsoft documents (SOURCES.md beside them says
where). A request is answered by its URL (path and query, the query in any order); a next link in a
body is followed verbatim, as the real client does. An error status raises the `CloudError` the real
client raises for it (collector/cloud/client.py), so the probe's error handling runs as in production.
A request with no recording fails the test (`Unrecorded`), naming the URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from checks.probes.cloud.context import (
    CloudError,
    LicenceMissing,
    Page,
    PermissionMissing,
    RequestFailed,
    Throttled,
)

GRAPH = "https://graph.microsoft.com"
ARM = "https://management.azure.com"
LICENCE_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
RECORDINGS = Path(__file__).resolve().parents[1] / "data" / "probes"
TENANT_ID = "11111111-2222-3333-4444-555555555555"


class Unrecorded(AssertionError):
    """The probe asked for a URL the recording does not have: the test, not the probe, is incomplete."""


def url_key(url: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """(host, path, sorted query pairs): two spellings of one request are one key."""
    parts = urlsplit(url)
    return parts.netloc.lower(), parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))


def with_query(root: str, path: str, params: dict[str, str] | None) -> str:
    if not params:
        return root + path
    return root + path + ("&" if "?" in path else "?") + urlencode(params, quote_via=quote, safe="$,'()")


@dataclass(frozen=True)
class Response:
    status: int
    body: Any


@dataclass
class ReplayContext:
    """One recording, seen as the tenant (`microsoft365`) or its subscriptions (`azure`)."""

    platform: str
    responses: dict[tuple[str, str, tuple[tuple[str, str], ...]], Response]
    subscription_ids: list[str] = field(default_factory=list)
    emergency: tuple[str, ...] = ()
    requested: list[str] = field(default_factory=list)  # every URL asked for, in order
    tenant_id: str = TENANT_ID

    @property
    def emergency_accounts(self) -> tuple[str, ...]:
        return self.emergency

    def graph_pages(self, path: str, params: dict[str, str] | None = None) -> Iterator[Page]:
        return self._pages(with_query(GRAPH, path, params), "@odata.nextLink")

    def graph_get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self._document(with_query(GRAPH, path, params))

    def subscriptions(self) -> list[str]:
        return list(self.subscription_ids)

    def arm_pages(self, path: str, api_version: str) -> Iterator[Page]:
        return self._pages(with_query(ARM, path, {"api-version": api_version}), "nextLink")

    def arm_get(self, path: str, api_version: str) -> dict[str, Any]:
        return self._document(with_query(ARM, path, {"api-version": api_version}))

    def _pages(self, url: str, link_key: str) -> Iterator[Page]:
        next_url: str | None = url
        while next_url:
            body = self._document(next_url)
            value = body.get("value")
            if not isinstance(value, list):
                raise RequestFailed(f"GET {urlsplit(next_url).path}: the reply has no `value` list")
            link = body.get(link_key)
            next_url = str(link) if link else None
            yield [item for item in value if isinstance(item, dict)]

    def _document(self, url: str) -> dict[str, Any]:
        self.requested.append(url)
        response = self.responses.get(url_key(url))
        if response is None:
            raise Unrecorded(f"no recorded response for GET {url}")
        if response.status >= 300:
            raise failure(url, response)
        if not isinstance(response.body, dict):
            raise RequestFailed(f"GET {urlsplit(url).path}: the reply is not a JSON object")
        return response.body


def failure(url: str, response: Response) -> CloudError:
    """The error the real client makes of a Graph or ARM error body (collector/cloud/client.py)."""
    api = "Graph" if urlsplit(url).netloc.lower() == urlsplit(GRAPH).netloc else "ARM"
    path = urlsplit(url).path
    error = response.body.get("error") if isinstance(response.body, dict) else None
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    message = str(error.get("message") or "") if isinstance(error, dict) else ""
    reason = (
        f"{api} GET {path}: HTTP {response.status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    )
    kind: type[CloudError] = RequestFailed
    if response.status == 403:
        kind = LicenceMissing if code == LICENCE_CODE else PermissionMissing
    elif response.status in (429, 503, 504):
        kind = Throttled
    return kind(reason, status=response.status, code=code, url=path)


def recording_dirs(probe_id: str) -> list[Path]:
    """Every recording of one probe (a folder with replay.json)."""
    return sorted(path.parent for path in (RECORDINGS / probe_id).glob("*/replay.json"))


def all_recordings() -> list[tuple[str, Path]]:
    """(probe id, recording folder) for every recording of every probe."""
    return [(path.parent.parent.name, path.parent) for path in sorted(RECORDINGS.glob("*/*/replay.json"))]


def load(folder: Path, platform: str) -> ReplayContext:
    """The recording in `folder` as a context for `platform`; a broken recording fails loudly."""
    manifest = json.loads((folder / "replay.json").read_text())
    responses: dict[tuple[str, str, tuple[tuple[str, str], ...]], Response] = {}
    for entry in manifest["responses"]:
        key = url_key(entry["url"])
        if key in responses:
            raise ValueError(f"{folder}/replay.json: {entry['url']} is recorded twice")
        body = json.loads((folder / entry["file"]).read_text())
        responses[key] = Response(int(entry.get("status", 200)), body)
    return ReplayContext(
        platform=platform,
        responses=responses,
        subscription_ids=[str(s) for s in manifest.get("subscriptions", [])],
        emergency=tuple(str(a) for a in manifest.get("emergency_accounts", [])),
    )


def recording(probe_id: str, name: str, platform: str) -> ReplayContext:
    return load(RECORDINGS / probe_id / name, platform)


def run_probe(probe_id: str, name: str, params: dict[str, Any] | None = None) -> tuple[Any, ReplayContext]:
    """(what the probe's collector returns on a recording, the context, to see what it asked for)."""
    from checks.probes import registry

    spec = registry.get(probe_id)
    assert spec is not None, f"no probe {probe_id}"
    (platform,) = spec.platforms
    context = recording(probe_id, name, platform)
    return spec.collectors[platform](context, spec.params_with_defaults(params or {})), context


def run_example(probe_id: str, name: str) -> list[Any]:
    """The results of the probe's own YAML example, judged on a recording by the policy evaluator."""
    from checks.policy.evaluate import CachingRunner, evaluate_policy
    from checks.policy.loader import load_policy_text
    from checks.probes import registry
    from checks.results import Subject, SubjectKind

    spec = registry.get(probe_id)
    assert spec is not None, f"no probe {probe_id}"
    (platform,) = spec.platforms
    text = 'id: example\nversion: "1"\ntitle: Example\nchecks:\n' + "".join(
        "  " + line + "\n" for line in spec.example.splitlines()
    )
    policy = load_policy_text(text, f"{probe_id} example")
    context = recording(probe_id, name, platform)
    tenant = Subject(SubjectKind.TENANT, context.tenant_id, "Contoso")
    evaluation = evaluate_policy(policy, subject=tenant, platform=platform, run_probe=CachingRunner(context))
    return list(evaluation.results)
