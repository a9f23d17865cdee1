"""Which configured event names an event answers to: ``task_completed``, or ``task_completed:import``.

A target's ``events`` names event types. A job's ``task_completed`` / ``task_failed`` may carry
the job's kind (``data.kind``); the kinds in :data:`QUIET_KINDS` are jobs that run by the
hundred inside one larger run which reports itself (an import's titles: ``import_finished``
counts them), so a bare type does not match them and a target opts in with ``type:kind``.
"""

from __future__ import annotations

from typing import Iterable

from pipeline.config import QUIET_JOB_KINDS as QUIET_KINDS
from pipeline.events import Event


def kind_of(e: Event) -> str:
    """The job kind an event carries ("" when none)."""
    return str(e.data.get("kind") or "")


def wants(chosen: Iterable[str], e: Event, quiet: tuple[str, ...] = QUIET_KINDS) -> bool:
    """True when the event names in ``chosen`` select ``e`` (a bare type skips ``quiet`` kinds)."""
    names = set(chosen)
    kind = kind_of(e)
    if kind and f"{e.type}:{kind}" in names:
        return True
    return e.type in names and kind not in quiet


def types_of(chosen: Iterable[str]) -> set[str]:
    """The bare event types behind ``chosen`` (``task_completed:import`` → ``task_completed``)."""
    return {name.partition(":")[0] for name in chosen}
