"""Users: nobody disables themself, the last enabled admin stays, a disabled user can be enabled again."""

from __future__ import annotations

import pytest
import requests

from collector.storage import users
from collector.storage.engine import write_tx
from collector.storage.models import utcnow
from collector.storage.users import UserError
from tests.support.live import LiveCollector


def admin_session(live: LiveCollector, name: str) -> requests.Session:
    admin = live.admin()
    assert admin.post(live.url + "/api/v1/users", json={"name": name, "role": "admin"}).status_code == 201
    return live.session(admin.post(live.url + "/api/v1/api-tokens", json={"user": name}).json()["token"])


def test_an_admin_cannot_disable_themself(live: LiveCollector) -> None:
    admin = live.admin()
    admin_session(live, "second")  # another admin exists: this is not about the last one
    refused = admin.post(live.url + "/api/v1/users/admin/disable")
    assert refused.status_code == 409 and refused.json()["code"] == "cannot_disable_self", refused.text
    assert admin.get(live.url + "/api/v1/summary").status_code == 200


def test_the_last_enabled_admin_cannot_be_disabled(live: LiveCollector) -> None:
    second = admin_session(live, "second")
    assert second.post(live.url + "/api/v1/users/admin/disable").status_code == 200
    # Now "second" is the last enabled admin: not by themself, and not by anyone else (the command line).
    assert second.post(live.url + "/api/v1/users/second/disable").json()["code"] == "cannot_disable_self"
    with pytest.raises(UserError) as refused, write_tx(live.engine) as connection:
        users.disable_user(connection, "second", by="cli:root", now=utcnow())
    assert refused.value.code == "last_admin"
    analyst = live.admin().post(live.url + "/api/v1/users", json={"name": "ann", "role": "analyst"})
    assert analyst.status_code == 401  # the disabled admin's token no longer works
    assert second.post(live.url + "/api/v1/users", json={"name": "ann", "role": "analyst"}).status_code == 201
    assert second.post(live.url + "/api/v1/users/ann/disable").status_code == 200  # others may go


def test_a_disabled_user_can_be_enabled_again_and_it_is_audited(live: LiveCollector) -> None:
    admin = live.admin()
    assert admin.post(live.url + "/api/v1/users", json={"name": "dana", "role": "auditor"}).status_code == 201
    dana = live.session(admin.post(live.url + "/api/v1/api-tokens", json={"user": "dana"}).json()["token"])
    assert admin.post(live.url + "/api/v1/users/dana/disable").json()["changed"] is True
    assert dana.get(live.url + "/api/v1/summary").status_code == 401
    enabled = admin.post(live.url + "/api/v1/users/dana/enable")
    assert enabled.status_code == 200 and enabled.json() == {"name": "dana", "disabled": False, "changed": True}
    assert dana.get(live.url + "/api/v1/summary").status_code == 200
    assert admin.post(live.url + "/api/v1/users/dana/enable").json()["changed"] is False
    assert admin.post(live.url + "/api/v1/users/nobody/enable").status_code == 404
    entries = admin.get(live.url + "/api/v1/audit", params={"actor": "user:admin"}).json()["entries"]
    assert [(e["action"], e["target"]) for e in entries][:2] == [("user.enable", "dana"), ("user.disable", "dana")]
