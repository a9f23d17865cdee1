"""Every ``nassav COMMAND --help`` ends with examples, and every example is a command line the
real parser accepts: an option renamed or removed fails here, not in a user's terminal."""

from __future__ import annotations

import argparse
import shlex

import pytest

from gateway.cli import examples
from gateway.cli.main import build_parser, main
from pipeline.hls import cli as hls_cli


def commands() -> list[str]:
    """The subcommands the ``nassav`` parser really has (hls is handed to its own parser)."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_every_command_has_examples():
    missing = [c for c in commands() if c != "hls" and c not in examples.EXAMPLES]
    assert not missing, f"commands without examples in gateway/cli/examples.py: {missing}"
    assert set(examples.EXAMPLES) <= set(commands()), "examples for a command that does not exist"


@pytest.mark.parametrize("command", sorted(examples.EXAMPLES))
def test_the_help_shows_the_examples(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    for cmd, _ in examples.EXAMPLES[command]:
        assert cmd in out  # as written (RawDescription keeps the lines)


@pytest.mark.parametrize("line", [cmd for rows in examples.EXAMPLES.values() for cmd, _ in rows])
def test_every_example_parses(line):
    argv = shlex.split(line)
    assert argv[0] == "nassav"
    args = build_parser().parse_args(argv[1:])  # SystemExit(2) on an unknown option or value
    assert args.command == argv[1]


def test_the_hls_examples_parse(capsys):
    lines = [ln.strip() for ln in hls_cli.EXAMPLES.splitlines()[1:]]
    assert lines
    for line in lines:
        argv = shlex.split(line.split("   ")[0])  # the command, without its note
        assert argv[:2] == ["nassav", "hls"]
        hls_cli.build_parser().parse_args(argv[2:])
    with pytest.raises(SystemExit):
        main(["hls", "--help"])
    assert "examples:" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["worker", "reindex", "import"])
def test_commands_that_bind_nothing_do_not_offer_host_and_port(command, capsys):
    """They still accept them (`nassav up` passes its own on to its workers)."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "--host" not in out and "--port" not in out
    extra = ["/tmp"] if command == "import" else []
    assert build_parser().parse_args([command, *extra, "--host", "127.0.0.1", "--port", "8001"]).port == 8001
