"""Parsing of command-line values that are more than one token: seeds, layers, name lists."""

from __future__ import annotations

import argparse
import math
import re

import numpy as np

SEEDS_FORMS = "a count N (seeds 0..N-1), a range A-B, or a comma list of both, e.g. 0-99,500"
_RANGE = re.compile(r"^(\d+)-(\d+)$")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help (unless None, False or already stated); epilogs as
    written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def parse_seeds(spec: str | int) -> np.ndarray:
    """``"1000"`` -> 0..999; ``"0-999"`` -> 0..999; ``"3,7,10-12"`` -> 3,7,10,11,12."""
    text = str(spec).strip()
    if text.isdigit():
        n = int(text)
        if n < 1:
            raise ValueError(f"seeds {spec!r} is invalid: a count must be >= 1; use {SEEDS_FORMS}")
        return np.arange(n, dtype=np.int64)
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = _RANGE.match(part)
        if m and int(m.group(1)) <= int(m.group(2)):
            seeds.extend(range(int(m.group(1)), int(m.group(2)) + 1))
        elif part.isdigit() and "," in text:
            seeds.append(int(part))
        else:
            raise ValueError(f"seeds {spec!r} is invalid: use {SEEDS_FORMS}")
    arr = np.asarray(seeds, dtype=np.int64)
    if np.unique(arr).size != arr.size:
        raise ValueError(f"seeds {spec!r} repeat a seed: list each seed once")
    return arr


def parse_layers(spec: str) -> tuple[int, ...]:
    """``"2,4,4,1"`` -> (2, 4, 4, 1): at least two positive sizes, inputs first."""
    parts = [p.strip() for p in str(spec).split(",")]
    if len(parts) < 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(
            f"layers {spec!r} is invalid: give at least two positive sizes, inputs first, "
            "e.g. 2,4,4,1"
        )
    return tuple(int(p) for p in parts)


def parse_names(spec: str, valid, what: str) -> list[str]:
    """``"relu,tanh"`` -> ["relu", "tanh"], each checked against ``valid``."""
    names = [p.strip() for p in str(spec).split(",") if p.strip()]
    bad = [n for n in names if n not in valid]
    if not names or bad:
        raise ValueError(
            f"{what} {spec!r} is invalid: use a comma list of {', '.join(valid)}"
        )
    return names


def parse_number_list(spec: str, what: str, kind=float) -> list:
    """``"0.01,0.1"`` -> [0.01, 0.1] (each positive and finite)."""
    try:
        values = [kind(p) for p in str(spec).split(",") if p.strip()]
    except ValueError:
        values = []
    if not values or any(not (v > 0 and math.isfinite(v)) for v in values):
        raise ValueError(f"{what} {spec!r} is invalid: use a comma list of positive numbers")
    return values


def format_seeds(seeds: np.ndarray) -> str:
    """Compact inverse of ``parse_seeds``: runs of consecutive seeds become A-B."""
    seeds = np.asarray(seeds)
    if seeds.size and seeds[0] == 0 and np.array_equal(seeds, np.arange(seeds.size)):
        return str(seeds.size)
    parts, start = [], 0
    for i in range(1, seeds.size + 1):
        if i == seeds.size or seeds[i] != seeds[i - 1] + 1:
            a, b = seeds[start], seeds[i - 1]
            parts.append(str(a) if a == b else f"{a}-{b}")
            start = i
    return ",".join(parts)
