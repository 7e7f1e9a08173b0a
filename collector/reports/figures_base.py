"""When the briefing's figures are taken, and the look-ups every one of them shares."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.storage.models import check_catalog
from collector.storage.queries import common

CLOUD_GROUP = "cloud"


@dataclass(frozen=True)
class Moment:
    """When figures are taken: the end of `day`, or now when the day is today or later."""

    day: dt.date
    at: dt.datetime
    current: bool

    @classmethod
    def of(cls, day: dt.date, now: dt.datetime) -> Moment:
        if day >= now.date():
            # Stored times are whole seconds and figures take what happened before `at`: what happened in
            # this very second (an agent enrolled, a waiver approved just now) belongs to "now" too.
            return cls(now.date(), now.replace(microsecond=0) + dt.timedelta(seconds=1), True)
        return cls(day, common.end_of(day), False)


def catalog(connection: Connection) -> dict[tuple[str, str], Any]:
    return {(row.policy_id, row.check_id): row for row in connection.execute(sa.select(check_catalog))}


def cloud_in_scope(group: str | None) -> bool:
    """Whether cloud subjects (the tenant and Azure resources, group `cloud`) are in scope."""
    return group is None or group == CLOUD_GROUP
