"""What a policy from the collector may do on this machine: observe, within what the local config allows.

The agent runs as root, and the collector (or whoever holds its admin token) chooses the policies it pushes.
So a policy from the collector's bundle goes through `PushedPolicyRunner`, and a policy the local
administrator runs with `rampart-agent check --policy FILE` does not:

- the `command` probe is refused unless `agent.allow_command_probe` is on;
- a file whose content a probe would read (file_content, key_value_file, file with `hash`) must be allowed
  by `agent.pushed_read_paths` and not excluded by `agent.pushed_read_exclude`, judged on the path with
  `..` and every symbolic link resolved; the agent's state directory (its key, its spool) never is;
- the process probe neither matches nor returns other processes' command lines (which often carry
  passwords and tokens) unless `agent.pushed_process_cmdlines` is on.

A refusal is an `error` result that says which local key would allow it, never a pass or a fail. Parameter
grammars and secret redaction apply to every policy, pushed or local (checks.policy.evaluate.collect).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from checks.policy.evaluate import ProbeRunner
from checks.policy.model import ProbeRef
from checks.probes import registry
from checks.probes.host import Host, ProbeError

COMMAND_REFUSED = (
    "the command probe is not allowed in policies from the collector; "
    "a local administrator can allow it with agent.allow_command_probe: true"
)
CMDLINE_REFUSED = (
    "the process probe's cmdline_pattern is not allowed in policies from the collector (command lines can "
    "carry passwords and tokens); a local administrator can allow it with agent.pushed_process_cmdlines: true"
)


def glob_regex(pattern: str, *, case_insensitive: bool = False) -> re.Pattern[str]:
    """`*` and `?` within one path component, `**` across components (`/etc/pam.d/**`, `**/*.key`)."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts), re.IGNORECASE if case_insensitive else 0)


@dataclass(frozen=True)
class ReadPolicy:
    """Which files a pushed policy may have read, from the agent's local config."""

    allowed: tuple[str, ...]
    excluded: tuple[str, ...]
    state_dir: str
    platform: str

    def _forms(self, path: str) -> Iterable[str]:
        """The path as the patterns are written: forward slashes on Windows; on macOS /etc, /var and /tmp for
        the /private/... they link to."""
        normal = path.replace("\\", "/") if self.platform == "windows" else path
        if self.platform == "darwin" and normal.startswith(("/private/etc/", "/private/var/", "/private/tmp/")):
            normal = normal[len("/private") :]
        yield normal

    def _matches(self, pattern: str, path: str) -> bool:
        regex = glob_regex(pattern.replace("\\", "/"), case_insensitive=self.platform == "windows")
        return any(regex.fullmatch(form) for form in self._forms(path))

    def _inside(self, path: str, directory: str) -> bool:
        for form in self._forms(path):
            for base in self._forms(directory):
                if self.platform == "windows":
                    form, base = form.lower(), base.lower()
                base = base.rstrip("/")
                if form == base or form.startswith(base + "/"):
                    return True
        return False

    def refusal(self, requested: str, resolved: str) -> str | None:
        """Why the content of `requested` (which is `resolved` once links are followed) may not be read."""
        where = requested if resolved == requested else f"{requested} (which resolves to {resolved})"
        if self._inside(resolved, self.state_dir):
            return (
                f"reading {where} is refused: it is in the agent's state directory ({self.state_dir}), which "
                "policies from the collector can never read"
            )
        for pattern in self.excluded:
            if self._matches(pattern, resolved):
                return (
                    f"reading {where} is not allowed for policies from the collector: it matches {pattern!r} in "
                    "agent.pushed_read_exclude of this agent's local config (only a local administrator can change it)"
                )
        if not any(self._matches(pattern, resolved) for pattern in self.allowed):
            return (
                f"reading {where} is not allowed for policies from the collector: this agent's local config does "
                "not list it in agent.pushed_read_paths (a local administrator can add it there)"
            )
        return None


class PushedPolicyRunner:
    """Runs probes for policies from the collector, within what the local administrator allowed."""

    def __init__(
        self,
        inner: ProbeRunner,
        host: Host,
        *,
        allow_command_probe: bool,
        reads: ReadPolicy,
        process_cmdlines: bool,
    ) -> None:
        self.inner = inner
        self.host = host
        self.allow_command_probe = allow_command_probe
        self.reads = reads
        self.process_cmdlines = process_cmdlines

    def __call__(self, ref: ProbeRef) -> Any:
        spec = registry.get(ref.name)
        if spec is None:
            raise ProbeError(f"unknown probe {ref.name}")
        if ref.name == "command" and not self.allow_command_probe:
            raise ProbeError(COMMAND_REFUSED)
        hide_cmdlines = ref.name == "process" and not self.process_cmdlines
        if hide_cmdlines and ref.params.get("cmdline_pattern") is not None:
            raise ProbeError(CMDLINE_REFUSED)
        ref = self._resolved_reads(spec, ref)
        facts = self.inner(ref)
        if hide_cmdlines and isinstance(facts, dict):
            facts = {**facts, "processes": [{**p, "cmdline": None} for p in facts.get("processes", [])]}
        return facts

    def _resolved_reads(self, spec: registry.ProbeSpec, ref: ProbeRef) -> ProbeRef:
        """The probe ref with every file it reads resolved and allowed; the probe then reads the resolved path,
        so a link changed after the check is not followed to somewhere else."""
        params = spec.params_with_defaults(ref.params)
        if registry.param_problems(spec, params, self.host.platform):
            return ref  # collect() refuses it with the reasons, before anything is read
        read = spec.reads(params)
        if not read:
            return ref
        replaced = dict(ref.params)
        for path in read:
            resolved = self.host.resolve(path)
            refusal = self.reads.refusal(path, resolved)
            if refusal is not None:
                raise ProbeError(refusal)
            for key, value in ref.params.items():
                if value == path:
                    replaced[key] = resolved
        return ProbeRef(ref.name, replaced)
