"""The vanishing study's grid: which configurations it trains, on which seeds, for how long."""

from __future__ import annotations

from diagnostics.presets import PRESETS
from diagnostics.schedules import Schedule
from studies.run.cells import Cell
from studies.run.study import StudyOptions

NAME = "vanishing"
TITLE = (
    "Vanishing gradients with depth: per-layer gradients at initialisation and in training "
    "(fixed preset: true gradients, identity output)"
)
ACTIVATIONS = ("relu", "tanh", "sigmoid")
INITS = ("standard_normal", "xavier_normal", "he_normal", "lecun_uniform")
DEPTHS = (1, 2, 4, 6, 8, 12, 16, 20)  # hidden layers, at initialisation
QUICK_DEPTHS = (1, 2, 4, 8, 20)
WIDTH = 16  # units per hidden layer
TRAIN_DEPTHS = (20,)  # hidden layers of the trained networks
QUICK_TRAIN_DEPTHS = (8,)
QUESTION_HIDDEN = (4, 4)  # the question's hidden layers
INIT_PROBES = "grad_norm_W,grad_norm_z,saturation_fraction,gain,weight_norm"
TRAIN_PROBES = "grad_norm_W,grad_norm_z,saturation_fraction,gain,weight_norm,loss"
TRAIN_RECORDS = 24  # at most this many log-spaced recordings per training run (plus epoch 0)


def _bias_init(init: str) -> str:
    """Normal biases with the question's N(0, 1) weights, zero with the scaled ones."""
    return "normal" if init == "standard_normal" else "zero"


def _shape(n_in: int, n_out: int, width: int, depth: int) -> tuple[int, ...]:
    """Layer sizes: inputs, ``depth`` hidden layers of ``width``, outputs."""
    return (n_in, *([width] * depth), n_out)


def study_width(opts: StudyOptions) -> int:
    """Hidden width: the user's first hidden layer size, else 16."""
    return int(opts.layers[1]) if opts.layers and len(opts.layers) > 2 else WIDTH


def study_depths(opts: StudyOptions) -> list[int]:
    """Depths at initialisation: the default grid plus the user's own depth if given."""
    depths = set(QUICK_DEPTHS if opts.quick else DEPTHS)
    if opts.layers and len(opts.layers) > 2:
        depths.add(len(opts.layers) - 2)
    return sorted(depths)


def cells(opts: StudyOptions) -> list[Cell]:
    """At-init cells (every activation × init × depth), training cells, question-network cells."""
    seeds = opts.pick("seeds", 200, 30)
    train_seeds = opts.pick("seeds", 32, 10)
    epochs = opts.pick("epochs", 120, 10)
    width = study_width(opts)
    n_in, n_out = opts.io_shape()
    acts = opts.pick("activations", ACTIVATIONS)
    lr = opts.lrs[0] if opts.lrs else PRESETS["fixed"].lr
    fixed = PRESETS["fixed"]
    out = []
    for act in acts:
        for init in INITS:
            for depth in study_depths(opts):
                out.append(Cell(
                    NAME, (("run", "init"), ("preset", "fixed"), ("activation", act),
                           ("init", init), ("depth", depth)),
                    fixed.replace(layers=_shape(n_in, n_out, width, depth), activation=act,
                                  init=init, bias_init=_bias_init(init), epochs=1, batch="full"),
                    (0, seeds), loss_every=Schedule.never(), record=INIT_PROBES,
                    record_every=Schedule.at(0),
                    **opts.data_kwargs(),
                ))
    for act in acts:
        for init in INITS:
            for depth in QUICK_TRAIN_DEPTHS if opts.quick else TRAIN_DEPTHS:
                out.append(Cell(
                    NAME, (("run", "train"), ("preset", "fixed"), ("activation", act),
                           ("init", init), ("depth", depth)),
                    fixed.replace(layers=_shape(n_in, n_out, width, depth), activation=act,
                                  init=init, bias_init=_bias_init(init), epochs=epochs, lr=lr),
                    (0, train_seeds), loss_every=Schedule.log(40), record=TRAIN_PROBES,
                    record_every=Schedule.log(TRAIN_RECORDS), **opts.data_kwargs(),
                ))
    q_layers = opts.layers if opts.layers else (n_in, *QUESTION_HIDDEN, n_out)
    for preset in ("question", "fixed"):
        for act in acts:
            out.append(Cell(
                NAME, (("run", "question"), ("preset", preset), ("activation", act),
                       ("init", "standard_normal"), ("depth", len(q_layers) - 2)),
                PRESETS[preset].replace(layers=tuple(q_layers), activation=act, epochs=1),
                (0, seeds), loss_every=Schedule.never(), record="grad_norm_W,grad_norm_z",
                record_every=Schedule.at(0),
                **opts.data_kwargs(),
            ))
    return out
