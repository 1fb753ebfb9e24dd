"""The question's program as the user wrote it: one network, one sample at a time.

Kept as the speed baseline for ``actdiag bench`` (and as a cross-check of the faithful preset).
Same classes, same draws after ``np.random.RandomState(seed)``, same update order and quirks;
only the per-epoch print is replaced by returning the errors.
"""

from __future__ import annotations

import numpy as np

from .data import question_data


class _Dense:
    def __init__(self, rng: np.random.RandomState, n_inputs: int, n_neurons: int):
        self.weights = rng.randn(n_neurons, n_inputs)
        self.biases = rng.randn(n_neurons, 1)
        self.inputs = None

    def forward(self, inputs):
        self.inputs = inputs
        return np.dot(self.weights, self.inputs) + self.biases

    def backward(self, error_gradient, lr):
        weight_deriv = np.dot(error_gradient, self.inputs.T)
        self.weights -= lr * weight_deriv
        self.biases -= lr * self.biases  # the program's quirk
        return np.dot(self.weights.T, error_gradient)  # through the updated weights


class _Activation:
    def __init__(self, activation, activation_prime):
        self.activation, self.activation_prime = activation, activation_prime
        self.inputs = None

    def forward(self, inputs):
        self.inputs = inputs
        return self.activation(self.inputs)

    def backward(self, error_gradient, lr):
        return np.multiply(error_gradient, self.activation_prime(self.inputs))


def _sigmoid(x):
    return 1.0 / (1 + np.exp(-x))


_ACTIVATIONS = {
    "tanh": (np.tanh, lambda y: 1.0 - (np.tanh(y) ** 2)),
    "relu": (lambda x: np.maximum(0, x), lambda y: np.where(y > 0, 1, 0)),
    "sigmoid": (_sigmoid, lambda y: _sigmoid(y) * (1 - _sigmoid(y))),
}


def run_program(seed: int, activation: str = "tanh", epochs: int = 100, lr: float = 0.01):
    """Train the question's 2-4-4-1 network for one seed; return the per-epoch errors."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: use one of {', '.join(_ACTIVATIONS)}")
    rng = np.random.RandomState(seed)
    fn, prime = _ACTIVATIONS[activation]
    network = [
        _Dense(rng, 2, 4), _Activation(fn, prime),
        _Dense(rng, 4, 4), _Activation(fn, prime),
        _Dense(rng, 4, 1), _Activation(fn, prime),
    ]
    data = question_data()
    X = data.X.reshape(-1, 2, 1)
    Y = data.Y.reshape(-1, 1, 1)
    errors = np.empty(epochs)
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(epochs):
            epoch_error = 0
            for x, y in zip(X, Y, strict=True):
                output = x
                for layer in network:
                    output = layer.forward(output)
                epoch_error += np.power(y - output, 2)
                gradient = 2 * (output - y)
                for layer in reversed(network):
                    gradient = layer.backward(gradient, lr)
            errors[epoch] = (epoch_error / len(X))[0, 0]
    return errors
