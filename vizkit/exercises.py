"""Graded exercises: a learner's function falls back to vizkit's until it is written; `check` compares.

In the notebooks, the lines that are the idea sit in a function between nbgrader's
`### BEGIN SOLUTION` / `### END SOLUTION` markers; the student release replaces them with
`raise NotImplementedError()`. `@exercise(fallback=...)` lets the rest of the notebook run on
vizkit's implementation meanwhile, and the check cell after it calls `check`, which

* prints "pass" when the learner's result agrees with vizkit's,
* raises AssertionError saying what differs (shapes, values, where, a hint) when it does not,
* prints "not done yet" and returns 0.0 while the function is not written: nbgrader reads an
  autograder cell whose value is a number as its partial credit, so this scores 0 points
  without stopping the notebook.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["NOT_DONE", "check", "differences", "exercise"]

NOT_DONE = 0.0  # the value of an unsolved check cell: nbgrader's partial credit, 0 points
_checking = contextvars.ContextVar("vizkit_checking", default=False)


def _name(fn: Callable) -> str:
    """A readable name for a function: module.qualname for vizkit's, the bare name for the learner's."""
    module = getattr(fn, "__module__", "") or ""
    if module.startswith("vizkit"):
        return f"{module}.{fn.__qualname__}"
    return getattr(fn, "__name__", None) or repr(fn)


def _unwritten(err: NotImplementedError) -> bool:
    """The stub nbgrader leaves, `raise NotImplementedError()`, carries no message; torch's own errors do."""
    return not err.args or getattr(err, "exercise", None) is not None


def _call_as(fallback: Callable, arguments: dict) -> Any:
    """fallback called with the learner's bound arguments: positionally, except those the fallback
    takes keyword-only, which go by name."""
    keyword_only = {n for n, p in inspect.signature(fallback).parameters.items() if p.kind is p.KEYWORD_ONLY}
    args = [v for n, v in arguments.items() if n not in keyword_only]
    return fallback(*args, **{n: v for n, v in arguments.items() if n in keyword_only})


def exercise(fallback: Callable) -> Callable[[Callable], Callable]:
    """Decorator for a learner's function: while it raises NotImplementedError, call `fallback` (said once).

    The fallback gets the call's arguments with the function's own defaults filled in: in order, and by
    name where the fallback takes them keyword-only (vizkit's methods: everything after the target)."""

    def wrap(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except NotImplementedError as err:
                if not _unwritten(err):
                    raise
                if _checking.get():
                    err.exercise = getattr(err, "exercise", None) or fn.__name__  # the innermost unsolved one
                    raise
                if not call.announced:
                    print(
                        f"not done yet: {fn.__name__} is not written, so this notebook uses "
                        f"{_name(fallback)} in its place for now."
                    )
                    call.announced = True
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                return _call_as(fallback, bound.arguments)

        call.announced = False
        call.fallback = fallback
        return call

    return wrap


def _as_array(value: Any) -> Any:
    """Tensors and numbers -> NumPy arrays; lists, tuples, dicts and modules stay structures."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype in (torch.bfloat16, torch.float16) else value).numpy()
    if isinstance(value, (int, float, bool, np.number, np.bool_, np.ndarray)):
        return np.asarray(value)
    return value


def _describe_values(got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> list[str]:
    """What differs between two arrays of one shape (empty if they agree within the tolerance)."""
    if want.ndim == 0 and not np.isclose(got, want, atol=atol, rtol=rtol, equal_nan=True):
        return [f"yours is {got.item()!r}, vizkit's is {want.item()!r}"]
    if want.dtype == bool or got.dtype == bool or np.issubdtype(want.dtype, np.integer):
        wrong = got != want
        if not wrong.any():
            return []
        at = tuple(int(i) for i in np.argwhere(wrong)[0])
        return [
            f"{int(wrong.sum())} of {want.size} entries differ; first at index {at}: "
            f"yours {got[at].item()!r}, vizkit's {want[at].item()!r}"
        ]
    if np.iscomplexobj(got) or np.iscomplexobj(want):
        got, want = np.stack([got.real, got.imag]), np.stack([want.real, want.imag])
    got, want = got.astype(np.float64), want.astype(np.float64)
    extra_nan = np.isnan(got) & ~np.isnan(want)
    if extra_nan.any():
        return [f"yours contains {int(extra_nan.sum())} NaN value(s) where vizkit's has numbers"]
    close = np.isclose(got, want, atol=atol, rtol=rtol, equal_nan=True)
    if close.all():
        return []
    diff = np.abs(got - want)
    at = np.unravel_index(int(diff.argmax()), diff.shape)
    where = f" at index {tuple(int(i) for i in at)}" if diff.ndim else ""
    found = [
        f"{int((~close).sum())} of {want.size} values differ beyond atol={atol:g}, rtol={rtol:g}; "
        f"the largest difference is {diff[at]:.4g}{where} (yours {got[at]:.6g}, vizkit's {want[at]:.6g})"
    ]
    if np.allclose(got, -want, atol=atol, rtol=rtol):
        found.append("yours is vizkit's with the sign flipped")
    elif want.size > 1 and np.allclose(np.abs(got), np.abs(want), atol=atol, rtol=rtol):
        found.append("the magnitudes agree but some signs differ (a missing or extra abs()?)")
    elif want.size > 1 and np.abs(want).max() > 0:
        scale = float((got * want).sum() / (want * want).sum())
        if abs(scale - 1) > 1e-3 and np.allclose(got, scale * want, atol=atol, rtol=rtol):
            found.append(f"yours is vizkit's times {scale:.4g}: a scale or normalisation differs")
    return found


def differences(got: Any, want: Any, atol: float = 1e-5, rtol: float = 1e-4, path: str = "") -> list[str]:
    """What differs between the learner's result and vizkit's, recursively; empty if they agree."""
    where = f"{path}: " if path else ""
    want = want.state_dict() if isinstance(want, nn.Module) else want
    got = got.state_dict() if isinstance(got, nn.Module) else got
    if got is None and want is not None:
        return [f"{where}yours is None: did the function forget to `return` its result?"]
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{where}expected a dict, got {type(got).__name__}"]
        if set(got) != set(want):
            return [f"{where}keys differ: yours {sorted(map(str, got))}, vizkit's {sorted(map(str, want))}"]
        return [d for k in want for d in differences(got[k], want[k], atol, rtol, f"{path}[{k!r}]")]
    arrays = (torch.Tensor, np.ndarray)
    if (
        isinstance(want, (list, tuple))
        and isinstance(got, arrays)
        or isinstance(got, (list, tuple))
        and isinstance(want, arrays)
    ):
        try:  # a list of numbers against an array: compare as arrays
            got, want = np.asarray(_as_array(got), dtype=float), np.asarray(_as_array(want), dtype=float)
        except (TypeError, ValueError):
            return [f"{where}yours is a {type(got).__name__}, vizkit's a {type(want).__name__}"]
    if isinstance(want, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(want):
            size = len(got) if isinstance(got, (list, tuple)) else type(got).__name__
            return [f"{where}expected {len(want)} items, got {size}"]
        return [
            d
            for i, (g, w) in enumerate(zip(got, want))
            for d in differences(g, w, atol, rtol, f"{path}[{i}]")
        ]
    return _array_differences(got, want, atol, rtol, where)


def _array_differences(got: Any, want: Any, atol: float, rtol: float, where: str) -> list[str]:
    """What differs between two leaves: arrays (shape, then values) or plain values."""
    g, w = _as_array(got), _as_array(want)
    if not isinstance(w, np.ndarray) or not isinstance(g, np.ndarray):
        if isinstance(w, np.ndarray) or isinstance(g, np.ndarray):
            return [f"{where}yours is a {type(got).__name__}, vizkit's a {type(want).__name__}"]
        return [] if got == want else [f"{where}yours is {got!r}, vizkit's is {want!r}"]
    if g.shape != w.shape:
        squeezed = g.squeeze().shape == w.squeeze().shape
        note = " (the same values with a size-1 axis squeezed?)" if squeezed else ""
        return [f"{where}shape: yours {g.shape}, vizkit's {w.shape}{note}"]
    return [where + d for d in _describe_values(g, w, atol, rtol)]


def _snapshot(value: Any) -> Any:
    """A copy of a result that later in-place changes to its inputs cannot reach (tensors detached)."""
    if isinstance(value, nn.Module):
        value = value.state_dict()
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_snapshot(v) for v in value)
    return value


def check(
    yours: Callable,
    expected: Any,
    *args,
    hint: str = "",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    name: str | None = None,
    against: str | None = None,
    **kwargs,
) -> float | None:
    """Compare yours(*args, **kwargs) with `expected`: a value, or vizkit's function called the same way.

    name / against: how to call the two sides in messages (default: the functions' names).
    Prints "pass" and returns None when they agree; raises AssertionError listing what differs
    (and the hint) when they do not; prints "not done yet" and returns NOT_DONE (0.0, nbgrader's
    partial credit) while `yours` still raises NotImplementedError. vizkit's side runs first and
    is copied, so a learner's function that changes its inputs in place cannot spoil it. Anything
    written to stderr (warnings) goes to stdout: nbgrader gives 0 points to a cell with stderr.
    """
    with contextlib.redirect_stderr(sys.stdout), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            return _check(yours, expected, args, kwargs, hint, atol, rtol, name, against)
        finally:
            for w in caught:
                print(f"warning ({w.category.__name__}): {w.message}")


def _check(yours, expected, args, kwargs, hint, atol, rtol, name, against) -> float | None:
    name = name or _name(yours)
    reference = against or (_name(expected) if callable(expected) else "vizkit's result")
    reference = "vizkit's result" if "<lambda>" in reference else reference
    want = _snapshot(expected(*args, **kwargs) if callable(expected) else expected)
    token = _checking.set(True)
    try:
        got = yours(*args, **kwargs)
    except NotImplementedError as err:
        if not _unwritten(err):
            raise
        name = getattr(err, "exercise", None) or name
        print(
            f"not done yet: {name} still raises NotImplementedError. Fill in its body where it is defined, "
            f"run that cell, then this one. Until then the notebook uses vizkit's version, and this check scores 0."
        )
        return NOT_DONE
    finally:
        _checking.reset(token)
    found = differences(got, want, atol, rtol)
    if found:
        more = [f"... and {len(found) - 5} more"] if len(found) > 6 else []
        lines = "\n".join(f"  - {d}" for d in found[: 5 if more else 6] + more)
        raise AssertionError(
            f"{name} differs from {reference}:\n{lines}" + (f"\nhint: {hint}" if hint else "")
        )
    print(f"pass: {name} agrees with {reference}.")
    return None
