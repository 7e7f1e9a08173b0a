"""`completion bash|zsh` of both command lines, run as processes; bash itself runs the script and completes
a command, a nested action and an option with it."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest

from tests.conftest import run_cli

BASH = shutil.which("bash")


def _complete(script: str, function: str, words: list[str]) -> list[str]:
    """What bash offers for the last of `words`, as it would at a prompt (COMP_WORDS and COMP_CWORD set)."""
    assert BASH is not None
    quoted = [shlex.quote(word) for word in words]
    line = shlex.quote(" ".join(words))
    program = (
        'eval "$SCRIPT"\n'
        f"COMP_WORDS=({' '.join(quoted)}); COMP_CWORD={len(words) - 1}; COMP_LINE={line}; COMP_POINT=${{#COMP_LINE}}\n"
        f"{function} {quoted[0]} {quoted[-1]} {quoted[-2]}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SCRIPT": script, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(BASH is None, reason="needs bash")
@pytest.mark.parametrize(
    ("program", "words", "offered"),
    [
        ("rampart-agent", ["st"], ["status"]),
        ("rampart-agent", ["policy", "va"], ["validate"]),
        ("rampart-agent", ["run", "--log-"], ["--log-format"]),
        ("rampart-collector", ["enroll-token", "cr"], ["create"]),
        ("rampart-collector", ["serve", "--log-format", ""], ["json", "text"]),
        ("rampart-collector", ["compl"], ["completion"]),
    ],
)
def test_bash_completes_commands_actions_and_options(program: str, words: list[str], offered: list[str]) -> None:
    made = run_cli(program, "completion", "bash")
    assert made.returncode == 0, made.stderr
    checked = subprocess.run([str(BASH), "-n"], input=made.stdout, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr  # bash -n: the script parses
    function = "_shtab_" + program.replace("-", "_")
    assert sorted(_complete(made.stdout, function, [program, *words])) == offered


def test_zsh_script_names_every_command() -> None:
    for program, commands in (
        ("rampart-agent", ("check", "policy", "enroll", "run", "status", "completion")),
        ("rampart-collector", ("init", "serve", "host", "summary", "enroll-token", "completion")),
    ):
        made = run_cli(program, "completion", "zsh")
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith(f"#compdef {program}\n")
        for command in commands:  # each a line of the _commands list: `  name:'description'`
            assert re.search(rf"^\s+{re.escape(command)}:'", made.stdout, re.MULTILINE), command
    assert run_cli("rampart-agent", "completion", "fish").returncode == 2
