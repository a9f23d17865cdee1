"""A stop signal that lands while the main thread holds the stop Event's lock (the moment
``Event.wait()`` re-takes it) must still stop the process. Each case runs in a subprocess so a
deadlock is a timeout here, not a hung test run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

# Recreates the window deterministically: the main thread takes the Event's lock (the private
# `_cond`, only to stand where Event.wait() stands when it re-takes it), a SIGTERM arrives, and
# the handler runs at the next bytecode while the lock is still held.
SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading
    from pipeline.stop_signals import stop_on_signals

    stop = threading.Event()
    if sys.argv[1] == "naive":
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # what the workers did before
    else:
        stop_on_signals(stop)
    with stop._cond:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # bytecodes: the handler runs here, lock held
            pass
    print("stopped" if stop.wait(5) else "not stopped", flush=True)
""")


def run(mode: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True,
                              text=True, timeout=8)
    except subprocess.TimeoutExpired:
        return None  # deadlocked (subprocess.run killed it)


def test_a_handler_that_sets_the_event_deadlocks_there():
    """The control: the old handler hangs in this window, so the next test means something."""
    assert run("naive") is None


def test_stop_on_signals_stops_in_that_window():
    p = run("safe")
    assert p is not None, "stop_on_signals deadlocked"
    assert p.returncode == 0 and p.stdout.strip() == "stopped", p.stdout + p.stderr


def test_the_first_signal_is_recorded_in_order():
    script = textwrap.dedent("""
        import os, signal, threading
        from pipeline.stop_signals import stop_on_signals
        stop = threading.Event()
        got = stop_on_signals(stop)
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
        print(got == [signal.SIGINT, signal.SIGTERM])
    """)
    p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=10)
    assert p.stdout.strip() == "True", p.stdout + p.stderr
