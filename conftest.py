"""A notebook cell that writes a warning fails its nbval test: rendered notebooks show no warning text."""

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    outputs = getattr(item, "test_outputs", None)  # nbval's cell items keep what the cell wrote
    if call.when != "call" or not report.passed or not outputs:
        return
    warned = [
        o.get("text", "").strip()
        for o in outputs
        if o.get("name") == "stderr" and ("Warning" in o.get("text", "") or "Error" in o.get("text", ""))
    ]
    if warned:
        report.outcome = "failed"
        report.longrepr = "the cell wrote warning text (fix its cause):\n" + "\n".join(warned)
