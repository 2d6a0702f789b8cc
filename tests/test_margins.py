"""The run's seed (VIZKIT_SEED) moves every seeded draw; `expect` checks a claim and shows its margin."""

import json

import numpy as np
import pytest

import vizkit
from vizkit import data, metrics


def test_expect_prints_value_bound_and_margin_and_returns_the_margin(capsys):
    assert vizkit.expect("agreement", 0.8, above=0.75) == pytest.approx(0.05)
    assert capsys.readouterr().out == "holds: agreement: 0.8 > 0.75, margin +0.05\n"


def test_expect_fails_with_the_numbers_when_the_claim_does_not_hold():
    with pytest.raises(AssertionError, match=r"layout: 0.16 < 0.1, margin -0.06: the claim does not hold"):
        vizkit.expect("layout", 0.16, below=0.1)


def test_strict_and_inclusive_bounds_differ_only_at_equality():
    assert vizkit.expect("x", 0.9, at_least=0.9) == 0
    assert vizkit.expect("x", 0.0, at_most=0.0) == 0
    with pytest.raises(AssertionError):
        vizkit.expect("x", 0.9, above=0.9)
    with pytest.raises(AssertionError):
        vizkit.expect("x", 0.0, below=0.0)


def test_arrays_are_compared_elementwise_and_the_worst_element_is_reported(capsys):
    margin = vizkit.expect("transfer", np.array([0.2, 0.4, 0.5]), above=[0.1, 0.35, 0.2], below=0.9)
    assert margin == pytest.approx(0.05)
    assert "0.4 > 0.35 (worst of 3, at (1,)), margin +0.05" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"0.5 < 0.45 \(worst of 3, at \(2,\)\)"):
        vizkit.expect("transfer", [0.2, 0.4, 0.5], below=[0.3, 0.5, 0.45])


def test_a_bound_is_required():
    with pytest.raises(TypeError, match="needs a bound"):
        vizkit.expect("nothing", 1.0)


def test_checks_are_recorded_for_the_seed_sweep(tmp_path, monkeypatch):
    path = tmp_path / "margins.jsonl"
    monkeypatch.setenv("VIZKIT_MARGINS", str(path))
    vizkit.expect("share", 0.6, above=0.5, at_most=1.0)
    with pytest.raises(AssertionError):
        vizkit.expect("loss", 2.0, below=1.0)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["what"], r["op"], r["bound"]) for r in rows] == [("share", "<=", 1.0), ("share", ">", 0.5),
                                                               ("loss", "<", 1.0)]  # fmt: skip
    assert rows[1]["margin"] == pytest.approx(0.1) and rows[1]["relative"] == pytest.approx(0.1 / 0.6)
    assert rows[2]["margin"] == pytest.approx(-1.0)


def test_the_run_seed_offsets_every_seed(monkeypatch):
    monkeypatch.delenv("VIZKIT_SEED", raising=False)
    assert vizkit.seed(7) == 7 and vizkit.seed() == 0
    unset = data.composites(2, seed=5, size=64)[0], metrics.random_map((8, 8), seed=5)
    monkeypatch.setenv("VIZKIT_SEED", "2")
    assert vizkit.seed(7) == 9
    moved = data.composites(2, seed=3, size=64)[0], metrics.random_map((8, 8), seed=3)
    assert all(
        np.array_equal(a, b) for a, b in zip(unset, moved)
    )  # a vizkit seed k draws with k + VIZKIT_SEED
    assert not np.array_equal(unset[1], metrics.random_map((8, 8), seed=5))


def test_a_bad_run_seed_says_what_is_expected(monkeypatch):
    monkeypatch.setenv("VIZKIT_SEED", "one")
    with pytest.raises(ValueError, match="VIZKIT_SEED must be an integer"):
        vizkit.seed(0)
