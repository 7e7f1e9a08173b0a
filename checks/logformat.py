"""The one log format of both daemons and the agent's workers: JSON lines or text, with a UTC timestamp on
every line, on standard error. Standard library only: the agent's daemon imports it and stays small.

JSON: {"ts", "level", "logger", "msg", "pid", ...the record's extra fields}. Text: `TS LEVEL logger[pid]:
msg key=value ...`. Nothing secret is logged by the callers (see collector/logs.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

LOG_FORMATS = ("json", "text")
LOG_FORMAT_HELP = "log lines as JSON (one object a line) or text, each with a UTC timestamp"

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's terminal colouring of the same message
}


def _timestamp(record: logging.LogRecord) -> str:
    return dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,  # which process: `serve` runs several workers, the agent a worker per run
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = "".join(f" {key}={value}" for key, value in _extras(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name}[{record.process}]: {record.getMessage()}{extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def log_to_stderr(level: str, log_format: str) -> None:
    """Every log line of this process on standard error in `log_format`, at `level` and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


def use_format(log_format: str) -> None:
    """Switch the handlers log_to_stderr installed to another format (the daemon learns the config's from
    its first worker, as it must not read the config itself)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(log_format))
