"""Schedules as objects: each equals the string form it stands for."""

import numpy as np
import pytest

from diagnostics.schedules import Schedule, schedule


@pytest.mark.parametrize(
    ("obj", "text", "budget", "first", "expected"),
    [
        (Schedule.at(0, 7), "list:0,7", 10, 0, [0, 7]),
        (Schedule.at(0, 7), "list:0,7", 10, 1, [7]),  # the loss has no epoch 0
        (Schedule.every(4), "every:4", 10, 0, [0, 4, 8, 10]),  # the last epoch always
        (Schedule.log(3), "log:3", 100, 1, [1, 10, 100]),  # geomspace(1, 100, 3)
        (Schedule.never(), "none", 10, 0, []),
    ],
)
def test_schedule_object_is_its_string(obj, text, budget, first, expected):
    assert str(obj) == text
    np.testing.assert_array_equal(obj.epochs(budget, first=first), expected)
    np.testing.assert_array_equal(schedule(obj, budget, first=first), expected)
