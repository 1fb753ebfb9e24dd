"""A slow, one-network-at-a-time reference of the user's program (shared/seed/question.md).

Written from the description of the program, not from the engine: plain numpy, column vectors,
one sample at a time, ``np.dot`` as the program writes it. Each of the program's quirks is a
parameter, so the tests can compare the engine with the program and with the program minus one
quirk at a time:

- ``bias_update``: ``"decay"`` is the program's ``b -= lr * b``; ``"gradient"`` is
  ``b -= lr * dL/db``.
- ``backprop_weights``: ``"updated"`` back-propagates through the layer's weights *after* its
  update (as the program does); ``"current"`` through the weights that produced the output.
- ``output_activation``: ``None`` puts the hidden activation on the output too (the program);
  a name puts that activation there instead.

Batching: ``"online"`` is the program (one update per sample, in data order), ``order`` gives an
arbitrary per-epoch sample order for online training, and ``"full"`` is one update per epoch on
the mean loss over all samples. The per-epoch error is computed as the program computes it: the
mean over samples of the squared error of each sample's prediction before that sample's update.

This module must not import the engine (``diagnostics``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Array = np.ndarray


# ---- the program's activations, written as the program writes them ---------------------------


def _relu(x):
    return np.maximum(0, x)


def _relu_prime(y):
    return np.where(y > 0, 1, 0)


def _tanh(x):
    return np.tanh(x)


def _tanh_prime(y):
    return 1.0 - (np.tanh(y) ** 2)


def _sigmoid(x):
    return 1.0 / (1 + np.exp(-x))


def _sigmoid_prime(y):
    return (1.0 / (1 + np.exp(-y))) * (1 - (1.0 / (1 + np.exp(-y))))


def _identity(x):
    return x


def _identity_prime(y):
    return np.ones_like(y)


ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "relu": (_relu, _relu_prime),
    "tanh": (_tanh, _tanh_prime),
    "sigmoid": (_sigmoid, _sigmoid_prime),
    "identity": (_identity, _identity_prime),
}


def mse(y_pred, y_true):
    return np.power(y_true - y_pred, 2)


def mse_prime(y_pred, y_true):
    return 2 * (y_pred - y_true)


# ---- initial parameters ----------------------------------------------------------------------


def draw_params(
    layers: Sequence[int],
    seed: int,
    init: str = "standard_normal",
    bias_init: str = "normal",
) -> list[tuple[Array, Array]]:
    """The program's draws after ``np.random.seed(seed)``: per layer W (out, in), then b (out, 1).

    ``init="xavier_normal"`` scales the same standard normal draw by sqrt(2 / (in + out));
    ``bias_init="zero"`` draws no bias (zeros), so the next layer's W comes next in the stream.
    """
    rs = np.random.RandomState(seed)  # the same stream as np.random.seed(seed); np.random.randn
    params = []
    for n_inputs, n_neurons in zip(layers[:-1], layers[1:], strict=True):
        weights = rs.randn(n_neurons, n_inputs)
        if init == "xavier_normal":
            weights = weights * np.sqrt(2.0 / (n_inputs + n_neurons))
        elif init != "standard_normal":
            raise ValueError(f"reference does not know init {init!r}")
        if bias_init == "normal":
            biases = rs.randn(n_neurons, 1)
        elif bias_init == "zero":
            biases = np.zeros((n_neurons, 1))
        else:
            raise ValueError(f"reference does not know bias_init {bias_init!r}")
        params.append((weights, biases))
    return params


# ---- training --------------------------------------------------------------------------------


def _update(params, acts, xs, ys, lr, bias_update, backprop_weights) -> float:
    """One update on the samples ``xs, ys`` (column vectors); return their summed squared error.

    The loss of the batch is (1/B) sum_n sum_o (y_hat - y)^2. Layers are walked from the output
    down; each layer is updated before the error is passed back through its weights (the program's
    order), and ``backprop_weights`` says which weights that is.
    """
    B = len(xs)
    records = []  # per sample: (inputs of each Dense layer, pre-activations of each layer)
    gradients = []  # per sample: dL/d(output)
    sq_error = 0.0
    for x, y in zip(xs, ys, strict=True):
        ins, zs = [], []
        out = x
        for (weights, biases), (fn, _) in zip(params, acts, strict=True):
            ins.append(out)
            z = np.dot(weights, out) + biases  # Dense.forward
            zs.append(z)
            out = fn(z)  # Activation.forward
        sq_error += float(np.sum(mse(out, y)))
        g = mse_prime(out, y)
        gradients.append(g if B == 1 else g / B)
        records.append((ins, zs))
    for layer in range(len(params) - 1, -1, -1):
        weights, biases = params[layer]
        _, prime = acts[layer]
        # Activation.backward
        deltas = [g * prime(zs[layer]) for g, (_, zs) in zip(gradients, records, strict=True)]
        # Dense.backward
        weight_deriv = np.dot(deltas[0], records[0][0][layer].T)
        bias_deriv = deltas[0]
        for delta, (ins, _) in zip(deltas[1:], records[1:], strict=True):
            weight_deriv = weight_deriv + np.dot(delta, ins[layer].T)
            bias_deriv = bias_deriv + delta
        before = weights.copy()
        weights -= lr * weight_deriv
        if bias_update == "decay":
            biases -= lr * biases  # the program's quirk
        elif bias_update == "gradient":
            biases -= lr * bias_deriv
        else:
            raise ValueError(f"reference does not know bias_update {bias_update!r}")
        if backprop_weights == "updated":
            through = weights  # the program's quirk: the weights just updated
        elif backprop_weights == "current":
            through = before
        else:
            raise ValueError(f"reference does not know backprop_weights {backprop_weights!r}")
        gradients = [np.dot(through.T, delta) for delta in deltas]
    return sq_error


def train_reference(
    params: Sequence[tuple[Array, Array]],
    X: Array,
    Y: Array,
    *,
    activation: str,
    output_activation: str | None = None,
    lr: float,
    epochs: int,
    bias_update: str = "decay",
    backprop_weights: str = "updated",
    batch: str = "online",
    order: Callable[[int], Sequence[int]] | None = None,
) -> tuple[Array, list[tuple[Array, Array]]]:
    """Train one network as the program does; the program's quirks are the defaults.

    Args:
        params: initial ``[(W (out, in), b (out, 1)), ...]`` (copied, not modified).
        X: inputs (N, n_in); Y: targets (N, n_out).
        activation: hidden activation (a key of ``ACTIVATIONS``).
        output_activation: output activation; None = the hidden one (the program).
        lr: learning rate.
        epochs: passes over the data.
        bias_update: ``decay`` (the program's b -= lr*b) or ``gradient``.
        backprop_weights: ``updated`` (the program) or ``current``.
        batch: ``online`` (one update per sample) or ``full`` (one update per epoch).
        order: for online training, ``order(epoch)`` (epoch = 1, 2, ...) gives the sample order;
            None = the data's order (the program).

    Returns:
        ``(loss (epochs,), [(W (out, in), b (out,)), ...])``: the per-epoch error as the program
        prints it, and the final parameters.
    """
    params = [(np.array(w, dtype=np.float64), np.array(b, dtype=np.float64)) for w, b in params]
    hidden = ACTIVATIONS[activation]
    output = ACTIVATIONS[activation if output_activation is None else output_activation]
    acts = [hidden] * (len(params) - 1) + [output]
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    N = X.shape[0]
    xs = [X[n].reshape(-1, 1) for n in range(N)]
    ys = [Y[n].reshape(-1, 1) for n in range(N)]
    losses = np.empty(epochs)
    with np.errstate(all="ignore"):
        for epoch in range(1, epochs + 1):
            epoch_error = 0.0
            if batch == "full":
                epoch_error += _update(params, acts, xs, ys, lr, bias_update, backprop_weights)
            elif batch == "online":
                visit = range(N) if order is None else [int(n) for n in order(epoch)]
                for n in visit:
                    epoch_error += _update(
                        params, acts, [xs[n]], [ys[n]], lr, bias_update, backprop_weights
                    )
            else:
                raise ValueError(f"reference does not know batch {batch!r}")
            losses[epoch - 1] = epoch_error / N
    return losses, [(w, b[:, 0].copy()) for w, b in params]


def run_program(
    seed: int,
    *,
    activation: str = "relu",
    lr: float = 0.01,
    epochs: int = 5000,
) -> Array:
    """The user's program, verbatim in structure (layers as objects), for seed ``seed``.

    Used to check that ``train_reference`` with the defaults is the program. Returns the per-epoch
    error (epochs,).
    """
    rs = np.random.RandomState(seed)
    fn, prime = ACTIVATIONS[activation]

    class Dense:
        def __init__(self, n_inputs, n_neurons):
            self.weights = rs.randn(n_neurons, n_inputs)
            self.biases = rs.randn(n_neurons, 1)

        def forward(self, inputs):
            self.inputs = inputs
            return np.dot(self.weights, self.inputs) + self.biases

        def backward(self, error_gradient, lr):
            weight_deriv = np.dot(error_gradient, self.inputs.T)
            self.weights -= lr * weight_deriv
            self.biases -= lr * self.biases
            return np.dot(self.weights.T, error_gradient)

    class Act:
        def forward(self, inputs):
            self.inputs = inputs
            return fn(self.inputs)

        def backward(self, error_gradient, lr):
            return np.multiply(error_gradient, prime(self.inputs))

    X = np.reshape(
        [[0.1, 0.2], [0.5, 0.3], [0.2, 0.4], [0.3, 0.7], [0.5, 0.5], [0.4, 0.3]], (6, 2, 1)
    )
    Y = np.reshape([[0.3], [0.8], [0.6], [1.0], [1.0], [0.7]], (6, 1, 1))
    network = [Dense(2, 4), Act(), Dense(4, 4), Act(), Dense(4, 1), Act()]
    errors = np.empty(epochs)
    with np.errstate(all="ignore"):
        for e in range(epochs):
            epoch_error = 0
            for x, y in zip(X, Y, strict=True):
                output = x
                for layer in network:
                    output = layer.forward(output)
                epoch_error += mse(output, y)
                output_gradient = mse_prime(output, y)
                for layer in reversed(network):
                    output_gradient = layer.backward(output_gradient, lr)
            epoch_error /= len(X)
            errors[e] = epoch_error[0, 0]
    return errors
