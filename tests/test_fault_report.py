"""The fault report's table: figure rows, quiet tests counted, failures always listed."""

from tools.fault_report import table

FIG = "tests/faults/test_x.py::test_kill"
QUIET_OK = "tests/security/test_y.py::test_rule"
QUIET_BAD = "tests/security/test_y.py::test_broken"


def test_table_lists_figures_and_failures_and_counts_the_quiet_passes():
    figures = [{"fault": "SIGKILL worker", "test": FIG, "ts": 1.0, "recover_s": 12.5, "data_lost": "none",
                "segments": 10}]
    runs = [({FIG: "passed", QUIET_OK: "passed", QUIET_BAD: "passed"}, figures, 10.0),
            ({FIG: "passed", QUIET_OK: "passed", QUIET_BAD: "failed"}, figures, 11.0)]
    out = table(runs)
    assert "| SIGKILL worker | 2 | 2 | 12.5 s | none |" in out
    assert "| SIGKILL worker | segments=10 |" in out
    assert f"| {QUIET_BAD} | 2 | 1 | — | ? |" in out  # failed once: listed
    assert QUIET_OK not in out
    assert "1 more tests report no figure and passed in every run." in out
    assert "run 1: 10 s, run 2: 11 s" in out
