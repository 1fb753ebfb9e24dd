"""The torch_digits study's grid: seeded PyTorch MLPs on scikit-learn's 8x8 digits.

Data: ``digits`` (``diagnostics.data.digits_data``: 1797 images, 64 standardized pixels, one-hot
targets; shipped with scikit-learn, no download). Network: ``nn.Sequential`` 64-32-32-10 with a
linear output and PyTorch's default initialisation of each ``nn.Linear`` (weights
U(+-1/sqrt(fan_in)), the toolkit's ``lecun_uniform``; biases U(+-1/sqrt(fan_in)), which the
Config's bias fields do not describe). Training: plain SGD, minibatches of 32 in the engine's
per-seed shuffled order.

Loss: regression to the one-hot target with the toolkit's loss L = (1/N) sum_n sum_o (y_hat - y)^2,
not cross-entropy, so the probes (``grad_norm_*``, ``grad_ratio``, ``loss``) and the outcomes
(converged: an epoch's loss <= threshold; stuck: zero full-data gradient; diverged; not
converged) have exactly the engine's definitions and the statistics in ``studies.stats`` apply
unchanged. The threshold 0.1 is a squared distance of 0.1 between output and one-hot target,
summed over the ten outputs: a network that has learnt the digits, not a perfect fit.

Each cell names the torch model ``mlp`` (``Cell.model``); its ``Config`` gives the layers,
activation, learning rate, batch, epochs and threshold.
"""

from __future__ import annotations

from diagnostics.config import Config
from diagnostics.schedules import Schedule
from studies.run.cells import Cell
from studies.run.study import StudyOptions

NAME = "torch_digits"
TITLE = "PyTorch MLPs on the 8x8 digits: ReLU, LeakyReLU and Tanh over 100 seeds"
ACTIVATIONS = ("relu", "leaky_relu", "tanh")
HIDDEN = (32, 32)
LR = 0.1
EPOCHS = 20
BATCH = 32
THRESHOLD = 0.1
MODEL = "mlp"  # diagnostics.torch_adapter.TORCH_MODELS
RECORD = "dead,grad_norm,saturation"
EXTRA = "torch"  # the optional extra this study needs


def data_spec(opts: StudyOptions) -> str:
    """The digits unless the user gave other data."""
    return "digits" if opts.data == "question" else opts.data


def cells(opts: StudyOptions) -> list[Cell]:
    seeds = opts.pick("seeds", 100, 8)
    epochs = opts.pick("epochs", EPOCHS, 3)
    data = data_spec(opts)
    if opts.layers:
        layers = opts.layers
    else:
        n_in, n_out = (64, 10) if data == "digits" else opts.with_(data=data).io_shape()
        layers = (n_in, *HIDDEN, n_out)
    out = []
    for act in opts.pick("activations", ACTIVATIONS):
        for lr in opts.pick("lrs", (LR,)):
            config = Config(layers=layers, activation=act, output_activation="identity",
                            init="lecun_uniform", optimizer="sgd", lr=lr, epochs=epochs,
                            batch=BATCH, threshold=THRESHOLD)
            out.append(Cell(
                NAME, (("activation", act), ("lr", lr)), config, (0, seeds), data=data,
                inputs=opts.inputs, targets=opts.targets, loss_every=Schedule.every(1),
                record=RECORD, record_every=Schedule.log(20), model=MODEL,
            ))
    return out
