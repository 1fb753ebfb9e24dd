# ruff: noqa: E501, NPY002, UP031, B905 -- the asker's style (np.random, % formats, zip) on purpose
"""The question's program, corrected: the fewest changes that make nearly every seed learn.

Every change to the asker's program is marked ``# CHANGED:`` with what and why; everything else
is theirs. Run ``python studies/report/corrected_program.py`` (numpy only); set SEED and
ACTIVATION below to try another seed or activation. The toolkit's ``corrected`` preset
(diagnostics/presets.py) reproduces this file seed for seed.
"""

import numpy as np

SEED = 0  # CHANGED: a module constant fed to np.random.seed, so any run can be reproduced
ACTIVATION = "relu"  # CHANGED: "relu" | "tanh" | "sigmoid", the hidden activation (one switch)
HIDDEN = 8  # CHANGED: 8 hidden units per layer, not 4: with 4, ~1 ReLU seed in 4 never learns
EPOCHS = 5000
LEARNING_RATE = 0.01


class Layer:
    def __init__(self):
        self.inputs = None
    def forward(self, inputs):
        pass
    def backward(self, error_gradient, lr):
        pass

class Dense(Layer):
    def __init__(self, n_inputs, n_neurons):
        self.weights = np.random.randn(n_neurons, n_inputs)
        self.biases = np.random.randn(n_neurons, 1)
        super().__init__()
    def forward(self, inputs):
        self.inputs = inputs
        return np.dot(self.weights, self.inputs) + self.biases
    def backward(self, error_gradient, lr):
        weight_deriv = np.dot(error_gradient, self.inputs.T)
        input_gradient = np.dot(self.weights.T, error_gradient)  # CHANGED: back-propagate through the weights that made the output, before they change
        self.weights -= lr * weight_deriv
        self.biases -= lr * error_gradient  # CHANGED: b follows its gradient dE/db = error_gradient; lr * biases only shrank b towards 0
        return input_gradient

class Activation(Layer):
    def __init__(self, activation, actiovation_prime):
        self.activation = activation
        self.activation_prime = actiovation_prime
        super().__init__()
    def forward(self, inputs):
        self.inputs = inputs
        return self.activation(self.inputs)
    def backward(self, error_gradient, lr):
        return np.multiply(error_gradient, self.activation_prime(self.inputs))

class Tanh(Activation):
    def __init__(self):
        super().__init__(lambda x: np.tanh(x), lambda y: 1.0 - (np.tanh(y) ** 2))

class ReLU(Activation):
    def __init__(self):
        super().__init__(lambda x: np.maximum(0, x), lambda y: np.where(y > 0, 1, 0))

class Sigmoid(Activation):
    def __init__(self):
        super().__init__(lambda x: 1.0 / (1 + np.exp(-x)),
                         lambda y: (1.0 / (1 + np.exp(-y))) * (1 - (1.0 / (1 + np.exp(-y)))))

ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}  # CHANGED: name -> class, for the ACTIVATION switch

def mse(y_pred, y_true):
    return np.power(y_true - y_pred, 2)

def mse_prime(y_pred, y_true):
    return 2 * (y_pred - y_true)

def run(nn, inputs):
    out = inputs
    for layer in nn:
        out = layer.forward(out)
    return out

X = np.reshape([[0.1, 0.2], [0.5, 0.3], [0.2, 0.4], [0.3, 0.7], [0.5, 0.5], [0.4, 0.3]], (6, 2, 1))
Y = np.reshape([[0.3], [0.8], [0.6], [1.0], [1.0], [0.7]], (6, 1, 1))

def build_network(activation):  # CHANGED: the network built in a function (activation switch, tests)
    act = ACTIVATIONS[activation]
    return [Dense(2, HIDDEN), act(), Dense(HIDDEN, HIDDEN), act(), Dense(HIDDEN, 1)]  # CHANGED: linear output unit: an output ReLU can die for good, a sigmoid/tanh output crawls to its targets

def fit(network, epochs, learning_rate, verbose=False):  # CHANGED: the loop as a function returning per-epoch errors (tests)
    errors = []
    for _ in range(epochs):
        epoch_error = 0
        for x, y in zip(X, Y):
            output = run(network, x)
            epoch_error += mse(output, y)
            output_gradient = mse_prime(output, y)
            for layer in reversed(network):
                output_gradient = layer.backward(output_gradient, learning_rate)
        epoch_error /= len(X)
        errors.append(epoch_error[0][0])
        if verbose:
            print("%d/%d, error = %.3e" % (_, epochs, epoch_error[0][0]))  # CHANGED: %.3e: %f prints 0.000000 below 5e-7
    return errors

def train(seed=SEED, activation=ACTIVATION, epochs=EPOCHS, learning_rate=LEARNING_RATE):  # CHANGED: one seeded run (tests)
    np.random.seed(seed)
    return fit(build_network(activation), epochs, learning_rate)

if __name__ == '__main__':
    np.random.seed(SEED)  # CHANGED: seed the draws, so a run can be repeated
    network = build_network(ACTIVATION)
    fit(network, EPOCHS, LEARNING_RATE, verbose=True)
    test = np.reshape([0.1, 0.5], (2, 1))
    pred = run(network, test)
    print("Prediction = %f" % pred[0][0])
