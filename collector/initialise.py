"""`rampart-collector init`: everything a collector needs before it can serve.

Idempotent: what exists is kept (a second run never replaces a key, a certificate or issues a second
first-admin token), what is missing is created.

Modes are set by init itself, whatever the umask and whatever an earlier hand left: the data directory
(and its tls/) owner-only (0700), private keys and the database with its journal files 0600, certificates
0644 (readable, never writable by others). A file the config names outside the data directory is the
admin's: it is left as it is, with a warning when it is a private key others can read.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from checks import wire
from checks.policy.loader import load_policy_file
from collector.config import CollectorConfig
from collector.storage import migrate
from collector.storage import policies as policy_store
from collector.storage import users as user_store
from collector.storage.engine import write_tx
from collector.storage.models import utcnow
from collector.tlsgen import create_ca_and_server, default_hostnames, write_private

FIRST_ADMIN = "admin"
SYSTEM_ACTOR = "system:init"
PRIVATE, PUBLIC, DIRECTORY = 0o600, 0o644, 0o700
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class InitError(Exception):
    pass


@dataclass
class InitOutcome:
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    admin_token: str | None = None
    ca_file: str = ""
    public_key: str = ""
    warnings: list[str] = field(default_factory=list)


def load_signing_key(config: CollectorConfig) -> Ed25519PrivateKey:
    path = config.signing_key_path()
    try:
        return wire.load_private_key_pem(path.read_bytes())
    except OSError as exc:
        raise InitError(f"cannot read the signing key {path}: {exc.strerror} (run `rampart-collector init`)") from None
    except (ValueError, wire.WireError) as exc:
        raise InitError(f"{path} is not an Ed25519 private key in PEM: {exc}") from None


def initialise(config: CollectorConfig, engine: Engine) -> InitOutcome:
    outcome = InitOutcome()
    data_dir = config.data_path()
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=DIRECTORY)
        outcome.created.append(f"data directory {data_dir}")
    _set_mode(data_dir, DIRECTORY, outcome)  # before anything is written in it

    key_path = config.signing_key_path()
    if key_path.exists():
        key = load_signing_key(config)
        outcome.kept.append(f"signing key {key_path}")
    else:
        key = wire.generate_key()
        write_private(key_path, wire.private_key_pem(key))
        outcome.created.append(f"signing key {key_path}")
    outcome.public_key = wire.public_key_text(key)

    cert, cert_key, ca = config.tls_paths()
    named = [p for p in (config.tls_cert_file, config.tls_key_file, config.tls_ca_file) if p]
    if named:
        missing = [p for p in named if not Path(p).is_file()]
        if missing:
            raise InitError(f"the TLS file {missing[0]} named in the config does not exist")
        if not (config.tls_cert_file and config.tls_key_file and config.tls_ca_file):
            raise InitError("name all of tls_cert_file, tls_key_file and tls_ca_file, or none of them")
        outcome.kept.append(f"TLS certificate {cert} (from the config)")
    elif cert.exists() and cert_key.exists() and ca.exists():
        outcome.kept.append(f"TLS certificate {cert}")
    else:
        create_ca_and_server(cert, cert_key, ca, default_hostnames(config.tls_hostnames))
        outcome.created.append(f"TLS CA {ca} and server certificate {cert}")
    outcome.ca_file = str(ca)

    if engine.dialect.name == "sqlite" and engine.url.database and not Path(engine.url.database).exists():
        # Created owner-only before SQLite opens it; its -wal and -shm files inherit the mode.
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(engine.url.database, os.O_WRONLY | os.O_CREAT, 0o600))
    before, after = migrate.upgrade(engine)
    if before != after:
        outcome.created.append(f"database schema {after}")
    else:
        outcome.kept.append(f"database schema {after}")

    _set_modes(config, engine, outcome)

    now = utcnow()
    with write_tx(engine) as connection:
        if not policy_store.list_policies(connection):
            from policies import shipped_path

            baseline = load_policy_file(shipped_path("baseline.yaml"))
            policy_store.add(connection, baseline, by=SYSTEM_ACTOR, now=now, source="shipped baseline.yaml")
            policy_store.assign(connection, config.default_group, baseline.id, by=SYSTEM_ACTOR, now=now)
            outcome.created.append(f"policy {baseline.id} {baseline.version} for group {config.default_group}")
        if not any(u["role"] == "admin" for u in user_store.list_users(connection)):
            user_store.add_user(connection, FIRST_ADMIN, "admin", by=SYSTEM_ACTOR, now=now)
            token, _ = user_store.create_token(connection, FIRST_ADMIN, by=SYSTEM_ACTOR, now=now, label="first admin")
            outcome.admin_token = token
            outcome.created.append(f"user {FIRST_ADMIN} (admin) with an API token")
    return outcome


def _set_mode(path: Path, mode: int, outcome: InitOutcome) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        return
    except PermissionError as exc:
        outcome.warnings.append(f"{path}: cannot set its mode to {mode:o}: {exc.strerror}")


def _inside(path: Path, directory: Path) -> bool:
    return path.absolute().is_relative_to(directory.absolute())


def _set_modes(config: CollectorConfig, engine: Engine, outcome: InitOutcome) -> None:
    """Owner-only modes for what init keeps in the data directory; warnings for private keys elsewhere."""
    data_dir = config.data_path()
    cert, cert_key, ca = config.tls_paths()
    files = [
        (config.signing_key_path(), PRIVATE),
        (ca.parent / "ca-key.pem", PRIVATE),
        (cert_key, PRIVATE),
        (cert, PUBLIC),
        (ca, PUBLIC),
    ]
    if engine.dialect.name == "sqlite" and engine.url.database:
        database = Path(engine.url.database)
        files += [(database, PRIVATE)] + [(Path(f"{database}{end}"), PRIVATE) for end in SQLITE_COMPANIONS]
    for directory in {path.parent for path, _mode in files if _inside(path.parent, data_dir)}:
        _set_mode(directory, DIRECTORY, outcome)
    for path, mode in files:
        if _inside(path, data_dir):
            _set_mode(path, mode, outcome)
        elif mode == PRIVATE and path.exists() and path.stat().st_mode & 0o077:
            outcome.warnings.append(f"{path} can be read by others than its owner: chmod 600 it")


def check_ready_to_serve(config: CollectorConfig) -> None:
    """Fail early, with what to do, when `serve` would not work."""
    load_signing_key(config)
    if config.tls:
        cert, key, _ca = config.tls_paths()
        for path in (cert, key):
            if not path.is_file():
                raise InitError(
                    f"TLS file {path} is missing (run `rampart-collector init`, or set tls: false "
                    "to serve plain HTTP behind a proxy)"
                )
            if not os.access(path, os.R_OK):
                raise InitError(f"TLS file {path} is not readable")
