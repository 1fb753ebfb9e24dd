"""Tests of diagnostics.data: the question's pairs, the addition task, CSV loading and specs."""

from __future__ import annotations

import numpy as np
import pytest

from diagnostics.data import (
    Dataset,
    addition_data,
    check_layers,
    load_csv,
    load_data,
    question_data,
)


def write(tmp_path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def assert_layout(data: Dataset) -> None:
    for a in (data.X, data.Y):
        assert a.dtype == np.float64
        assert a.ndim == 2
        assert a.flags.c_contiguous
        assert np.isfinite(a).all()


# --- question_data ----------------------------------------------------------------------------


def test_question_data_values_and_order():
    data = question_data()
    assert data.name == "question"
    assert (data.n_samples, data.n_inputs, data.n_outputs) == (6, 2, 1)
    assert data.X.shape == (6, 2)
    assert data.Y.shape == (6, 1)
    X = [[0.1, 0.2], [0.5, 0.3], [0.2, 0.4], [0.3, 0.7], [0.5, 0.5], [0.4, 0.3]]
    Y = [[0.3], [0.8], [0.6], [1.0], [1.0], [0.7]]
    assert data.X.tolist() == X
    assert data.Y.tolist() == Y  # exact literals, not 0.1 + 0.2
    assert_layout(data)


def test_question_targets_are_literals_not_sums():
    data = question_data()
    assert data.Y[0, 0] == 0.3
    assert data.Y[0, 0] != data.X[0, 0] + data.X[0, 1]


# --- addition_data ----------------------------------------------------------------------------


def test_addition_targets_are_sums():
    data = addition_data(500, seed=3)
    assert data.X.shape == (500, 2)
    assert data.Y.shape == (500, 1)
    np.testing.assert_array_equal(data.Y[:, 0], data.X.sum(axis=1))
    assert_layout(data)


@pytest.mark.parametrize(("low", "high"), [(0.0, 0.5), (-2.0, 3.0), (10.0, 10.25)])
def test_addition_inputs_in_range(low, high):
    data = addition_data(2000, low, high, seed=1)
    assert data.X.min() >= low
    assert data.X.max() < high
    # the draws fill the interval, not a corner of it
    assert data.X.min() < low + 0.05 * (high - low)
    assert data.X.max() > high - 0.05 * (high - low)


def test_addition_same_seed_same_data():
    a = addition_data(50, seed=7)
    b = addition_data(50, seed=7)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.Y, b.Y)


def test_addition_draws_from_default_rng():
    expected = np.random.default_rng(11).uniform(0.0, 0.5, size=(20, 2))
    np.testing.assert_array_equal(addition_data(20, seed=11).X, expected)


def test_addition_different_seeds_differ():
    a = addition_data(50, seed=0)
    b = addition_data(50, seed=1)
    assert not np.array_equal(a.X, b.X)


def test_addition_name_is_canonical_spec():
    assert addition_data(200).name == "add:200:0:0.5:0"
    assert addition_data(10, -1, 2.5, 4).name == "add:10:-1:2.5:4"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n": 0}, "got 0"),
        ({"n": -3}, "got -3"),
        ({"n": 2.5}, "2.5"),
        ({"n": True}, "True"),
        ({"n": 5, "low": 1.0, "high": 1.0}, "low=1.0 and high=1.0"),
        ({"n": 5, "low": 2.0, "high": 1.0}, "low=2.0 and high=1.0"),
        ({"n": 5, "low": 0.0, "high": float("inf")}, "inf"),
        ({"n": 5, "seed": -1}, "got -1"),
    ],
)
def test_addition_rejects_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match="must be") as err:
        addition_data(**kwargs)
    assert fragment in str(err.value)


# --- load_csv: reading ------------------------------------------------------------------------


def test_csv_with_header_defaults(tmp_path):
    path = write(tmp_path, "a,b,y\n0.1,0.2,0.3\n0.5,0.25,0.75\n")
    data = load_csv(path)
    assert data.name == path
    np.testing.assert_array_equal(data.X, [[0.1, 0.2], [0.5, 0.25]])
    np.testing.assert_array_equal(data.Y, [[0.3], [0.75]])
    assert_layout(data)


def test_csv_without_header_defaults(tmp_path):
    path = write(tmp_path, "1,2,3\n4,5,9\n")
    data = load_csv(path)
    np.testing.assert_array_equal(data.X, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(data.Y, [[3], [9]])
    assert_layout(data)


def test_csv_first_row_numeric_is_data_not_header(tmp_path):
    path = write(tmp_path, "1,2,3\n")
    assert load_csv(path).n_samples == 1


def test_csv_accepts_pathlib_path(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x,y\n1,2\n", encoding="utf-8")
    assert load_csv(path).name == str(path)


def test_csv_columns_by_name_in_given_order(tmp_path):
    path = write(tmp_path, "a,b,c,d\n1,2,3,4\n5,6,7,8\n")
    data = load_csv(path, inputs=["c", "a"], targets=["d", "b"])
    np.testing.assert_array_equal(data.X, [[3, 1], [7, 5]])
    np.testing.assert_array_equal(data.Y, [[4, 2], [8, 6]])
    assert_layout(data)


def test_csv_columns_by_int_index_with_header(tmp_path):
    path = write(tmp_path, "a,b,c\n1,2,3\n")
    data = load_csv(path, inputs=[2], targets=[0])
    np.testing.assert_array_equal(data.X, [[3]])
    np.testing.assert_array_equal(data.Y, [[1]])


def test_csv_digit_string_is_an_index_even_with_header(tmp_path):
    # a header name never parses as a float, so "2" cannot be a header name
    path = write(tmp_path, "a,b,c\n1,2,3\n")
    data = load_csv(path, inputs=["2"], targets=["0"])
    np.testing.assert_array_equal(data.X, [[3]])
    np.testing.assert_array_equal(data.Y, [[1]])


def test_csv_columns_by_index_without_header(tmp_path):
    path = write(tmp_path, "1,2,3\n4,5,6\n")
    by_int = load_csv(path, inputs=[0, 2], targets=[1])
    by_text = load_csv(path, inputs=["0", "2"], targets=["1"])
    np.testing.assert_array_equal(by_int.X, [[1, 3], [4, 6]])
    np.testing.assert_array_equal(by_int.Y, [[2], [5]])
    np.testing.assert_array_equal(by_text.X, by_int.X)
    np.testing.assert_array_equal(by_text.Y, by_int.Y)


def test_csv_default_inputs_are_the_non_targets(tmp_path):
    path = write(tmp_path, "a,b,c\n1,2,3\n")
    data = load_csv(path, targets=["a"])
    np.testing.assert_array_equal(data.X, [[2, 3]])
    np.testing.assert_array_equal(data.Y, [[1]])


def test_csv_default_target_is_last_column(tmp_path):
    path = write(tmp_path, "a,b,c\n1,2,3\n")
    data = load_csv(path, inputs=["b"])
    np.testing.assert_array_equal(data.X, [[2]])
    np.testing.assert_array_equal(data.Y, [[3]])


def test_csv_unused_columns_need_not_be_numeric(tmp_path):
    path = write(tmp_path, "label,a,y\ncat,1,2\ndog,3,4\n")
    data = load_csv(path, inputs=["a"], targets=["y"])
    np.testing.assert_array_equal(data.X, [[1], [3]])


def test_csv_whitespace_around_fields_and_names(tmp_path):
    path = write(tmp_path, " a , b ,\ty \n 0.5 ,  1e-1, -2 \n\n  3,4 , 5\n\n")
    data = load_csv(path, inputs=[" a", "b "], targets=["y"])
    np.testing.assert_array_equal(data.X, [[0.5, 0.1], [3, 4]])
    np.testing.assert_array_equal(data.Y, [[-2], [5]])


def test_csv_crlf_and_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf1,2,3\r\n4,5,6\r\n")
    data = load_csv(path)
    np.testing.assert_array_equal(data.X, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(data.Y, [[3], [6]])


# --- load_csv: errors -------------------------------------------------------------------------


def csv_error(tmp_path, text: str, **kwargs) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        load_csv(path, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    assert path in message
    return message.replace(path, "<path>")  # so fragments cannot match the test's own path


def test_csv_missing_file(tmp_path):
    path = str(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="not found") as err:
        load_csv(path)
    assert path in str(err.value)


def test_csv_directory_is_unreadable(tmp_path):
    with pytest.raises(ValueError, match="is a directory") as err:
        load_csv(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"a,b\n1,\xff\n")
    with pytest.raises(ValueError, match="UTF-8") as err:
        load_csv(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("text", ["", "\n\n", "  \n"])
def test_csv_empty_file(tmp_path, text):
    assert "is empty" in csv_error(tmp_path, text)


def test_csv_header_without_rows(tmp_path):
    assert "no data rows" in csv_error(tmp_path, "a,b\n")


def test_csv_single_column(tmp_path):
    message = csv_error(tmp_path, "a;b;y\n1;2;3\n")
    assert "1 column" in message
    assert "comma" in message


def test_csv_ragged_row(tmp_path):
    message = csv_error(tmp_path, "a,b,y\n1,2,3\n4,5\n")
    assert "row 3" in message
    assert "2 fields" in message
    assert "expected 3" in message


def test_csv_ragged_row_without_header_too_many(tmp_path):
    message = csv_error(tmp_path, "1,2\n3,4\n5,6,7\n")
    assert "row 3" in message
    assert "3 fields" in message
    assert "expected 2" in message


def test_csv_non_numeric_value(tmp_path):
    message = csv_error(tmp_path, "a,b,y\n1,2,3\n4,five,9\n")
    assert "row 3" in message
    assert "'b'" in message
    assert "'five'" in message


def test_csv_non_numeric_row_number_counts_blank_lines(tmp_path):
    message = csv_error(tmp_path, "1,2,3\n\n4,x,9\n")
    assert "row 3" in message
    assert "column 1" in message
    assert "'x'" in message


def test_csv_first_row_partly_numeric_is_data(tmp_path):
    message = csv_error(tmp_path, "x,1.5,2\n1,2,3\n")
    assert "row 1" in message
    assert "'x'" in message


def test_csv_missing_value(tmp_path):
    message = csv_error(tmp_path, "a,b,y\n1,2,3\n4, ,9\n")
    assert "row 3" in message
    assert "'b'" in message
    assert "missing value" in message


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_csv_non_finite_value(tmp_path, bad):
    message = csv_error(tmp_path, f"a,b,y\n1,2,3\n4,5,{bad}\n")
    assert "row 3" in message
    assert "'y'" in message
    assert repr(bad) in message
    assert "finite" in message


def test_csv_unknown_column_name_lists_available(tmp_path):
    message = csv_error(tmp_path, "a,b,y\n1,2,3\n", targets=["z"])
    assert "'z'" in message
    assert "'a', 'b', 'y'" in message


@pytest.mark.parametrize("index", [3, -1])
def test_csv_index_out_of_range(tmp_path, index):
    message = csv_error(tmp_path, "1,2,3\n", inputs=[index])
    assert str(index) in message
    assert "0-2" in message


def test_csv_digit_string_out_of_range_without_header(tmp_path):
    message = csv_error(tmp_path, "1,2,3\n", targets=["7"])
    assert "7" in message
    assert "0-2" in message


def test_csv_column_both_input_and_target(tmp_path):
    message = csv_error(tmp_path, "a,b,y\n1,2,3\n", inputs=["a", "b"], targets=["b"])
    assert "'b'" in message
    assert "both input and target" in message


def test_csv_default_target_clashes_with_inputs(tmp_path):
    message = csv_error(tmp_path, "a,b,y\n1,2,3\n", inputs=["a", "y"])
    assert "'y'" in message
    assert "both input and target" in message


def test_csv_no_input_column(tmp_path):
    message = csv_error(tmp_path, "a,b\n1,2\n", inputs=[])
    assert "no input column" in message


def test_csv_no_input_left_after_targets(tmp_path):
    message = csv_error(tmp_path, "a,b\n1,2\n", targets=["a", "b"])
    assert "no input column" in message


def test_csv_no_target_column(tmp_path):
    message = csv_error(tmp_path, "a,b\n1,2\n", targets=[])
    assert "no target column" in message


def test_csv_column_listed_twice(tmp_path):
    message = csv_error(tmp_path, "a,b,y\n1,2,3\n", inputs=["a", "0"])
    assert "'a'" in message
    assert "twice" in message


def test_csv_duplicate_header_name(tmp_path):
    message = csv_error(tmp_path, "a,b,a\n1,2,3\n")
    assert "'a'" in message
    assert "columns 0 and 2" in message


def test_csv_empty_header_name(tmp_path):
    message = csv_error(tmp_path, ",a,y\n0,1,2\n")
    assert "empty name" in message
    assert "column 0" in message


# --- load_data --------------------------------------------------------------------------------


def test_load_data_question():
    data = load_data("question")
    np.testing.assert_array_equal(data.X, question_data().X)
    np.testing.assert_array_equal(data.Y, question_data().Y)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("add:30", addition_data(30)),
        ("add:30:1:2", addition_data(30, 1.0, 2.0)),
        ("add:30:-1:0.5:9", addition_data(30, -1.0, 0.5, 9)),
    ],
    ids=["n", "range", "seed"],
)
def test_load_data_add_specs(spec, expected):
    data = load_data(spec)
    assert data.name == expected.name
    np.testing.assert_array_equal(data.X, expected.X)
    np.testing.assert_array_equal(data.Y, expected.Y)


def test_load_data_csv_path(tmp_path):
    path = write(tmp_path, "a,b,y\n1,2,3\n")
    data = load_data(path, inputs=["b"], targets=["a"])
    assert data.name == path
    np.testing.assert_array_equal(data.X, [[2]])
    np.testing.assert_array_equal(data.Y, [[1]])


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("add", "'add'"),
        ("add:", "N=''"),
        ("add:x", "N='x'"),
        ("add:2.5", "N='2.5'"),
        ("add:10:0", "'add:10:0'"),
        ("add:10:0:1:2:3", "'add:10:0:1:2:3'"),
        ("add:10:lo:1", "LOW='lo'"),
        ("add:10:0:hi", "HIGH='hi'"),
        ("add:10:0:1:s", "SEED='s'"),
        ("add:10:0:1:-1", "SEED='-1'"),
    ],
)
def test_load_data_malformed_add_spec(spec, fragment):
    with pytest.raises(ValueError, match="malformed") as err:
        load_data(spec)
    message = str(err.value)
    assert fragment in message
    assert "add:N[:LOW:HIGH[:SEED]]" in message


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [("add:0", "got 0"), ("add:10:1:1", "low=1.0 and high=1.0"), ("add:5:0:nan", "nan")],
)
def test_load_data_add_spec_bad_values(spec, fragment):
    with pytest.raises(ValueError) as err:
        load_data(spec)
    assert spec in str(err.value)
    assert fragment in str(err.value)


@pytest.mark.parametrize("spec", ["questions", "missing.csv", "Question", ""])
def test_load_data_unknown_spec(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as err:
        load_data(spec)
    assert str(err.value) == (
        f"unknown data {spec!r}: use 'question', 'add:N[:LOW:HIGH[:SEED]]' or a path to a CSV file"
    )


def test_load_data_directory_is_unknown(tmp_path):
    with pytest.raises(ValueError, match="unknown data"):
        load_data(str(tmp_path))


@pytest.mark.parametrize("spec", ["question", "add:10"])
def test_load_data_columns_only_for_csv(spec):
    with pytest.raises(ValueError, match="only to CSV") as err:
        load_data(spec, targets=["y"])
    assert spec in str(err.value)


# --- Dataset ----------------------------------------------------------------------------------


def test_dataset_normalizes_layout():
    X = np.asfortranarray(np.arange(6, dtype=np.int64).reshape(3, 2))
    data = Dataset("d", X, [[1], [2], [3]])
    assert_layout(data)
    assert (data.n_samples, data.n_inputs, data.n_outputs) == (3, 2, 1)


@pytest.mark.parametrize(
    ("X", "Y", "fragment"),
    [
        ([1.0, 2.0], [[1.0], [2.0]], "shape (2,)"),
        ([[1.0], [2.0]], [[1.0]], "X has 2 rows but Y has 1"),
        ([[1.0], [np.nan]], [[1.0], [2.0]], "nan or inf"),
        (np.empty((0, 2)), np.empty((0, 1)), "shape (0, 2)"),
    ],
)
def test_dataset_rejects_bad_arrays(X, Y, fragment):
    with pytest.raises(ValueError) as err:
        Dataset("d", X, Y)
    assert fragment in str(err.value)


# --- check_layers -----------------------------------------------------------------------------


@pytest.mark.parametrize("layers", [[2, 1], [2, 4, 4, 1], (2, 16, 1)])
def test_check_layers_accepts_matching(layers):
    check_layers(question_data(), layers)


def test_check_layers_rejects_wrong_inputs(tmp_path):
    path = write(tmp_path, "a,b,c,y\n1,2,3,4\n")
    with pytest.raises(ValueError) as err:
        check_layers(load_csv(path), [2, 4, 4, 1])
    assert str(err.value) == (
        f"--layers 2,4,4,1 takes 2 inputs and 1 output, but {path} has "
        "3 input columns and 1 target column"
    )


def test_check_layers_rejects_wrong_outputs():
    with pytest.raises(ValueError) as err:
        check_layers(question_data(), [2, 4, 3])
    message = str(err.value)
    assert "--layers 2,4,3" in message
    assert "3 outputs" in message
    assert "1 target column" in message


def test_check_layers_rejects_too_few_layers():
    with pytest.raises(ValueError, match="--layers 2 "):
        check_layers(question_data(), [2])
