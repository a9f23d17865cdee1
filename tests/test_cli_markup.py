"""Text from users and from the service printed by the command-line client as it is: square
brackets in a blocklist reason are not rich markup (a "[/mnt/old]" crashed `nassav blocklist`,
a "[link=…]" vanished). Subprocesses against `nassav up` with a token."""

from __future__ import annotations

from tests.test_cli import nassav, service  # noqa: F401 - the module's service fixture


def test_brackets_in_a_reason_are_printed_not_interpreted(service):
    reason = "[/mnt/old] broken, [link=x] [b]"
    p = nassav("block", "NOPE-778", "--reason", reason, "--url", service.base)
    assert p.returncode == 0, p.stdout + p.stderr
    listed = nassav("blocklist", "--url", service.base)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert reason in listed.stdout, listed.stdout


def test_brackets_in_a_refusal_are_printed_not_interpreted(service):
    reason = "[/mnt/old] has it, [x.com] copy"
    assert nassav("block", "NOPE-779", "--reason", reason, "--url", service.base).returncode == 0
    p = nassav("add", "NOPE-779", "--url", service.base)
    assert p.returncode == 1 and reason in p.stdout, p.stdout + p.stderr
