"""Rendering pages: one Jinja2 environment with autoescaping on and the govuk-frontend-jinja macros.

Everything that comes from agents, policies or people (host names, facts, titles, waiver text) reaches a
page through autoescaping only: nothing is marked safe that was not written here.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader, select_autoescape

from checks import __version__
from checks.safetext import html_finalize
from collector.dashboard import assets

TEMPLATES = Path(__file__).parent / "templates"
STATUS_TAGS = {
    "pass": ("Pass", "govuk-tag--green"),
    "fail": ("Fail", "govuk-tag--red"),
    "error": ("Error", "govuk-tag--orange"),
    "not_applicable": ("Not applicable", "govuk-tag--grey"),
    "waived": ("Waived", "govuk-tag--purple"),
    "requested": ("Requested", "govuk-tag--blue"),
    "approved": ("Approved", "govuk-tag--green"),
    "rejected": ("Rejected", "govuk-tag--grey"),
    "revoked": ("Revoked", "govuk-tag--grey"),
    "expired": ("Expired", "govuk-tag--yellow"),
    "red": ("Red", "govuk-tag--red"),
    "amber": ("Amber", "govuk-tag--orange"),
    "green": ("Green", "govuk-tag--green"),
    "none": ("No results", "govuk-tag--grey"),
    "unknown": ("Not known", "govuk-tag--grey"),
}


def _when(value: str | None) -> str:
    """An ISO time as "1 Dec 2026 09:15 UTC" (GOV.UK style); empty for none."""
    if not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(value.rstrip("Z"))
    except ValueError:
        return value
    if len(value) <= 10:
        return f"{moment.day} {moment:%b %Y}"
    return f"{moment.day} {moment:%b %Y %H:%M} UTC"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _number(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _error_list(errors: dict[str, str], anchors: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The error summary's links: each to its field (or the first field of a group)."""
    return [{"text": message, "href": "#" + (anchors or {}).get(field, field)} for field, message in errors.items()]


def _items(values: Any, blank: str | None = None, prefix: str = "") -> list[dict[str, str]]:
    """Select options from a list of values or a {value: text} mapping, with an optional empty first option."""
    pairs = values.items() if isinstance(values, dict) else ((value, value) for value in values)
    options = [{"value": "", "text": blank}] if blank is not None else []
    return options + [{"value": str(value), "text": prefix + str(text)} for value, text in pairs]


def _status_items(values: Any, blank: str | None = None) -> list[dict[str, str]]:
    return _items({value: STATUS_TAGS.get(value, (value, ""))[0] for value in values}, blank)


def make_environment() -> Environment:
    environment = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(str(TEMPLATES)),
                PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja", "templates")}),
            ]
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=html_finalize,  # hostile text's control characters shown as escapes
    )
    environment.filters.update(when=_when, percent=_percent, pretty=_pretty, number=_number)
    environment.globals.update(
        status_tags=STATUS_TAGS,
        version=__version__,
        error_list=_error_list,
        items=_items,
        status_items=_status_items,
    )
    return environment


_environment: Environment | None = None


def environment() -> Environment:
    global _environment
    if _environment is None:
        _environment = make_environment()
    return _environment


def page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page; `user` (the signed-in user, if any) and `csrf_token` come from the request."""
    user = getattr(request.state, "dashboard_user", None)
    values = {
        "request": request,
        "user": user,
        "csrf_token": user.csrf_token if user is not None else "",
        "path": request.url.path,
        "assets_built": assets.built(assets.directory_of(request.app.state.rampart.config.dashboard.assets_dir)),
        **(context or {}),
    }
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status, headers=headers)
    response.headers["Cache-Control"] = "no-store"
    return response
