"""vizkit.exercises: the fallback of an unwritten exercise and the check that compares with vizkit."""

import numpy as np
import pytest
import torch
from torch import nn

from vizkit.exercises import NOT_DONE, check, differences, exercise


def reference(x, k=2):
    return x * k


def unsolved(x, k=2):
    raise NotImplementedError()


def test_an_unwritten_exercise_falls_back_and_says_so_once(capsys):
    f = exercise(fallback=reference)(unsolved)
    assert torch.equal(f(torch.ones(2)), torch.full((2,), 2.0)) and f(torch.ones(1), k=3).item() == 3
    out = capsys.readouterr().out
    assert out.count("not done yet: unsolved is not written") == 1 and "reference" in out


def test_a_written_exercise_runs_the_learners_code():
    f = exercise(fallback=reference)(lambda x, k=2: x + 1)
    assert f(torch.zeros(1)).item() == 1


def test_check_passes_when_the_results_agree(capsys):
    solved = exercise(fallback=reference)(lambda x, k=2: x + x)
    assert check(solved, reference, torch.arange(4.0)) is None
    assert "pass: <lambda> agrees with" in capsys.readouterr().out


def test_check_reports_not_done_without_falling_back(capsys):
    f = exercise(fallback=reference)(unsolved)
    assert check(f, reference, torch.ones(3)) == NOT_DONE == 0.0
    assert "not done yet: unsolved still raises NotImplementedError" in capsys.readouterr().out
    # through a lambda the message names the unwritten exercise, not the lambda
    assert check(lambda: f(torch.ones(3)), reference(torch.ones(3)), name="lambda check") == 0.0
    assert "not done yet: unsolved" in capsys.readouterr().out


def test_check_says_what_differs_and_gives_the_hint():
    x = torch.linspace(-1, 1, 11)
    with pytest.raises(AssertionError) as err:
        check(lambda x: -2 * x, reference, x, name="mine", hint="multiply by k")
    text = str(err.value)
    assert "mine differs from" in text and "sign flipped" in text and "hint: multiply by k" in text
    with pytest.raises(AssertionError, match=r"times 0\.5: a scale"):
        check(lambda x: x, reference, x)
    with pytest.raises(AssertionError, match=r"shape: yours \(1, 11\), vizkit's \(11,\).*squeezed"):
        check(lambda x: 2 * x[None], reference, x)
    with pytest.raises(AssertionError, match="magnitudes agree"):
        check(lambda x: (2 * x).abs(), reference, x)
    with pytest.raises(AssertionError, match="forget to `return`"):
        check(lambda x: None, reference, x)


def test_differences_in_detail():
    a = np.arange(6.0).reshape(2, 3)
    b = a.copy()
    b[1, 2] = 9
    (msg,) = differences(b, a)
    assert (
        "1 of 6 values differ" in msg and "index (1, 2)" in msg and "yours 9" in msg and "vizkit's 5" in msg
    )
    assert differences(a + 1e-7, a) == []
    assert "NaN" in differences(np.full(3, np.nan), np.zeros(3))[0]
    assert "2 of 3 entries differ" in differences(np.array([0, 5, 7]), np.array([0, 1, 2]))[0]
    assert differences((1, 2, 3), (1, 2, 4)) == ["[2]: yours is 3, vizkit's is 4"]
    assert "expected 3 items, got 2" in differences([1, 2], [1, 2, 3])[0]
    assert "keys differ" in differences({"a": 1}, {"b": 1})[0]
    net, other = nn.Linear(2, 2), nn.Linear(2, 2)
    assert differences(net, net) == [] and differences(other, net)[0].startswith("['weight']")


def test_the_reference_runs_first_and_is_copied():
    """A learner's function that changes its input in place cannot spoil the reference."""

    def in_place(x, k=2):
        return x.mul_(k)

    assert check(in_place, reference, torch.ones(3)) is None  # reference sees ones, in_place doubles them
    with pytest.raises(AssertionError, match="values differ"):  # the reference returns its input itself
        check(lambda x: x.add_(1), lambda x: x, torch.zeros(3))


def test_warnings_go_to_stdout_where_nbgrader_does_not_zero_the_cell(capsys):
    import warnings

    def noisy(x, k=2):
        warnings.warn("a learner's warning", stacklevel=2)
        return x * k

    assert check(noisy, reference, torch.ones(2)) is None
    out = capsys.readouterr()
    assert "a learner's warning" in out.out and out.err == ""


def test_the_fallback_gets_the_learners_defaults_and_real_errors_pass_through():
    seen = []
    f = exercise(fallback=lambda x, k: seen.append(k) or x * k)(lambda x, k=5: unsolved(x))
    assert f(torch.ones(1)).item() == 5 and seen == [5]

    def keyword_only(x, *, k):  # vizkit's methods: everything after the target by name
        return x * k

    h = exercise(fallback=keyword_only)(lambda x, k=3: unsolved(x))
    assert h(torch.ones(1), 4).item() == 4 and h(torch.ones(1)).item() == 3

    def broken(x, k=2):
        raise NotImplementedError("this operator is not implemented on this backend")

    g = exercise(fallback=reference)(broken)
    with pytest.raises(NotImplementedError, match="backend"):
        g(torch.ones(1))
    with pytest.raises(NotImplementedError, match="backend"):
        check(g, reference, torch.ones(1))


def test_nan_where_vizkit_has_nan_is_agreement():
    assert differences(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])) == []
    assert differences(float("nan"), float("nan")) == []
    assert differences(torch.tensor([1.0, 2.0], dtype=torch.bfloat16), [1.0, 2.0]) == []
    assert "is a list, vizkit's a ndarray" in differences([[1, 2], [3]], np.zeros(2))[0]


def test_a_long_list_of_differences_is_cut_short():
    want = {f"w{i}": torch.zeros(2) for i in range(9)}
    with pytest.raises(AssertionError) as err:
        check(lambda: {k: v + 1 for k, v in want.items()}, want, name="net")
    assert str(err.value).count("\n  - ") == 6 and "... and 4 more" in str(err.value)
