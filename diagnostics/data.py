"""Regression datasets: the question's six pairs, the add-two-numbers task, scikit-learn's 8x8
digits as one-hot regression (``digits``; needs scikit-learn), and CSV files.

Every problem with user input raises ``ValueError`` with a one-line message that names the bad
value and what is accepted.
"""

from __future__ import annotations

import csv
import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from os import PathLike, fspath
from pathlib import Path

import numpy as np

ADD_SPEC_FORM = "add:N[:LOW:HIGH[:SEED]]"
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Dataset:
    """Paired inputs and targets; X and Y are stored as 2-D, C-contiguous, finite float64."""

    name: str  # human label: "question", "add:200:0:0.5:0", or the CSV path as given
    X: np.ndarray  # (n_samples, n_inputs) float64
    Y: np.ndarray  # (n_samples, n_outputs) float64

    def __post_init__(self) -> None:
        for field in ("X", "Y"):
            a = np.ascontiguousarray(getattr(self, field), dtype=np.float64)
            if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
                raise ValueError(
                    f"dataset {self.name!r}: {field} has shape {a.shape}, "
                    "expected a 2-D array (n_samples, n_columns) with at least one row and column"
                )
            if not np.isfinite(a).all():
                raise ValueError(f"dataset {self.name!r}: {field} contains nan or inf")
            object.__setattr__(self, field, a)
        if self.X.shape[0] != self.Y.shape[0]:
            raise ValueError(
                f"dataset {self.name!r}: X has {self.X.shape[0]} rows but Y has "
                f"{self.Y.shape[0]}; they must pair up"
            )

    @property
    def n_samples(self) -> int:
        """Number of (input, target) pairs."""
        return self.X.shape[0]

    @property
    def n_inputs(self) -> int:
        """Number of input columns."""
        return self.X.shape[1]

    @property
    def n_outputs(self) -> int:
        """Number of target columns."""
        return self.Y.shape[1]


def question_data() -> Dataset:
    """The six pairs of the question, in the question's order.

    Returns:
        Dataset "question" with X of shape (6, 2) and Y of shape (6, 1); Y holds the question's
        literals (0.3, 0.8, ...), not floating-point sums of X.
    """
    X = [[0.1, 0.2], [0.5, 0.3], [0.2, 0.4], [0.3, 0.7], [0.5, 0.5], [0.4, 0.3]]
    Y = [[0.3], [0.8], [0.6], [1.0], [1.0], [0.7]]
    return Dataset("question", np.array(X), np.array(Y))


def digits_data() -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, shipped with it, no download) as regression: X
    (1797, 64) with each pixel standardized over the dataset (constant pixels left at 0), Y
    (1797, 10) the one-hot class."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ValueError("data 'digits' needs scikit-learn: pip install "
                         "'activation-diagnostics[torch]' (or scikit-learn)") from None
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float64)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return Dataset("digits", X, np.eye(10)[y])


def _fmt(x: float) -> str:
    """Shortest round-tripping text of a float, without a trailing '.0'."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _int_at_least(value: object, what: str, minimum: int) -> int:
    """Return value as an int >= minimum, or raise ValueError naming it."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {number}")
    return number


def addition_data(n: int, low: float = 0.0, high: float = 0.5, seed: int = 0) -> Dataset:
    """The add-two-numbers task: y = x0 + x1 with x uniform in [low, high)^2.

    Args:
        n: number of samples, >= 1.
        low: lower bound of each input (finite).
        high: upper bound of each input (finite, > low).
        seed: seed of ``np.random.default_rng``, >= 0.

    Returns:
        Dataset named "add:N:LOW:HIGH:SEED" with X of shape (n, 2) and Y of shape (n, 1).
    """
    n = _int_at_least(n, "n (number of samples)", 1)
    seed = _int_at_least(seed, "seed", 0)
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise ValueError(f"low and high must be numbers, got {low!r} and {high!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"low and high must be finite, got low={low} and high={high}")
    if low >= high:
        raise ValueError(f"low must be < high, got low={low} and high={high}")
    rng = np.random.default_rng(seed)
    X = rng.uniform(low, high, size=(n, 2))  # (n, 2)
    Y = (X[:, 0] + X[:, 1])[:, np.newaxis]  # (n, 1)
    return Dataset(f"add:{n}:{_fmt(low)}:{_fmt(high)}:{seed}", X, Y)


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_rows(path: str | PathLike[str]) -> list[tuple[int, list[str]]]:
    """Non-blank rows of a CSV file as (line number, stripped fields)."""
    shown = fspath(path)
    rows: list[tuple[int, list[str]]] = []
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, skipinitialspace=True)
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line
                rows.append((reader.line_num, [f.strip() for f in fields]))
    except FileNotFoundError:
        raise ValueError(f"data file {shown!r} not found") from None
    except IsADirectoryError:
        raise ValueError(f"data file {shown!r} is a directory, not a CSV file") from None
    except UnicodeDecodeError as err:
        raise ValueError(
            f"data file {shown!r} is not UTF-8 text (bad byte at offset {err.start})"
        ) from None
    except csv.Error as err:
        raise ValueError(f"data file {shown!r} is not valid CSV: {err}") from None
    except OSError as err:
        raise ValueError(f"cannot read data file {shown!r}: {err.strerror or err}") from None
    return rows


class _Columns:
    """Column names of one CSV file and resolution of user column references to indices."""

    def __init__(self, shown: str, header: list[str] | None, width: int) -> None:
        self.shown = shown
        self.header = header
        self.width = width

    def label(self, index: int) -> str:
        """How an error message names column ``index``."""
        return repr(self.header[index]) if self.header is not None else str(index)

    def available(self) -> str:
        indices = f"0-based indices 0-{self.width - 1}"
        if self.header is None:
            return f"available columns in {self.shown!r} (no header): {indices}"
        names = ", ".join(repr(name) for name in self.header)
        return f"available columns in {self.shown!r}: {names} (or {indices})"

    def resolve(self, ref: str | int) -> int:
        """Index of a column given by header name, int index, or string of digits."""
        if isinstance(ref, str):
            text = ref.strip()
            if self.header is not None and text in self.header:
                return self.header.index(text)
            # a header never holds an all-digit name (it would parse as a float): no ambiguity
            if _DIGITS.fullmatch(text):
                return self.resolve(int(text))
            raise ValueError(f"unknown column {ref!r}; {self.available()}")
        if isinstance(ref, bool):
            raise ValueError(f"column {ref!r} is not a name or an index; {self.available()}")
        try:
            index = operator.index(ref)
        except TypeError:
            raise ValueError(
                f"column {ref!r} is not a name or an index; {self.available()}"
            ) from None
        if not 0 <= index < self.width:
            raise ValueError(f"column index {index} is out of range; {self.available()}")
        return index

    def resolve_all(self, refs: Sequence[str | int] | str | int, role: str) -> list[int]:
        """Indices of the ``role`` ("input"/"target") columns, in the order given, no repeats."""
        if isinstance(refs, (str, int)):
            refs = [refs]
        indices: list[int] = []
        for ref in refs:
            index = self.resolve(ref)
            if index in indices:
                raise ValueError(
                    f"{role} column {self.label(index)} of {self.shown!r} is listed twice"
                )
            indices.append(index)
        if not indices:
            raise ValueError(f"no {role} column selected for {self.shown!r}; {self.available()}")
        return indices


def load_csv(
    path: str | PathLike[str],
    inputs: Sequence[str | int] | None = None,
    targets: Sequence[str | int] | None = None,
) -> Dataset:
    """Load a comma-separated file of numbers into a Dataset.

    The first row is a header when none of its fields parses as a float. Fields may have
    whitespace around them; blank lines are skipped. Only the selected columns must be numeric.

    Args:
        path: the CSV file; the Dataset is named by this path as given.
        inputs: input columns by header name or 0-based index (int or string of digits);
            default every column that is not a target.
        targets: target columns, same forms; default the last column.

    Returns:
        Dataset with X from the input columns and Y from the target columns, in the order given.
    """
    shown = fspath(path)
    rows = _read_rows(path)
    if not rows:
        raise ValueError(f"data file {shown!r} is empty")
    first = rows[0][1]
    width = len(first)
    has_header = not any(_parses_as_float(field) for field in first)
    header = first if has_header else None
    if header is not None:
        for index, name in enumerate(header):
            if not name:
                raise ValueError(
                    f"header of {shown!r} has an empty name for column {index}; "
                    "every column needs a name"
                )
            if header.index(name) != index:
                raise ValueError(
                    f"header of {shown!r} names two columns {name!r} "
                    f"(columns {header.index(name)} and {index}); names must be unique"
                )
        rows = rows[1:]
        if not rows:
            raise ValueError(f"data file {shown!r} has a header but no data rows")
    if width < 2:
        raise ValueError(
            f"data file {shown!r} has 1 column, need at least one input and one target "
            "column (fields must be separated by commas)"
        )
    columns = _Columns(shown, header, width)

    target_idx = columns.resolve_all(targets if targets is not None else [width - 1], "target")
    if inputs is not None:
        input_idx = columns.resolve_all(inputs, "input")
    else:
        rest = [i for i in range(width) if i not in target_idx]
        input_idx = columns.resolve_all(rest, "input")
    both = [i for i in input_idx if i in target_idx]
    if both:
        raise ValueError(
            f"column {columns.label(both[0])} of {shown!r} is used as both input and target; "
            "a column can be one or the other"
        )

    used = input_idx + target_idx
    values = np.empty((len(rows), len(used)), dtype=np.float64)  # (n_samples, n_used)
    for r, (line, fields) in enumerate(rows):
        if len(fields) != width:
            raise ValueError(
                f"row {line} of {shown!r} has {len(fields)} fields, expected {width} "
                "like the first row"
            )
        for c, index in enumerate(used):
            text = fields[index]
            where = f"row {line} of {shown!r}, column {columns.label(index)}"
            if not text:
                raise ValueError(f"{where}: missing value; every used field needs a number")
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"{where}: {text!r} is not a number") from None
            if not math.isfinite(number):
                raise ValueError(f"{where}: {text!r} is not finite; nan and inf are not accepted")
            values[r, c] = number
    n_in = len(input_idx)
    return Dataset(shown, values[:, :n_in], values[:, n_in:])


def _parse_add_spec(spec: str) -> Dataset:
    """Dataset of an "add:N[:LOW:HIGH[:SEED]]" spec."""
    parts = spec.split(":")[1:]
    form = f"use {ADD_SPEC_FORM!r}, e.g. 'add:200' or 'add:200:0:0.5:1'"
    if len(parts) not in (1, 3, 4):
        raise ValueError(f"malformed data spec {spec!r}: {form}")
    n_text = parts[0].strip()
    if not _DIGITS.fullmatch(n_text):
        raise ValueError(f"malformed data spec {spec!r}: N={parts[0]!r} is not an integer; {form}")
    kwargs: dict[str, float | int] = {}
    if len(parts) >= 3:
        for key, text in zip(("low", "high"), parts[1:3], strict=True):
            try:
                kwargs[key] = float(text)
            except ValueError:
                raise ValueError(
                    f"malformed data spec {spec!r}: {key.upper()}={text!r} is not a number; {form}"
                ) from None
    if len(parts) == 4:
        seed_text = parts[3].strip()
        if not _DIGITS.fullmatch(seed_text):
            raise ValueError(
                f"malformed data spec {spec!r}: SEED={parts[3]!r} is not an integer >= 0; {form}"
            )
        kwargs["seed"] = int(seed_text)
    try:
        return addition_data(int(n_text), **kwargs)  # type: ignore[arg-type]
    except ValueError as err:
        raise ValueError(f"data spec {spec!r}: {err}") from None


SCALED_SPEC_FORM = "scaled:FACTOR:SPEC"


def _parse_scaled_spec(
    spec: str, inputs: Sequence[str | int] | None, targets: Sequence[str | int] | None
) -> Dataset:
    """Dataset of a "scaled:FACTOR:SPEC" spec: SPEC's data with every target times FACTOR."""
    factor_text, sep, inner = spec.partition(":")[2].partition(":")
    form = f"use {SCALED_SPEC_FORM!r}, e.g. 'scaled:0.5:question' or 'scaled:0.5:add:200'"
    if not sep or not inner.strip():
        raise ValueError(f"malformed data spec {spec!r}: {form}")
    try:
        factor = float(factor_text)
    except ValueError:
        factor = math.nan
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(
            f"data spec {spec!r}: FACTOR={factor_text!r} is not a finite positive number; {form}"
        )
    data = load_data(inner, inputs, targets)
    return Dataset(f"scaled:{_fmt(factor)}:{data.name}", data.X, data.Y * factor)


def load_data(
    spec: str,
    inputs: Sequence[str | int] | None = None,
    targets: Sequence[str | int] | None = None,
) -> Dataset:
    """Dataset named by a command-line spec.

    Args:
        spec: "question", "digits", "add:N", "add:N:LOW:HIGH", "add:N:LOW:HIGH:SEED", a CSV
            file path,
            or "scaled:FACTOR:SPEC" (SPEC's data with the targets multiplied by FACTOR > 0).
        inputs: CSV input columns (see ``load_csv``); only for a CSV file.
        targets: CSV target columns (see ``load_csv``); only for a CSV file.

    Returns:
        The Dataset the spec names.
    """
    if not isinstance(spec, str):
        raise ValueError(
            f"data spec {spec!r} is invalid: use 'question', {ADD_SPEC_FORM!r} or a path to a "
            "CSV file (a string)"
        )
    for what, refs in (("input", inputs), ("target", targets)):
        if refs is not None and not (
            isinstance(refs, (list, tuple, str, int))
            and all(isinstance(r, (str, int)) and not isinstance(r, bool)
                    for r in ([refs] if isinstance(refs, (str, int)) else refs))
        ):
            raise ValueError(
                f"{what} columns {refs!r} are invalid: use a list of column names or indices"
            )
    if spec.startswith("scaled:") or spec == "scaled":
        return _parse_scaled_spec(spec, inputs, targets)
    if spec in ("question", "digits") or spec.startswith("add:") or spec == "add":
        if inputs is not None or targets is not None:
            raise ValueError(f"input/target columns apply only to CSV data, not to {spec!r}")
        if spec == "question":
            return question_data()
        if spec == "digits":
            return _digits_cached()
        return _parse_add_spec(spec)
    try:
        is_file = Path(spec).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte: not a file either
        is_file = False
    if is_file:
        return load_csv(spec, inputs, targets)
    raise ValueError(
        f"unknown data {spec!r}: use 'question', {ADD_SPEC_FORM!r} or a path to a CSV file"
    )


@lru_cache(maxsize=1)
def _digits_cached() -> Dataset:
    return digits_data()


def spec_size(spec: object) -> tuple[int, int] | None:
    """(n_samples, n_columns) of an ``add:N...`` spec without building it; None otherwise."""
    if isinstance(spec, str) and spec.startswith("add:"):
        n_text = spec.split(":")[1].strip()
        if _DIGITS.fullmatch(n_text):
            return int(n_text), 3
    return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def check_layers(data: Dataset, layers: Sequence[int]) -> None:
    """Check that layer sizes fit the data: first = n_inputs, last = n_outputs.

    Args:
        data: the dataset the network will train on.
        layers: layer widths from input to output, e.g. (2, 4, 4, 1).

    Raises:
        ValueError: when the widths do not match the data's columns.
    """
    shown = ",".join(str(width) for width in layers)
    if len(layers) < 2:
        raise ValueError(
            f"--layers {shown} needs at least an input and an output width, e.g. 2,4,4,1"
        )
    if layers[0] != data.n_inputs or layers[-1] != data.n_outputs:
        raise ValueError(
            f"--layers {shown} takes {_count(layers[0], 'input')} and "
            f"{_count(layers[-1], 'output')}, but {data.name} has "
            f"{_count(data.n_inputs, 'input column')} and "
            f"{_count(data.n_outputs, 'target column')}"
        )
