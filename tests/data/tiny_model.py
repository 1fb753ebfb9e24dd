"""A user's model file for ``actdiag train --model tests/data/tiny_model.py:make_model``."""

from torch import nn


def make_model():
    return nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
