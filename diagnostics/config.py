"""The training configuration: one frozen dataclass, validated in one place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .activations import get_activation
from .initializers import RNGS, check_bias_init, get_initializer
from .optimizers import Hyper, get_optimizer

BATCH_MODES = ("online", "shuffled", "full")  # or a positive integer: minibatches of that size
BIAS_UPDATES = ("gradient", "decay")
BACKPROP_WEIGHTS = ("current", "updated")
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Config:
    """Everything that defines a training run except the data and the seeds."""

    layers: tuple[int, ...] = (2, 4, 4, 1)  # units per layer, inputs first
    activation: str = "relu"  # hidden activation (ACTIVATIONS)
    output_activation: str | None = None  # None: same as hidden, as in the question
    leaky_slope: float = 0.01  # negative-side slope of leaky_relu
    init: str = "standard_normal"  # weight initializer (INITIALIZERS)
    bias_init: str = "normal"  # normal | zero | constant
    bias_scale: float = 1.0  # std of normal biases, or the constant value
    rng: str = "legacy"  # legacy: np.random.RandomState(seed), the question's draws | pcg64
    optimizer: str = "sgd"  # OPTIMIZERS
    lr: float = 0.01  # learning rate
    momentum: float = 0.9  # momentum / nesterov coefficient
    beta1: float = 0.9  # Adam
    beta2: float = 0.999  # Adam
    rms_decay: float = 0.99  # RMSProp
    eps: float = 1e-8  # Adam / RMSProp
    epochs: int = 5000  # passes over the data
    batch: str | int = "online"  # online (data order) | shuffled (online, per seed) | full | B
    bias_update: str = "gradient"  # gradient | decay: the question's b -= lr*b
    backprop_weights: str = "current"  # current | updated: back-propagate through updated W
    dtype: str = "float64"  # float64 | float32
    threshold: float = 1e-3  # converged once an epoch's mean squared error <= threshold
    stuck_tol: float = 0.0  # stuck: not converged and every |full-data gradient| <= stuck_tol

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(int(n) for n in self.layers))
        if isinstance(self.batch, str) and self.batch.isdigit():
            object.__setattr__(self, "batch", int(self.batch))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field and what is accepted."""
        if len(self.layers) < 2 or any(n < 1 for n in self.layers):
            raise ValueError(
                f"layers {','.join(map(str, self.layers))} are invalid: give at least two "
                "positive sizes, inputs first, e.g. 2,4,4,1"
            )
        get_activation(self.activation, leaky_slope=self.leaky_slope)
        if self.output_activation is not None:
            try:
                get_activation(self.output_activation, leaky_slope=self.leaky_slope)
            except ValueError as exc:
                raise ValueError(f"output {exc} (or same as the hidden layers)") from None
        get_initializer(self.init)
        check_bias_init(self.bias_init)
        get_optimizer(self.optimizer)
        _choice("rng", self.rng, RNGS)
        _choice("bias_update", self.bias_update, BIAS_UPDATES)
        _choice("backprop_weights", self.backprop_weights, BACKPROP_WEIGHTS)
        _choice("dtype", self.dtype, DTYPES)
        if isinstance(self.batch, bool) or not (
            self.batch in BATCH_MODES or (isinstance(self.batch, int) and self.batch >= 1)
        ):
            raise ValueError(
                f"batch {self.batch!r} is invalid: use online, shuffled, full or a positive integer"
            )
        _positive("lr", self.lr)
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ValueError(f"epochs {self.epochs!r} is invalid: use a positive integer")
        _positive("threshold", self.threshold)
        _positive("eps", self.eps)
        for name in ("momentum", "beta1", "beta2", "rms_decay"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} {value!r} is out of range: use 0 <= {name} < 1")
        if self.stuck_tol < 0:
            raise ValueError(f"stuck_tol {self.stuck_tol!r} is negative: use a value >= 0")

    @property
    def hidden_activation(self):
        """The hidden layers' Activation."""
        return get_activation(self.activation, leaky_slope=self.leaky_slope)

    @property
    def out_activation(self):
        """The output layer's Activation (the hidden one when ``output_activation`` is None)."""
        name = self.activation if self.output_activation is None else self.output_activation
        return get_activation(name, leaky_slope=self.leaky_slope)

    @property
    def hyper(self) -> Hyper:
        """The optimizer hyperparameters."""
        return Hyper(self.lr, self.momentum, self.beta1, self.beta2, self.rms_decay, self.eps)

    def replace(self, **changes) -> Config:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        d = dataclasses.asdict(self)
        d["layers"] = list(self.layers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        """Inverse of ``to_dict``; unknown keys are an error."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config field(s) {', '.join(sorted(unknown))}")
        return cls(**d)


def _choice(name: str, value, accepted) -> None:
    if value not in accepted:
        raise ValueError(f"{name} {value!r} is invalid: use one of {', '.join(accepted)}")


def _positive(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and value > 0 and value < float("inf")):
        raise ValueError(f"{name} {value!r} is invalid: use a positive number")
