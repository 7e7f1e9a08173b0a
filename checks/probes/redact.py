"""Secret-looking content never leaves the probe layer.

Whatever a policy asks for, and wherever it came from, a result must not carry a private key or a password
hash: results are stored at the collector, shown to every API role and exported to auditors. Redaction
happens in two places that every probe passes through (`checks.policy.evaluate.collect`):

- on the way in, `RedactingHost` wraps the machine, so a probe only ever sees file contents, command output
  and command lines with the secrets already replaced. A private key is replaced as a whole block before any
  probe splits the text into lines, so a policy that keeps only the lines of base64 still gets nothing;
- on the way out, every string of the facts (and an error's reason) is scanned again.

What counts as secret-looking: PEM and OpenSSH private keys (`-----BEGIN ... PRIVATE KEY-----` to its END
line, or to the end of the text when it is cut short), PGP private key blocks, PuTTY key files, and password
hashes in the crypt formats ($1$, $2a$/$2b$/$2y$, $5$, $6$, $7$, $y$, $gy$, $apr1$, $md5, $sha1$,
$argon2i/d/id$, $pbkdf2...$, scrypt), Django's pbkdf2_sha256$ and LDAP's {SSHA}/{CRYPT}/... forms. A hash is
replaced in place by a marker without spaces or colons, so a shadow-style line keeps its fields (a check for
an empty password field still works; a locked account's `!` stays). Old DES crypt (13 characters with no
marker) cannot be told from other text and is not recognised.
"""

from __future__ import annotations

import re
from typing import Any

from checks.probes.host import DEFAULT_OUTPUT_CAP, DEFAULT_TIMEOUT, CommandResult, FileInfo, Host

PRIVATE_KEY = "private key"
PASSWORD_HASH = "password hash"
KEY_MARKER = "[redacted private key]"
HASH_MARKER = "[redacted-password-hash]"

_KEY_BLOCK = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END \1-----|\Z)", re.DOTALL)
_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PUTTY = re.compile(r"PuTTY-User-Key-File-[0-9]+:.*?(?:Private-MAC:[^\r\n]*|\Z)", re.DOTALL)

_B64 = r"[./A-Za-z0-9]"  # crypt's own base64 alphabet
_HASHES = re.compile(
    "|".join(
        (
            rf"\$(?:1|apr1)\${_B64}{{0,8}}\${_B64}{{22}}",  # MD5-crypt, Apache
            rf"\$2[abxy]?\$[0-9]{{2}}\${_B64}{{53}}",  # bcrypt
            rf"\$[56]\$(?:rounds=[0-9]+\$)?{_B64}{{0,16}}\${_B64}{{43,86}}",  # SHA-256/512-crypt
            rf"\$g?y\${_B64}+\${_B64}+\${_B64}{{43}}",  # yescrypt, gost-yescrypt
            rf"\$7\${_B64}{{14,}}\${_B64}{{43}}",  # scrypt
            r"\$argon2(?:id|i|d)\$(?:v=[0-9]+\$)?m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+",
            r"\$pbkdf2(?:-sha(?:1|256|512))?\$[0-9]+\$[./A-Za-z0-9+]+\$[./A-Za-z0-9+]+",
            r"\$(?:sha1|md5)[$,][./A-Za-z0-9$,=]{20,}",  # NetBSD sha1, Sun md5
            r"\$scrypt\$[^\s:]{20,}",
            r"pbkdf2_sha(?:1|256)\$[0-9]+\$[^\s$:]+\$[A-Za-z0-9+/=]{20,}",  # Django
            r"\{(?:S?SHA(?:256|384|512)?|S?MD5|CRYPT|PBKDF2(?:-SHA(?:1|256|512))?|ARGON2)\}[A-Za-z0-9+/=.$,]{8,}",
        )
    ),
    re.IGNORECASE,
)
# Cheap test before the expressions: most text holds none of these.
_HINTS = ("PRIVATE KEY", "PuTTY-User-Key-File", "$", "{", "pbkdf2")


def redact_text(text: str) -> tuple[str, frozenset[str]]:
    """`text` with secret-looking content replaced, and the kinds found."""
    if not any(hint in text for hint in _HINTS):
        return text, frozenset()
    kinds: set[str] = set()
    redacted, count = _KEY_BLOCK.subn(KEY_MARKER, text)
    redacted, putty = _PUTTY.subn(KEY_MARKER, redacted)
    if count or putty:
        kinds.add(PRIVATE_KEY)
    redacted, hashes = _HASHES.subn(HASH_MARKER, redacted)
    if hashes:
        kinds.add(PASSWORD_HASH)
    return redacted, frozenset(kinds)


def _redact_lines(lines: list[Any], kinds: set[str]) -> list[Any]:
    """A list whose strings are lines of one text: a key's BEGIN line hides every line up to its END."""
    result: list[Any] = []
    in_key = False
    for item in lines:
        if not isinstance(item, str):
            result.append(redact_value(item, kinds))
            continue
        if in_key:  # a line of the key: one marker per line, so counts of lines stay true
            in_key = _KEY_END.search(item) is None
            result.append(KEY_MARKER)
            continue
        begin = _KEY_BEGIN.search(item)
        if begin is not None and _KEY_END.search(item, begin.end()) is None:
            in_key = True
        redacted, found = redact_text(item)
        kinds.update(found)
        result.append(redacted)
    return result


def redact_value(value: Any, kinds: set[str]) -> Any:
    """A copy of facts (dicts, lists, strings) with secrets replaced; `kinds` collects what was found."""
    if isinstance(value, str):
        redacted, found = redact_text(value)
        kinds.update(found)
        return redacted
    if isinstance(value, dict):
        return {key: redact_value(item, kinds) for key, item in value.items()}
    if isinstance(value, list):
        return _redact_lines(value, kinds)
    return value


class RedactingHost:
    """A Host whose file contents, command output and command lines come with secrets replaced."""

    def __init__(self, inner: Host) -> None:
        self.inner = inner
        self.kinds: set[str] = set()

    def _clean(self, text: str) -> str:
        redacted, found = redact_text(text)
        self.kinds.update(found)
        return redacted

    @property
    def platform(self) -> str:
        return self.inner.platform

    def run(
        self,
        argv: list[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_output: int = DEFAULT_OUTPUT_CAP,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        result = self.inner.run(argv, timeout=timeout, max_output=max_output, env=env)
        return CommandResult(
            argv=result.argv,
            returncode=result.returncode,
            stdout=self._clean(result.stdout),
            stderr=self._clean(result.stderr),
            duration_s=result.duration_s,
            truncated=result.truncated,
        )

    def read_text(self, path: str, *, max_bytes: int = DEFAULT_OUTPUT_CAP) -> str:
        return self._clean(self.inner.read_text(path, max_bytes=max_bytes))

    def hash_file(self, path: str) -> str:
        return self.inner.hash_file(path)  # a digest gives nothing of the content away

    def resolve(self, path: str) -> str:
        return self.inner.resolve(path)

    def stat(self, path: str) -> FileInfo | None:
        return self.inner.stat(path)

    def which(self, name: str) -> str | None:
        return self.inner.which(name)

    def cache_file(self, name: str) -> str | None:
        return self.inner.cache_file(name)

    def list_dir(self, path: str) -> list[str]:
        return self.inner.list_dir(path)

    def processes(self) -> list[dict[str, object]]:
        found: set[str] = set()
        cleaned = [redact_value(process, found) for process in self.inner.processes()]
        self.kinds.update(found)
        return cleaned
