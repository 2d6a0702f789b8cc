"""A notebook's claim about a measured number, checked with its margin in sight.

`expect("top-1 agreement", acc, above=0.75)` asserts the bound and prints the value, the bound and
the margin, so that a claim that holds only just shows in the output before it fails on another
machine. With VIZKIT_MARGINS=<file> set, each check also appends a JSON line to that file (what,
value, bound, margin, relative margin): `make test-seeds` reads them to report each notebook's
smallest margin over seeds and thread counts.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

__all__ = ["expect"]

_RULES = {  # keyword -> (sign of the margin, symbol, strict)
    "below": (1.0, "<", True),
    "at_most": (1.0, "<=", False),
    "above": (-1.0, ">", True),
    "at_least": (-1.0, ">=", False),
}


def expect(
    what: str,
    value: Any,
    *,
    below: Any = None,
    at_most: Any = None,
    above: Any = None,
    at_least: Any = None,
) -> float:
    """Assert `value` against each given bound, print value, bound and margin; return the smallest margin.

    value and the bounds: numbers or arrays (compared elementwise after broadcasting; the worst element
    is reported). The margin is how far the value is from failing (bound - value for below/at_most,
    value - bound for above/at_least), in the value's units.
    """
    given = {k: b for k, b in zip(_RULES, (below, at_most, above, at_least)) if b is not None}
    if not given:
        raise TypeError("expect() needs a bound: below=, at_most=, above= or at_least=")
    smallest = float("inf")
    for key, bound in given.items():
        sign, symbol, strict = _RULES[key]
        v, b = np.broadcast_arrays(np.asarray(value, float), np.asarray(bound, float))
        margins = sign * (b - v)
        worst = np.unravel_index(int(np.argmin(margins)), margins.shape) if margins.ndim else ()
        margin = float(margins[worst]) + 0.0  # no "-0"
        ok = margin > 0 if strict else margin >= 0
        at = f" (worst of {v.size}, at {tuple(int(i) for i in worst)})" if v.size > 1 else ""
        line = f"{what}: {v[worst]:.4g} {symbol} {b[worst]:.4g}{at}, margin {margin:+.3g}"
        _record(what, float(v[worst]), float(b[worst]), symbol, margin)
        if not ok:
            raise AssertionError(f"{line}: the claim does not hold")
        print(f"holds: {line}")
        smallest = min(smallest, margin)
    return smallest


def _record(what: str, value: float, bound: float, symbol: str, margin: float) -> None:
    """Append one check to the file named by VIZKIT_MARGINS, if set (the seed sweep reads it)."""
    path = os.environ.get("VIZKIT_MARGINS")
    if not path:
        return
    scale = max(abs(bound), abs(value), 1e-12)
    row = {"what": what, "value": value, "bound": bound, "op": symbol, "margin": margin,
           "relative": margin / scale}  # fmt: skip
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
