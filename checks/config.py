"""One YAML config file with `agent:`, `collector:` and `cloud:` sections.

Each program declares its section as dataclasses with defaults; this module fills them from the file,
then from `RAMPART_<SECTION>__<KEY>` environment variables (`__` separates nesting levels), and reports
unknown keys and wrong types with the file and line. A key ending in `_file` may name a file whose
content (stripped) becomes the value of the key without the suffix, so secrets need not sit in the config.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from checks.policy.yamlsource import YamlDocument, YamlSyntaxError, parse_yaml

DEFAULT_CONFIG_PATHS = ("/etc/rampart/config.yaml",)
ENV_PREFIX = "RAMPART_"
SECTIONS = ("agent", "collector", "cloud")

T = TypeVar("T")


class ConfigError(Exception):
    pass


@dataclasses.dataclass
class ConfigSource:
    path: str | None
    document: YamlDocument | None

    def where(self, keys: tuple[str | int, ...]) -> str:
        if self.path is None or self.document is None:
            return "environment"
        return f"{self.path}:{self.document.line_of(keys)}"


def find_config_path(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("RAMPART_CONFIG"):
        return os.environ["RAMPART_CONFIG"]
    for candidate in DEFAULT_CONFIG_PATHS:
        if Path(candidate).is_file():
            return candidate
    return None


def read_config(path: str | None) -> tuple[dict[str, Any], ConfigSource]:
    if path is None:
        return {}, ConfigSource(None, None)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    try:
        document = parse_yaml(text)
    except YamlSyntaxError as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc.message}") from exc
    if document.problems:
        problem = document.problems[0]
        raise ConfigError(f"{path}:{problem.line}: {problem.message}")
    data = document.data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the config is a mapping with agent:, collector: and cloud: sections")
    unknown = [key for key in data if key not in SECTIONS]
    if unknown:
        raise ConfigError(
            f"{path}:{document.line_of((unknown[0],))}: unknown section {unknown[0]!r} "
            f"(sections: {', '.join(SECTIONS)})"
        )
    return data, ConfigSource(path, document)


def env_overrides(section: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """RAMPART_AGENT__STATE_DIR=/x -> {"state_dir": "/x"}; nested keys with more `__`."""
    environ = os.environ if environ is None else environ
    prefix = f"{ENV_PREFIX}{section.upper()}__"
    result: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(prefix):
            continue
        keys = [part.lower() for part in name[len(prefix) :].split("__") if part]
        node = result
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if keys:
            node[keys[-1]] = value
    return result


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_section(cls: type[T], section: str, path: str | None, environ: Mapping[str, str] | None = None) -> T:
    data, source = read_config(path)
    raw = data.get(section) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source.where((section,))}: `{section}:` must be a mapping")
    from_env = env_overrides(section, environ)
    return build(cls, _merge(raw, from_env), (section,), source, from_env)


def _coerce(value: Any, hint: Any, keys: tuple[str | int, ...], source: ConfigSource, from_env: bool) -> Any:
    where = (
        "environment variable " + ENV_PREFIX + "__".join(str(k).upper() for k in keys)
        if from_env
        else source.where(keys)
    )
    name = ".".join(str(k) for k in keys)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (from_env and value == ""):
            return None
        return _coerce(value, options[0], keys, source, from_env)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {name} must be a mapping")
        return build(hint, value, keys, source, {} if not from_env else value)  # type: ignore[arg-type]
    if origin is list:
        (item_type,) = typing.get_args(hint)
        if from_env and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {name} must be a list")
        return [_coerce(item, item_type, keys + (i,), source, from_env) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {name} must be a mapping")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be a whole number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {name} must be a whole number, got {value!r}") from None
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {name} must be a number, got {value!r}") from None
    if hint is str:
        if isinstance(value, dict | list) or value is None:
            raise ConfigError(f"{where}: {name} must be a string, got {value!r}")
        return str(value)
    return value


def bounded(default: Any, low: float | None = None, high: float | None = None) -> Any:
    """A dataclass field whose value must lie in [low, high] (either may be open): a port, a count of
    workers, a number of hours; `build` refuses what is outside with the file and line."""
    return dataclasses.field(default=default, metadata={"range": (low, high)})


def _check_range(value: Any, field: dataclasses.Field[Any], name: str, where: str) -> None:
    low, high = field.metadata.get("range", (None, None))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if (low is None or value >= low) and (high is None or value <= high):
        return
    if low is not None and high is not None:
        wanted = f"from {_shown(low)} to {_shown(high)}"
    elif low is not None:
        wanted = f"at least {_shown(low)}"
    else:
        wanted = f"at most {_shown(high)}"
    raise ConfigError(f"{where}: {name} must be {wanted}, got {_shown(value)}")


def _shown(number: float) -> str:
    """A number as a person wrote it: 99999999 and 1048576, not 1e+08 and 1.04858e+06; 0.01 as is."""
    return str(int(number)) if float(number).is_integer() else f"{number:.12g}"


def build(
    cls: type[T],
    data: dict[str, Any],
    keys: tuple[str | int, ...],
    source: ConfigSource,
    from_env: dict[str, Any] | None = None,
) -> T:
    """A dataclass from a mapping, with `_file` secrets read and every key checked."""
    assert dataclasses.is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    from_env = from_env or {}
    for key, value in data.items():
        secret_target = key[: -len("_file")] if key.endswith("_file") and key[: -len("_file")] in fields else None
        if secret_target and f"{key}" not in fields:
            if value in (None, ""):
                continue
            try:
                values[secret_target] = Path(str(value)).read_text(encoding="utf-8").strip()
            except OSError as exc:
                where = source.where(keys + (key,))
                raise ConfigError(
                    f"{where}: cannot read {'.'.join(map(str, keys + (key,)))} ({value}): {exc.strerror or exc}"
                ) from exc
            continue
        if key not in fields:
            hint = difflib.get_close_matches(key, list(fields), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            where = source.where(keys + (key,)) if key not in from_env else "environment"
            raise ConfigError(f"{where}: unknown key {'.'.join(map(str, keys + (key,)))}{suggestion}")
        values[key] = _coerce(value, hints[key], keys + (key,), source, key in from_env)
        where = (
            "environment variable " + ENV_PREFIX + "__".join(str(k).upper() for k in keys + (key,))
            if key in from_env
            else source.where(keys + (key,))
        )
        _check_range(values[key], fields[key], ".".join(str(k) for k in keys + (key,)), where)
    return cls(**values)
