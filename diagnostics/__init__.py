"""activation-diagnostics: train ensembles of seeds at once and measure what happens inside them."""

from .activations import ACTIVATIONS, get_activation
from .config import Config
from .data import Dataset, addition_data, load_csv, load_data, question_data
from .initializers import INITIALIZERS
from .optimizers import OPTIMIZERS
from .presets import PRESETS, get_preset
from .train import OUTCOMES, Result, train

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "OPTIMIZERS",
    "OUTCOMES",
    "PRESETS",
    "Config",
    "Dataset",
    "Result",
    "addition_data",
    "get_activation",
    "get_preset",
    "load_csv",
    "load_data",
    "question_data",
    "train",
]
__version__ = "0.1.0"
