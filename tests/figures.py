"""Figures a robustness test reports for ``tools/fault_report.py``.

A test calls ``record(fault, **figures)``: the line is printed as ``FIGURE {json}`` and, when
``$NASSAV_FAULT_FIGURES`` names a file, appended to it as a JSON line. The fault suite
(``tests/faults/``) and the security suite (``tests/security/``) both report this way.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

FIGURES_ENV = "NASSAV_FAULT_FIGURES"


def record(fault: str, **figures: Any) -> dict[str, Any]:
    """Report a figure of ``fault`` (printed, and appended to $NASSAV_FAULT_FIGURES)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    line = {"fault": fault, "test": test, "ts": round(time.time(), 3), **figures}
    print("FIGURE " + json.dumps(line, ensure_ascii=False), flush=True)
    path = os.environ.get(FIGURES_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return line
