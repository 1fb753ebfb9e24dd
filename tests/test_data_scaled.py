"""The ``scaled:FACTOR:SPEC`` data spec: SPEC's data with its targets multiplied by FACTOR."""

from __future__ import annotations

import numpy as np
import pytest

from diagnostics.data import load_data, question_data


def test_halved_question_targets():
    d = load_data("scaled:0.5:question")
    q = question_data()
    assert d.name == "scaled:0.5:question"
    np.testing.assert_array_equal(d.X, q.X)
    np.testing.assert_array_equal(d.Y, [[0.15], [0.4], [0.3], [0.5], [0.5], [0.35]])


def test_scaled_addition_and_nesting():
    d = load_data("scaled:2:add:5:0:1:3")
    a = load_data("add:5:0:1:3")
    assert d.name == "scaled:2:add:5:0:1:3"
    np.testing.assert_array_equal(d.X, a.X)
    np.testing.assert_array_equal(d.Y, 2 * a.Y)
    twice = load_data("scaled:0.5:scaled:0.5:question")  # a scaled spec is a spec
    np.testing.assert_allclose(twice.Y, question_data().Y / 4)


def test_scaled_csv_passes_its_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,3\n4,5,9\n", encoding="utf-8")
    d = load_data(f"scaled:0.1:{path}", inputs=["a"], targets=["y"])
    np.testing.assert_array_equal(d.X, [[1.0], [4.0]])
    np.testing.assert_allclose(d.Y, [[0.3], [0.9]])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("scaled", "malformed data spec 'scaled'"),
        ("scaled:0.5", "malformed data spec"),
        ("scaled:0.5:", "malformed data spec"),
        ("scaled:0:question", "FACTOR='0' is not a finite positive number"),
        ("scaled:-1:question", "FACTOR='-1' is not a finite positive number"),
        ("scaled:inf:question", "FACTOR='inf' is not a finite positive number"),
        ("scaled:nan:question", "FACTOR='nan' is not a finite positive number"),
        ("scaled:half:question", "FACTOR='half' is not a finite positive number"),
        ("scaled:0.5:nothing", "unknown data 'nothing'"),
    ],
)
def test_bad_scaled_specs(spec, message):
    with pytest.raises(ValueError, match=message) as err:
        load_data(spec)
    assert "\n" not in str(err.value)  # one line
