"""``actdiag list``: the names accepted by the flags, from the tables themselves."""

from __future__ import annotations

import argparse

from diagnostics.activations import ACTIVATIONS, ALIASES
from diagnostics.initializers import BIAS_INITS, INITIALIZERS
from diagnostics.optimizers import OPTIMIZERS
from diagnostics.presets import PRESETS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "list", help="list activations, initializers, optimizers and presets",
        description="Print every name the flags accept, from the tables themselves.",
        epilog="examples:\n  actdiag list\n  actdiag list | grep -A3 optimizers\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print("activations:")
    for name, act in ACTIVATIONS.items():
        kind = "saturating" if act.saturating else "rectifier" if act.rectifier else ""
        print(f"  {name:<16} max derivative {act.max_grad:.4g}  {kind}")
    print("  aliases: " + ", ".join(f"{a} -> {b}" for a, b in ALIASES.items()))
    print("initializers:")
    for name, init in INITIALIZERS.items():
        print(f"  {name:<16} {init.formula}")
    print("bias initializers: " + ", ".join(BIAS_INITS))
    print("optimizers:")
    for name, opt in OPTIMIZERS.items():
        print(f"  {name:<16} {opt.rule}")
    print("presets:")
    for name, cfg in PRESETS.items():
        print(
            f"  {name:<16} {cfg.activation} (output {cfg.output_activation or 'same'}), "
            f"bias_update {cfg.bias_update}, backprop_weights {cfg.backprop_weights}, "
            f"init {cfg.init}, lr {cfg.lr:g}, {cfg.epochs} epochs"
        )
    return 0
