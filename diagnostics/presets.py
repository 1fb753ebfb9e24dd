"""Presets: named configurations, written as data.

``question`` is the user's program, faithfully: N(0, 1) weights and biases drawn after
``np.random.seed(k)`` in the program's order, online SGD in the data's order, lr 0.01, 5000 epochs,
ReLU everywhere including the output, biases shrunk by ``lr * b`` instead of following their
gradient, and the error back-propagated through each layer's *already updated* weights. Any
activation or learning rate can be put on top of it.

``fixed`` is the same program with its two bugs fixed (true bias gradient; back-propagation
through the weights that produced the output) and a linear output unit, as a regression task
needs. Initial draws are the same as ``question``'s, so the two can be compared seed by seed.

``corrected`` is the program of ``studies/report/corrected_program.py``, seed for seed: the
question's program with the smallest set of changes that brings each of relu, tanh and sigmoid to
an epoch loss at the threshold on nearly every seed. The bias follows its gradient (the program's
``b -= lr * b`` only shrinks it: harmless on a + b, whose fit needs no intercept, fatal as soon as
the targets have one). The error is back-propagated through the weights that produced the output.
The output unit is linear (an output ReLU dies for good, a sigmoid or tanh output only creeps
towards its targets). The hidden layers have 8 units instead of 4. The rest is the user's: N(0, 1)
weights and biases drawn after ``np.random.seed(k)`` in the program's order, online SGD, lr 0.01,
5000 epochs. The alternatives (hidden width 4 or 16, back-propagation through the updated weights,
He or Xavier initialisation with zero biases, the hidden activation on the output) are measured
one change at a time, on the same seeds, by the mechanisms study (part ``alternative``) and shown
in the report's section on the corrected program.
"""

from __future__ import annotations

from .config import Config

QUESTION = Config(
    layers=(2, 4, 4, 1),
    activation="relu",
    output_activation=None,  # the output activation is the hidden one
    init="standard_normal",
    bias_init="normal",
    bias_scale=1.0,
    rng="legacy",  # np.random.RandomState(k): the program's np.random.seed(k) draws
    optimizer="sgd",
    lr=0.01,
    epochs=5000,
    batch="online",
    bias_update="decay",
    backprop_weights="updated",
)

PRESETS: dict[str, Config] = {
    "question": QUESTION,
    "fixed": QUESTION.replace(
        bias_update="gradient", backprop_weights="current", output_activation="identity"
    ),
    "corrected": QUESTION.replace(
        layers=(2, 8, 8, 1),
        bias_update="gradient",
        backprop_weights="current",
        output_activation="identity",
        lr=0.01,
        epochs=5000,
    ),
}

# The question's quirks, each with the value that switches it off (used by the causes study).
QUIRK_FIXES: dict[str, dict] = {
    "bias_update": {"bias_update": "gradient"},
    "backprop_weights": {"backprop_weights": "current"},
    "output_activation": {"output_activation": "identity"},
    "init": {"init": "xavier_normal", "bias_init": "zero"},
}


def get_preset(name: str) -> Config:
    """Look up a preset by name."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]
