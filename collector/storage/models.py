"""The collector's tables (SQLModel). The migrations in collector/storage/migrations create exactly these.

Times are naive UTC datetimes. Hot paths (ingest, summary) use these tables through SQLAlchemy Core
(`table(Model)`), not per-row ORM objects.

How the results are kept:
- `latest_results`: one row per (subject, policy, check) with the last status and observed facts,
  rewritten only when what the result says changes (its `digest`); a row the subject's last report found
  unchanged was evaluated at `subjects.last_evaluated_at` (collector/storage/ingest.py).
- `result_intervals`: history as change intervals: a row is written only when a status changes, and
  "as at T" is `valid_from <= T < valid_to` (or `valid_to` empty).
- `status_counts`: the current number of subjects per (group, policy, check, status), striped over
  `shard` so that concurrent ingests rarely update the same row; the summary reads these, not 4 million rows.
- `daily_changes`: the net change of those counts per day, so "as at a date" and trends are sums.
- `count_snapshots`: those counts at the end of one day a week (and at the eve of the history kept), so
  "as at a date" sums a week of changes at most, whatever the days kept.
- `reports`: every signed report as received (compressed) with its signature headers, for evidence.
- `check_catalog`: what each check is, from the policies the collector stores (never from results).
- `cloud_runs`: each cloud run, and whether it could observe.
- `observations`: a tenant-wide check's observed facts once a day (cloud runs keep no signed report).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Autoincrementing 64-bit keys; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COUNTER_SHARDS = 16
# PostgreSQL advisory lock: shared while a report judged with cached waivers is stored (fast_ingest.py),
# exclusive while the waivers change (collector/storage/waivers.py).
WAIVER_LOCK_KEY = 7_291_034_551


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


class Subject(SQLModel, table=True):
    """What results are about: a host (an agent), a tenant or a cloud resource."""

    __tablename__ = "subjects"
    __table_args__ = (
        sa.UniqueConstraint("kind", "ext_id"),
        # Host counts and the stale count by group, from the index alone.
        sa.Index("ix_subjects_kind_group_seen", "kind", "group_name", "last_seen"),
        # The dashboard's hosts in order of last contact, a page at a time.
        sa.Index("ix_subjects_kind_seen", "kind", "last_seen", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    ext_id: str = Field(max_length=200)
    name: str = Field(default="", max_length=255)
    group_name: str = Field(max_length=100)
    first_seen: dt.datetime = Field(sa_type=sa.DateTime())
    last_seen: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())
    last_report_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())
    # The mark of the last report stored for this subject (migration 0009): its id and when its results
    # were evaluated. A latest row that report found unchanged is not rewritten: it was evaluated then.
    last_report_id: str | None = Field(default=None, max_length=64)
    last_evaluated_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())


class Agent(SQLModel, table=True):
    __tablename__ = "agents"
    __table_args__ = (
        sa.Index("ix_agents_hostname", "hostname", "agent_id"),  # the hosts list, in name order, a page at a time
        sa.Index("ix_agents_revoked_at", "revoked_at"),
        sa.Index("ix_agents_enrolled_group", "enrolled_at", "group_name"),  # hosts enrolled by a date, counted
        sa.Index("ix_agents_os_hostname", "os", "hostname", "agent_id"),  # the dashboard's hosts by OS, by name
    )

    agent_id: str = Field(primary_key=True, max_length=40)
    subject_id: int = Field(foreign_key="subjects.id", unique=True)
    public_key: str = Field(max_length=64)
    hostname: str = Field(default="", max_length=255)
    os: str = Field(default="", max_length=100)
    os_version: str = Field(default="", max_length=100)
    agent_version: str = Field(default="", max_length=50)
    host_facts: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    group_name: str = Field(max_length=100)
    enrolled_at: dt.datetime = Field(sa_type=sa.DateTime())
    token_id: str | None = Field(default=None, max_length=24)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())
    revoked_by: str | None = Field(default=None, max_length=100)


class EnrollmentToken(SQLModel, table=True):
    __tablename__ = "enrollment_tokens"

    id: str = Field(primary_key=True, max_length=24)
    token_hash: str = Field(max_length=64, unique=True)
    group_name: str = Field(max_length=100)
    max_uses: int
    uses: int = 0
    expires_at: dt.datetime = Field(sa_type=sa.DateTime())
    created_at: dt.datetime = Field(sa_type=sa.DateTime())
    created_by: str = Field(max_length=100)
    note: str = Field(default="", max_length=255)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())


class Report(SQLModel, table=True):
    """A signed report as received: enough to verify the agent's signature again later."""

    __tablename__ = "reports"
    # With the partition key, as PostgreSQL requires (partitions.py): a re-send carries the same created_at.
    __table_args__ = (sa.UniqueConstraint("report_id", "created_on"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    report_id: str = Field(max_length=64)
    agent_id: str = Field(max_length=40, index=True)
    subject_id: int
    received_at: dt.datetime = Field(index=True, sa_type=sa.DateTime())
    created_at: str = Field(default="", max_length=40)
    created_on: dt.date = Field(index=True, sa_type=sa.Date())  # the day (UTC) of created_at, or received
    result_count: int
    dropped: int = 0
    signed_method: str = Field(max_length=8)
    signed_path: str = Field(max_length=100)
    signed_timestamp: int = Field(sa_type=sa.BigInteger)
    content_sha256: str = Field(max_length=64)
    signature: str = Field(max_length=100)
    body_zlib: bytes = Field(sa_type=sa.LargeBinary)


class LatestResult(SQLModel, table=True):
    __tablename__ = "latest_results"
    # A check's subjects in one status, longest first, a page at a time.
    __table_args__ = (
        sa.Index("ix_latest_results_check_status_since", "policy_id", "check_id", "status", "since", "subject_id"),
    )

    subject_id: int = Field(primary_key=True)
    policy_id: str = Field(primary_key=True, max_length=100)
    check_id: str = Field(primary_key=True, max_length=200)
    status: str = Field(max_length=16)
    waived_status: str | None = Field(default=None, max_length=16)
    waiver_id: str | None = Field(default=None, max_length=100)
    severity: str = Field(max_length=16)
    title: str = Field(default="", sa_type=sa.Text)
    reason: str = Field(default="", sa_type=sa.Text)
    observed: Any = Field(default=None, sa_type=sa.JSON, nullable=True)
    expectation: Any = Field(default=None, sa_type=sa.JSON, nullable=True)
    policy_version: str = Field(max_length=50)
    policy_hash: str = Field(max_length=64)
    evaluated_at: dt.datetime = Field(sa_type=sa.DateTime())
    since: dt.datetime = Field(sa_type=sa.DateTime())
    report_id: str | None = Field(default=None, max_length=64)
    # What the result said (collector/storage/digest.py); empty when the row's own evaluated_at holds.
    digest: int | None = Field(default=None, sa_type=sa.BigInteger)


class ResultInterval(SQLModel, table=True):
    """A status a (subject, policy, check) held from valid_from until valid_to (empty: still holds)."""

    __tablename__ = "result_intervals"
    __table_args__ = (
        sa.Index("ix_result_intervals_subject", "subject_id", "policy_id", "check_id", "valid_from"),
        sa.Index("ix_result_intervals_check", "policy_id", "check_id", "valid_from"),
        # Closed intervals by their end, for retention; not the open ones (migration 0003 says why).
        sa.Index(
            "ix_result_intervals_closed",
            "valid_to",
            postgresql_where=sa.text("valid_to IS NOT NULL"),
            sqlite_where=sa.text("valid_to IS NOT NULL"),
        ),
        # The open interval of each (subject, policy, check): what a status change closes. Partial, so it
        # stays as small as latest_results and the planner prefers it over the per-check index.
        sa.Index(
            "ix_result_intervals_open",
            "subject_id",
            "policy_id",
            "check_id",
            postgresql_where=sa.text("valid_to IS NULL"),
            sqlite_where=sa.text("valid_to IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    subject_id: int
    policy_id: str = Field(max_length=100)
    check_id: str = Field(max_length=200)
    status: str = Field(max_length=16)
    policy_hash: str = Field(max_length=64)
    valid_from: dt.datetime = Field(sa_type=sa.DateTime())
    valid_to: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())
    report_id: str | None = Field(default=None, max_length=64)


class StatusCount(SQLModel, table=True):
    __tablename__ = "status_counts"

    shard: int = Field(primary_key=True)
    group_name: str = Field(primary_key=True, max_length=100)
    policy_id: str = Field(primary_key=True, max_length=100)
    check_id: str = Field(primary_key=True, max_length=200)
    status: str = Field(primary_key=True, max_length=16)
    count: int = 0


class DailyChange(SQLModel, table=True):
    __tablename__ = "daily_changes"
    __table_args__ = (
        # "As at a date" sums each count's changes up to that day: read in this order from the index
        # alone, without sorting (migration 0004).
        sa.Index("ix_daily_changes_count_day", "group_name", "policy_id", "check_id", "status", "day", "delta"),
    )

    day: dt.date = Field(primary_key=True)
    shard: int = Field(primary_key=True)
    group_name: str = Field(primary_key=True, max_length=100)
    policy_id: str = Field(primary_key=True, max_length=100)
    check_id: str = Field(primary_key=True, max_length=200)
    status: str = Field(primary_key=True, max_length=16)
    delta: int = 0


class SnapshotDay(SQLModel, table=True):
    """A day whose counts at its end are kept in `count_snapshots` (collector/storage/snapshots.py)."""

    __tablename__ = "snapshot_days"

    day: dt.date = Field(primary_key=True)
    taken_at: dt.datetime = Field(sa_type=sa.DateTime())


class CountSnapshot(SQLModel, table=True):
    """The number of subjects per (group, policy, check, status) at the end of a snapshot day: the sum of
    every daily change up to it, kept equal to that sum when a change lands on a past day (migration 0010's
    triggers), so "as at D" = the newest snapshot at or before D + the changes after it."""

    __tablename__ = "count_snapshots"
    # A change to a past day updates this count in every snapshot from that day on (the triggers).
    __table_args__ = (sa.Index("ix_count_snapshots_count_day", "group_name", "policy_id", "check_id", "status", "day"),)

    day: dt.date = Field(primary_key=True)
    group_name: str = Field(primary_key=True, max_length=100)
    policy_id: str = Field(primary_key=True, max_length=100)
    check_id: str = Field(primary_key=True, max_length=200)
    status: str = Field(primary_key=True, max_length=16)
    count: int = 0


class Observation(SQLModel, table=True):
    """What a tenant-wide check observed on a day (the day's last run). Cloud runs keep no signed report
    to read past facts back from: the briefing draws the MFA rollout, and the evidence as at a date
    takes a tenant's facts, from these (migration 0008)."""

    __tablename__ = "observations"

    subject_id: int = Field(primary_key=True)
    policy_id: str = Field(primary_key=True, max_length=100)
    check_id: str = Field(primary_key=True, max_length=200)
    day: dt.date = Field(primary_key=True)
    status: str = Field(max_length=16)
    observed: Any = Field(default=None, sa_type=sa.JSON, nullable=True)
    expectation: Any = Field(default=None, sa_type=sa.JSON, nullable=True)
    reason: str = Field(default="", sa_type=sa.Text)
    evaluated_at: dt.datetime = Field(sa_type=sa.DateTime())


class CheckCatalog(SQLModel, table=True):
    """What each check is (title, severity, weight, framework mapping), from the newest stored version of its
    policy, or the cloud policy the collector runs: never from what a result says."""

    __tablename__ = "check_catalog"

    policy_id: str = Field(primary_key=True, max_length=100)
    check_id: str = Field(primary_key=True, max_length=200)
    title: str = Field(default="", sa_type=sa.Text)
    severity: str = Field(max_length=16)
    weight: float | None = None
    frameworks: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    policy_version: str = Field(max_length=50)
    policy_hash: str = Field(max_length=64)
    updated_at: dt.datetime = Field(sa_type=sa.DateTime())


class StoredPolicy(SQLModel, table=True):
    __tablename__ = "policies"

    id: int | None = Field(default=None, primary_key=True)
    policy_id: str = Field(max_length=100, index=True)
    version: str = Field(max_length=50)
    sha256: str = Field(max_length=64, unique=True)
    title: str = Field(default="", sa_type=sa.Text)
    document: dict[str, Any] = Field(sa_type=sa.JSON)
    source: str = Field(default="", max_length=255)
    added_at: dt.datetime = Field(sa_type=sa.DateTime())
    added_by: str = Field(max_length=100)


class PolicyAssignment(SQLModel, table=True):
    """Agents in `group_name` get the newest stored version of `policy_id`."""

    __tablename__ = "policy_assignments"

    group_name: str = Field(primary_key=True, max_length=100)
    policy_id: str = Field(primary_key=True, max_length=100)
    assigned_at: dt.datetime = Field(sa_type=sa.DateTime())
    assigned_by: str = Field(max_length=100)


class StoredWaiver(SQLModel, table=True):
    """A waiver: requested by one person, approved by another, valid through `expires`."""

    __tablename__ = "waivers"

    id: str = Field(primary_key=True, max_length=100)
    check_id: str = Field(max_length=200, index=True)
    policy_id: str | None = Field(default=None, max_length=100)
    scope: dict[str, Any] = Field(sa_type=sa.JSON)
    justification: str = Field(sa_type=sa.Text)
    ticket: str = Field(default="", max_length=100)
    expires: dt.date
    state: str = Field(max_length=16)  # requested | approved | rejected | revoked | expired
    requested_by: str = Field(max_length=100)
    # Who requested it as `requested_by` (user:<name> or cli:<login>), for the two-person rule (0007).
    requested_actor: str | None = Field(default=None, max_length=100)
    requested_at: dt.datetime = Field(sa_type=sa.DateTime())
    approved_by: str | None = Field(default=None, max_length=100)
    approved_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())
    closed_by: str | None = Field(default=None, max_length=100)
    closed_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())


class User(SQLModel, table=True):
    __tablename__ = "users"
    # One user per Entra ID account (tenant and object id), whatever its name becomes (migration 0006).
    __table_args__ = (sa.Index("ix_users_external_id", "external_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    role: str = Field(max_length=16)
    created_at: dt.datetime = Field(sa_type=sa.DateTime())
    disabled_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())
    # The dashboard's local sign-in: an argon2id hash (PHC string); empty: no password sign-in.
    password_hash: str | None = Field(default=None, max_length=255)
    # `entra:<tenant id>:<object id>` for a user who signs in with Microsoft Entra ID.
    external_id: str | None = Field(default=None, max_length=200)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: str = Field(primary_key=True, max_length=24)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    label: str = Field(default="", max_length=255)
    created_at: dt.datetime = Field(sa_type=sa.DateTime())
    expires_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())
    revoked_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())


class DashboardSession(SQLModel, table=True):
    """A signed-in dashboard user. The cookie holds a random secret; only its SHA-256 is kept here, so a
    database leak gives no session away. Ended by sign-out, expiry, or the user being disabled."""

    __tablename__ = "dashboard_sessions"

    id: str = Field(primary_key=True, max_length=64)  # sha256 of the cookie's secret
    user_id: int = Field(foreign_key="users.id", index=True)
    csrf_token: str = Field(max_length=64)
    method: str = Field(max_length=16)  # password | entra
    address: str = Field(default="", max_length=64)
    created_at: dt.datetime = Field(sa_type=sa.DateTime())
    last_seen_at: dt.datetime = Field(sa_type=sa.DateTime())
    expires_at: dt.datetime = Field(index=True, sa_type=sa.DateTime())
    ended_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())


class SignInFailure(SQLModel, table=True):
    """A refused dashboard sign-in, counted per user name and per address to throttle guessing."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (
        sa.Index("ix_sign_in_failures_user_at", "user_name", "at"),
        sa.Index("ix_sign_in_failures_address_at", "address", "at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    at: dt.datetime = Field(sa_type=sa.DateTime())
    user_name: str = Field(max_length=100)
    address: str = Field(max_length=64)


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    at: dt.datetime = Field(index=True, sa_type=sa.DateTime())
    actor: str = Field(max_length=100)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=255)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class JobSchedule(SQLModel, table=True):
    """When each scheduled job is next due; claiming a run moves next_run_at, so one process runs it."""

    __tablename__ = "job_schedule"

    name: str = Field(primary_key=True, max_length=64)
    next_run_at: dt.datetime = Field(sa_type=sa.DateTime())


class JobRun(SQLModel, table=True):
    __tablename__ = "job_runs"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    name: str = Field(max_length=64, index=True)
    holder: str = Field(max_length=100)
    started_at: dt.datetime = Field(sa_type=sa.DateTime())
    finished_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())
    status: str = Field(default="running", max_length=16)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class CloudRunRecord(SQLModel, table=True):
    """One cloud run (`cloud run`, or the scheduled job): whether it could observe, and since when not.

    A run that could not sign in, or could not read some checks' sources, leaves the last known results
    standing: this record says so, with the reason, and the summary shows them as stale past
    `stale_after_s` (cloud.stale_after, as configured for that run)."""

    __tablename__ = "cloud_runs"
    __table_args__ = (sa.Index("ix_cloud_runs_tenant", "tenant_id", "id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    tenant_id: str = Field(max_length=100)
    started_at: dt.datetime = Field(sa_type=sa.DateTime())
    finished_at: dt.datetime = Field(sa_type=sa.DateTime())
    status: str = Field(max_length=16)  # ok | partial | failed
    reason: str = Field(default="", sa_type=sa.Text)
    failing_since: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())  # first of the runs not ok
    last_success_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime())  # the last ok run's start
    stale_after_s: int = Field(sa_type=sa.BigInteger)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class StateVersion(SQLModel, table=True):
    """A counter bumped whenever a piece of shared state changes (e.g. `waivers`), so that every collector
    process can tell, with one cheap read, that its cached copy is out of date."""

    __tablename__ = "state_versions"

    name: str = Field(primary_key=True, max_length=64)
    version: int = Field(default=0, sa_type=sa.BigInteger)


def table(model: type[SQLModel]) -> sa.Table:
    """The Core table behind a model, for bulk statements."""
    return cast(sa.Table, model.__table__)  # type: ignore[attr-defined]


subjects = table(Subject)
agents = table(Agent)
enrollment_tokens = table(EnrollmentToken)
reports = table(Report)
latest_results = table(LatestResult)
result_intervals = table(ResultInterval)
status_counts = table(StatusCount)
daily_changes = table(DailyChange)
check_catalog = table(CheckCatalog)
observations = table(Observation)
snapshot_days = table(SnapshotDay)
count_snapshots = table(CountSnapshot)
policies = table(StoredPolicy)
policy_assignments = table(PolicyAssignment)
waivers = table(StoredWaiver)
users = table(User)
api_tokens = table(ApiToken)
audit_log = table(AuditEntry)
dashboard_sessions = table(DashboardSession)
sign_in_failures = table(SignInFailure)
job_schedule = table(JobSchedule)
job_runs = table(JobRun)
cloud_runs = table(CloudRunRecord)
state_versions = table(StateVersion)

metadata = SQLModel.metadata


def iso(moment: dt.datetime | None) -> str | None:
    """A stored naive-UTC time as ISO 8601 with Z."""
    return None if moment is None else moment.isoformat() + "Z"
