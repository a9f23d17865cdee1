"""The design's folder rules, checked against the code (docs/architecture.md says them in words).

- ``pipeline/`` imports none of the other product folders; ``sources/`` only ``pipeline``;
  ``actors/`` only ``pipeline`` and ``sources``; the gateway app imports ``actors`` only to send
  messages (``actors.registry``), while the command line (``gateway/cli/``, which starts
  workers) may import anything. Nothing in the product imports ``tools`` or ``tests``.
- No import circle among the product's modules (module-level imports).
- ``nassav worker``, run for real, never loads Starlette, uvicorn or the gateway app.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, stop_group, wait_for

PRODUCT = ("pipeline", "sources", "actors", "gateway")
ALLOWED = {
    "pipeline": set(),
    "sources": {"pipeline"},
    "actors": {"pipeline", "sources"},
    "gateway": {"pipeline", "sources", "actors"},
}
# The command line starts every kind of process; the app proper only sends messages to actors.
CLI_MODULES = {"gateway.cli", "gateway.cli.main", "gateway.cli.supervisor", "gateway.cli.client", "gateway.cli.__main__",
               "gateway.cli.importing"}
GATEWAY_MAY_USE_OF_ACTORS = {"actors.registry"}


def modules() -> dict[str, Path]:
    out = {}
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(path: Path, *, module_level_only: bool = False) -> set[str]:
    """Absolute module names imported by ``path`` (every ``X`` and ``X.name`` of ``from X import name``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    if module_level_only:  # module level includes `if TYPE_CHECKING:`-free top-level blocks
        nodes = [n for top in tree.body for n in ([top] + (top.body if isinstance(top, (ast.If, ast.Try)) else []))]
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_each_folder_imports_only_what_the_design_allows():
    wrong = []
    for name, path in modules().items():
        top = name.split(".")[0]
        for imp in imports(path):
            other = imp.split(".")[0]
            if other in ("tools", "tests"):
                wrong.append(f"{name} imports {imp}")
            elif other in PRODUCT and other != top and other not in ALLOWED[top]:
                wrong.append(f"{name} imports {imp}")
            elif top == "gateway" and other == "actors" and name not in CLI_MODULES \
                    and not any(imp == m or imp.startswith(m + ".") for m in GATEWAY_MAY_USE_OF_ACTORS):
                wrong.append(f"{name} imports {imp} (the app may only send messages: actors.registry)")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_wrong_import(tmp_path):
    # The walker must see function-level imports too (the CLI and actors import lazily).
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from gateway.app import create_app\n", encoding="utf-8")
    assert "gateway.app" in imports(probe)
    assert "gateway.app" not in imports(probe, module_level_only=True)


def test_no_import_circle():
    mods = modules()
    graph = {name: {i for i in imports(path, module_level_only=True) if i in mods and i != name}
             for name, path in mods.items()}
    circles = []

    def visit(start: str, node: str, path: list[str], seen: set[str]) -> None:
        for nxt in graph[node]:
            if nxt == start:
                circles.append(" -> ".join(path + [start]))
            elif nxt not in seen and nxt > start:  # each circle once, from its smallest module
                seen.add(nxt)
                visit(start, nxt, path + [nxt], seen)

    for name in graph:
        visit(name, name, [name], {name})
    assert not circles, "\n".join(circles)


def test_a_worker_loads_no_starlette(tmp_path, r, redis_url):
    # The real `nassav worker`, with Python reporting every import it makes.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NASSAV_REDIS_URL": redis_url,
           "NASSAV_DATA_DIR": str(tmp_path / "data")}
    env.pop("REDIS_URL", None)
    log = tmp_path / "imports.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "gateway.cli", "worker",
                                 "--queues", "metadata"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    try:
        # Registered in the worker registry: it has booted its dramatiq Worker and middleware.
        wait_for(lambda: r.hlen("nassav:workers") > 0 or proc.poll() is not None, 30, 0.1, "the worker to boot")
        assert proc.poll() is None, log.read_text()[-2000:]
    finally:
        stop_group(proc)
    loaded = {line.rsplit("|", 1)[-1].strip() for line in log.read_text().splitlines() if "|" in line}
    assert "dramatiq" in loaded and "actors.worker" in loaded  # the report is real
    assert not {m for m in loaded if m.split(".")[0] in ("starlette", "uvicorn") or m == "gateway.app"}
