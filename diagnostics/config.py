"""The training configuration: one frozen dataclass, validated in one place."""

from __future__ import annotations

import dataclasses
import math
import numbers
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
    # the optimizer's hyperparameters: meaning and defaults are optimizers.Hyper's (one place);
    # they are flat fields here so that flags and config.json name them directly
    lr: float = Hyper.lr
    momentum: float = Hyper.momentum
    beta1: float = Hyper.beta1
    beta2: float = Hyper.beta2
    rms_decay: float = Hyper.rms_decay
    eps: float = Hyper.eps
    epochs: int = 5000  # passes over the data
    batch: str | int = "online"  # online (data order) | shuffled (online, per seed) | full | B
    bias_update: str = "gradient"  # gradient | decay: the question's b -= lr*b
    backprop_weights: str = "current"  # current | updated: back-propagate through updated W
    dtype: str = "float64"  # float64 | float32
    threshold: float = 1e-3  # converged once an epoch's mean squared error <= threshold
    stuck_tol: float = 0.0  # stuck: not converged and every |full-data gradient| <= stuck_tol

    def __post_init__(self) -> None:
        self._check_types()
        object.__setattr__(self, "layers", tuple(int(n) for n in self.layers))
        if isinstance(self.batch, str) and self.batch.isdigit():
            object.__setattr__(self, "batch", int(self.batch))
        self.validate()

    def _check_types(self) -> None:
        """Raise ValueError when a field has the wrong type (e.g. from a hand-edited JSON file)."""
        layers = self.layers
        if isinstance(layers, (str, bytes)) or not isinstance(layers, (list, tuple)) or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in layers
        ):
            raise ValueError(
                f"layers {layers!r} is invalid: give a list of at least two positive integers, "
                "inputs first, e.g. [2, 4, 4, 1]"
            )
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str) and not (name == "output_activation" and value is None):
                raise ValueError(f"{name} {value!r} is invalid: use a name (a string)")
        for name in _NUMBER_FIELDS:
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(f"{name} {value!r} is invalid: use a finite number")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, numbers.Integral):
            raise ValueError(f"epochs {self.epochs!r} is invalid: use a positive integer")
        object.__setattr__(self, "epochs", int(self.epochs))
        if isinstance(self.batch, bool) or not isinstance(self.batch, (str, numbers.Integral)):
            raise ValueError(
                f"batch {self.batch!r} is invalid: use online, shuffled, full or a positive integer"
            )

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field and what is accepted."""
        if len(self.layers) < 2 or any(n < 1 for n in self.layers):
            raise ValueError(
                f"layers {','.join(map(str, self.layers)) or '[]'} are invalid: give at least two "
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
        if self.bias_scale < 0 and self.bias_init != "constant":
            raise ValueError(
                f"bias_scale {self.bias_scale!r} is negative: it is the standard deviation of "
                f"{self.bias_init} biases, use a value >= 0 (negative only with bias_init constant)"
            )

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
        return Hyper(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Hyper)})

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
        """Inverse of ``to_dict``; unknown keys and values of the wrong type are an error."""
        if not isinstance(d, dict):
            raise ValueError(
                f"config {type(d).__name__} {str(d)[:40]!r} is invalid: use an object of fields "
                "(as written to config.json)"
            )
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            known = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ValueError(f"unknown config field(s) {', '.join(sorted(unknown))}: use {known}")
        return cls(**d)


_TEXT_FIELDS = ("activation", "output_activation", "init", "bias_init", "rng", "optimizer",
                "bias_update", "backprop_weights", "dtype")
_NUMBER_FIELDS = ("leaky_slope", "bias_scale", "lr", "momentum", "beta1", "beta2", "rms_decay",
                  "eps", "threshold", "stuck_tol")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _choice(name: str, value, accepted) -> None:
    if value not in accepted:
        raise ValueError(f"{name} {value!r} is invalid: use one of {', '.join(accepted)}")


def _positive(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and value > 0 and value < float("inf")):
        raise ValueError(f"{name} {value!r} is invalid: use a positive number")
