"""Tests of diagnostics.schedules: every:K / K, log:N, list: / bare comma lists, all, none, and
the errors of invalid specs.

Expected epochs are worked out by hand in the tests (multiples of K, powers of ten, geometric
points written out), never taken from the function under test.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from diagnostics.schedules import schedule


def as_list(x) -> list[int]:
    arr = np.asarray(x)
    assert arr.dtype.kind == "i", f"schedule returned dtype {arr.dtype}, expected integers"
    assert arr.ndim == 1
    return [int(v) for v in arr]


def assert_sorted_unique(x) -> None:
    arr = np.asarray(x)
    assert (np.diff(arr) > 0).all(), f"not strictly increasing: {arr}"


# ---- every:K and K ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["every:10", "10", 10, " every:10 "], ids=repr)
def test_every_k_takes_multiples_of_k_and_the_last_epoch(spec):
    assert as_list(schedule(spec, 35)) == [0, 10, 20, 30, 35]
    assert as_list(schedule(spec, 35, first=1)) == [10, 20, 30, 35]
    assert as_list(schedule(spec, 40)) == [0, 10, 20, 30, 40]  # last epoch not repeated


def test_every_k_larger_than_the_budget_keeps_first_and_last():
    assert as_list(schedule("every:1000", 35)) == [0, 35]
    assert as_list(schedule("every:1000", 35, first=1)) == [35]


@pytest.mark.parametrize("spec", ["all", "every:1", "1", 1], ids=repr)
def test_all_is_every_epoch(spec):
    assert as_list(schedule(spec, 7)) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert as_list(schedule(spec, 7, first=1)) == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("spec", ["none", None], ids=repr)
def test_none_is_empty(spec):
    for first in (0, 1):
        out = schedule(spec, 100, first=first)
        assert np.asarray(out).size == 0


# ---- log:N --------------------------------------------------------------------------------------


def test_log_hand_worked_examples():
    # first = 1: five points geometric between 1 and 10^4 are the powers of ten
    assert as_list(schedule("log:5", 10_000, first=1)) == [1, 10, 100, 1000, 10_000]
    # first = 0: epoch 0 takes one of the five slots; four geometric points between 1 and 10^4:
    # 10^(4/3) = 21.544 -> 22, 10^(8/3) = 464.16 -> 464
    assert as_list(schedule("log:5", 10_000)) == [0, 1, 22, 464, 10_000]
    # 1000 points over 50 epochs: every epoch, once
    assert as_list(schedule("log:1000", 50)) == list(range(51))


def test_log_100_over_100000_epochs():
    out = as_list(schedule("log:100", 100_000))
    assert len(out) <= 100
    assert out[0] == 0 and out[-1] == 100_000
    assert_sorted_unique(out)
    # log-spaced: roughly as many points per decade in each of the upper decades (10^5 spans five
    # decades and 99 points -> ~20 per decade once rounding stops merging them)
    per_decade = [sum(10**d < e <= 10 ** (d + 1) for e in out) for d in (2, 3, 4)]
    assert all(17 <= n <= 21 for n in per_decade), per_decade


LOG_N = [3, 5, 10, 100]
LOG_E = [1, 2, 7, 100, 5000, 100_000]


def check_log(n: int, epochs: int, first: int) -> None:
    out = as_list(schedule(f"log:{n}", epochs, first=first))
    assert len(out) <= n, f"log:{n} over {epochs} epochs (first={first}) gave {out}"
    assert (0 in out) == (first == 0), out
    assert out[-1] == epochs, out
    assert_sorted_unique(out)
    assert all(first <= e <= epochs for e in out)


@pytest.mark.parametrize("first", [0, 1])
@pytest.mark.parametrize("epochs", LOG_E)
@pytest.mark.parametrize("n", LOG_N)
def test_log_n_properties(n, epochs, first):
    check_log(n, epochs, first)


def test_log_2_from_epoch_0_has_at_most_2_entries():
    # expected [0, E]: at most 2 entries, 0 and the last
    for epochs in LOG_E:
        check_log(2, epochs, 0)


def test_log_1_from_epoch_1_has_at_most_1_entry():
    # expected [E]: the last epoch is always included
    for epochs in LOG_E:
        check_log(1, epochs, 1)


# ---- list: and bare comma lists -----------------------------------------------------------------


@pytest.mark.parametrize("spec", ["list:50,3,7,3,0", "50,3,7,3,0", "list: 50, 3 ,7,3,0"], ids=repr)
def test_list_is_exactly_those_sorted_unique(spec):
    assert as_list(schedule(spec, 100)) == [0, 3, 7, 50]
    assert as_list(schedule(spec, 100, first=1)) == [3, 7, 50]


def test_list_drops_epochs_outside_the_budget():
    # documented: "sorted unique epochs in [first, epochs]"
    assert as_list(schedule("list:5,200,10", 100)) == [5, 10]
    assert as_list(schedule("5,200,10", 100)) == [5, 10]


def test_single_entry_list():
    assert as_list(schedule("list:7", 100)) == [7]


# ---- invalid specs ------------------------------------------------------------------------------

INVALID = [
    "every:0",
    "0",
    "-3",
    "every:-2",
    "every:",
    "every:2.5",
    "log:0",
    "log:-4",
    "log:x",
    "log:",
    "list:",
    "list:a,b",
    "list:-1,2",
    "1,,x",
    "foo:3",
    "sometimes",
    "",
    "2.5",
]


@pytest.mark.parametrize("spec", INVALID, ids=repr)
def test_invalid_spec_raises_value_error_naming_it(spec):
    with pytest.raises(ValueError) as err:
        schedule(spec, 100)
    msg = str(err.value)
    assert repr(spec) in msg or f'"{spec}"' in msg, msg
    # and says what is accepted
    for form in ("every:", "log:", "list:", "all", "none"):
        assert form in msg, msg


@pytest.mark.parametrize("spec", [0, -5], ids=repr)
def test_invalid_int_spec_raises(spec):
    with pytest.raises(ValueError, match=re.escape(str(spec))):
        schedule(spec, 100)
