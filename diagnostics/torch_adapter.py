"""PyTorch adapter: the toolkit's instruments on any ``nn.Module``, and seeded ensembles in torch.

Optional and lazy: ``import diagnostics`` never imports torch; importing this module does
(``pip install 'activation-diagnostics[torch]'``).

What is attached. The adapter traces one forward pass of the model and finds, in the order they
run, its ``nn.Linear`` layers and the activation modules that follow them (``TORCH_ACTIVATIONS``,
plus the user's own classes given in ``activations``). Layer l is Linear l and the activation that
follows it (none: identity); the last Linear is the output layer. Each torch activation is mapped to
the toolkit's ``ACTIVATIONS`` entry with the same function, so act'(z), ``dead_fraction`` and
``saturation_fraction`` have the numpy engine's definitions; an activation without an entry (a
user's own class mapped to None, GELU with the exact erf form, ELU with alpha != 1, ...) gets
act'(z) by autograd and only the probes that need no family (gain, z statistics, gradients).

How it is measured. At a recording epoch one full pass over the whole dataset runs with forward
hooks on the Linear layers, which record each pre-activation z and add a zero tensor ``delta`` to
it; the gradient of the loss with respect to ``delta`` is the back-propagated error dL/dz, the
gradient with respect to the parameters gives dW and db (``torch.func.grad``, so the same pass is
``vmap``-ed over a stacked ensemble). The arrays are converted to the probes' layout
``(units, N, S)`` and handed to the *same* probe functions (``diagnostics.probes``) through the
same ``Recorder`` as the numpy ``Monitor``; rows come out of ``tidy()`` with the same columns.
The loss is L = (1/N) sum_n sum_o (y_hat - y)^2 unless a ``loss_fn(output, target)`` (a mean over
the batch) is given. Hooks exist only during a recording pass and are removed when it ends, so a
model trains exactly as without the adapter; leaving the context manager removes any left.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, grad_and_value, stack_module_state, vmap

from .activations import ACTIVATIONS, Activation, get_activation, leaky_relu
from .data import Dataset
from .monitor import DEFAULT_EVERY, Recorder
from .probes import LayerRecord, NetworkRecord
from .schedules import schedule
from .train import Result, as_seeds, shuffle_order

Array = np.ndarray
Tensor = torch.Tensor
LossFn = Callable[[Tensor, Tensor], Tensor]

# torch activation class -> the toolkit Activation with the same function, or None when the
# module's parameters make it a different function (then act'(z) comes from autograd)
TORCH_ACTIVATIONS: dict[type, Callable[[nn.Module], Activation | None]] = {
    nn.ReLU: lambda m: ACTIVATIONS["relu"],
    nn.LeakyReLU: lambda m: leaky_relu(float(m.negative_slope)),
    nn.ELU: lambda m: ACTIVATIONS["elu"] if m.alpha == 1.0 else None,
    nn.SELU: lambda m: ACTIVATIONS["selu"],
    nn.GELU: lambda m: ACTIVATIONS["gelu"] if m.approximate == "tanh" else None,  # ours: tanh form
    nn.SiLU: lambda m: ACTIVATIONS["silu"],
    nn.Softplus: lambda m: ACTIVATIONS["softplus"] if m.beta == 1.0 else None,
    nn.Tanh: lambda m: ACTIVATIONS["tanh"],
    nn.Sigmoid: lambda m: ACTIVATIONS["sigmoid"],
    nn.Softsign: lambda m: ACTIVATIONS["softsign"],
}
IDENTITY = ACTIVATIONS["identity"]


def mse_sum(output: Tensor, target: Tensor) -> Tensor:
    """L = (1/B) sum_b sum_o (y_hat - y)^2: the toolkit's loss (the question's error)."""
    return torch.square(output - target).sum(dim=-1).mean()


def autograd_activation(
    module: nn.Module, name: str | None = None, *, saturating: bool = False,
    rectifier: bool = False,
) -> Activation:
    """An ``Activation`` for an element-wise module, with act'(z) by autograd.

    ``max_grad`` is sup |act'(z)| on a grid over [-10, 10]; ``saturating`` and ``rectifier`` say
    whether saturation_fraction and dead_fraction apply (off unless given).
    """

    def fn(z, out=None):
        with torch.no_grad():
            a = module(torch.as_tensor(z)).numpy()
        if out is None:
            return a
        np.copyto(out, a)
        return out

    def grad_fn(z, a, out=None):
        with torch.enable_grad():
            zt = torch.tensor(z, requires_grad=True)
            (g,) = torch.autograd.grad(module(zt).sum(), zt)  # element-wise: d sum / d z = act'
        g = g.numpy()
        if out is None:
            return g
        np.copyto(out, g)
        return out

    grid = np.linspace(-10.0, 10.0, 20_001)
    peak = float(np.abs(grad_fn(grid, None)).max())
    return Activation(name or type(module).__name__, fn, grad_fn, peak, saturating, rectifier)


def _resolve(module: nn.Module, activations: Mapping) -> tuple[bool, Activation | None]:
    """(is an activation module, its Activation or None for autograd)."""
    for key, value in activations.items():
        if (isinstance(key, str) and type(module).__name__ == key) or (
            isinstance(key, type) and isinstance(module, key)
        ):
            if value is None:
                return True, autograd_activation(module)
            if isinstance(value, Activation):
                return True, value
            return True, get_activation(str(value))
    for cls, rule in TORCH_ACTIVATIONS.items():
        if type(module) is cls:
            act = rule(module)
            return True, act if act is not None else autograd_activation(module)
    return False, None


@dataclass(frozen=True)
class Structure:
    """The layers found in a model: Linear module names, and each one's activation."""

    linears: list[str]  # names (model.named_modules) of the Linear layers, in execution order
    act_modules: list[str | None]  # the activation module after each, None: identity
    acts: list[Activation]  # the toolkit Activation of each layer


def find_layers(model: nn.Module, x: Tensor, activations: Mapping | None = None) -> Structure:
    """Trace one forward pass on ``x`` and pair every Linear with the activation that follows it.

    Raises ValueError when a Linear runs twice, an activation does not directly follow a Linear,
    or something other than the activation changes the values between two Linear layers (e.g. a
    functional ``F.relu`` the adapter cannot see: map it by using a module).
    """
    activations = dict(activations or {})
    names = {m: n for n, m in model.named_modules()}
    calls: list[tuple[str, nn.Module, Tensor, Tensor]] = []
    handles = []
    acts_of: dict[nn.Module, Activation | None] = {}
    for m in model.modules():
        is_act, act = (False, None) if isinstance(m, nn.Linear) else _resolve(m, activations)
        if isinstance(m, nn.Linear) or is_act:
            acts_of[m] = act
            handles.append(
                m.register_forward_hook(lambda mod, inp, out: calls.append((names[mod], mod,
                                                                           inp[0], out)))
            )
    try:
        with torch.no_grad():
            params = {k: v.detach() for k, v in model.named_parameters()}
            buffers = {k: v.detach().clone() for k, v in model.named_buffers()}  # untouched
            functional_call(model, (params, buffers), (x,))
    finally:
        for h in handles:
            h.remove()
    linears: list[str] = []
    act_modules: list[str | None] = []
    acts: list[Activation] = []
    last_out: Tensor | None = None
    for name, mod, inp, out in calls:
        if isinstance(mod, nn.Linear):
            if name in linears:
                raise ValueError(f"Linear {name!r} runs more than once per forward pass")
            if last_out is not None and (inp.shape != last_out.shape or not torch.equal(inp,
                                                                                     last_out)):
                raise ValueError(
                    f"the input of Linear {name!r} is not the output of the layer before it: "
                    "use activation modules (nn.ReLU, ...) or name your own in activations="
                )
            linears.append(name)
            act_modules.append(None)
            acts.append(IDENTITY)
        else:
            if not linears or act_modules[-1] is not None:
                raise ValueError(f"activation {name!r} does not directly follow a Linear layer")
            act_modules[-1] = name
            acts[-1] = acts_of[mod]
        last_out = out
    if not linears:
        raise ValueError("the model has no nn.Linear layer for the adapter to measure")
    return Structure(linears, act_modules, acts)


def _probe_pass(model: nn.Module, st: Structure, loss_fn: LossFn, live: dict):
    """``f(params, buffers, deltas, X, Y) -> ((dparams, ddeltas), (loss, zs, outs))``.

    Forward hooks record each layer's z (= Linear output + delta) and its activation's output;
    the gradient with respect to delta is dL/dz. The hooks exist during the pass only; ``live``
    holds them meanwhile (id -> handle) so that an interrupted pass can be cleaned up.
    """
    modules = dict(model.named_modules())
    L = len(st.linears)

    def loss_with_records(params, buffers, deltas, X, Y):
        zs: list = [None] * L
        outs: list = [None] * L
        handles = []

        def lin_hook(l):
            def hook(mod, inp, out):
                zs[l] = out + deltas[l]
                return zs[l]
            return hook

        def act_hook(l):
            def hook(mod, inp, out):
                outs[l] = out
            return hook

        try:
            for l, (lin, act) in enumerate(zip(st.linears, st.act_modules, strict=True)):
                handles.append(modules[lin].register_forward_hook(lin_hook(l)))
                if act is not None:
                    handles.append(modules[act].register_forward_hook(act_hook(l)))
            live.update((h.id, h) for h in handles)
            out = functional_call(model, (params, buffers), (X,))
        finally:
            for h in handles:
                h.remove()
                live.pop(h.id, None)
        loss = loss_fn(out, Y)
        outs = [z if a is None else a for z, a in zip(zs, outs, strict=True)]
        return loss, (loss, zs, outs)

    return grad(loss_with_records, argnums=(0, 2), has_aux=True)


def _numpy(t: Tensor) -> Array:
    return t.detach().cpu().numpy()


def _seed_last(t: Tensor) -> Array:
    """(S, ...) tensor -> (..., S) numpy array (the probes' layout), units first for (S, N, u)."""
    t = t.detach()
    if t.ndim == 3:  # (S, N, units) -> (units, N, S);  (S, out, in) handled by the caller
        return t.permute(2, 1, 0).contiguous().cpu().numpy()  # torch's copy: 3x numpy's here
    return np.ascontiguousarray(np.moveaxis(_numpy(t), 0, -1))


def _weights_seed_last(t: Tensor) -> Array:
    """(S, out, in) -> (out, in, S)."""
    return np.ascontiguousarray(np.moveaxis(_numpy(t), 0, -1))


class TorchMonitor(Recorder):
    """Probe a torch model (or a stacked ensemble of copies of it) on a schedule.

    Args:
        model: the network; a template when recording an ensemble's stacked parameters.
        data: the dataset of the full passes (a ``Dataset`` or ``(X, Y)`` arrays).
        seeds: the ensemble's seeds (one, for a single model).
        record: ``all`` or a comma list of groups and probe names (as ``Monitor``).
        every: a schedule (``diagnostics.schedules``), default ``log:100``.
        epochs: the run's epoch budget (what ``every`` is spread over).
        loss_fn: ``loss_fn(output, target)``, a mean over samples; default ``mse_sum``.
        activations: the user's own activation classes (or class names) -> a toolkit name, an
            ``Activation``, or None for act'(z) by autograd.
        vectorize: record an ensemble with ``vmap`` (False: one seed after another).
    """

    def __init__(
        self,
        model: nn.Module,
        data: Dataset | tuple,
        seeds: Iterable[int] = (0,),
        record: str | Iterable[str] = "all",
        every: str | int = DEFAULT_EVERY,
        epochs: int = 1,
        *,
        loss_fn: LossFn | None = None,
        activations: Mapping | None = None,
        vectorize: bool = True,
    ):
        self.model = model
        self.data = as_dataset(data)
        dtype = next(model.parameters()).dtype
        self.X = torch.as_tensor(self.data.X, dtype=dtype)
        self.Y = torch.as_tensor(self.data.Y, dtype=dtype)
        self.loss_fn = loss_fn or mse_sum
        self.structure = find_layers(model, self.X, activations)
        epochs_rec = np.union1d([0], schedule(every, epochs, first=0)).astype(np.int64)
        super().__init__(self.structure.acts, seeds, epochs_rec, record)
        self.vectorize = vectorize
        self._hooks: dict[int, object] = {}  # hooks attached right now (only during a pass)
        self._pass = _probe_pass(model, self.structure, self.loss_fn, self._hooks)
        self._vpass = vmap(self._pass, in_dims=(0, 0, 0, None, None))
        self._snapshot: tuple[int, dict[str, Tensor]] | None = None
        lin = dict(model.named_modules())
        self._units = [lin[n].out_features for n in self.structure.linears]

    # ---- the context manager: nothing stays attached after it ---------------------------------

    def __enter__(self) -> TorchMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove any hook of this adapter still on the model (none outside a pass)."""
        for handle in list(self._hooks.values()):
            handle.remove()
        self._hooks.clear()

    # ---- recording ----------------------------------------------------------------------------

    def observe(self, epoch: int) -> None:
        """Record the model's current parameters at ``epoch`` if it is on the schedule.

        Call it at epoch 0 (before training) and after every epoch: off-schedule calls only keep
        a copy of the weights when the next epoch needs one for ``update_ratio``.
        """
        params = {k: v.detach()[None] for k, v in self.model.named_parameters()}
        if int(epoch) in self._index:
            prev = None
            if self._snapshot is not None and self._snapshot[0] == epoch - 1:
                prev = self._snapshot[1]
            buffers = {k: v.detach()[None] for k, v in self.model.named_buffers()}
            self.observe_params(epoch, params, buffers, np.arange(1), prev)
        if int(epoch) + 1 in self._index:
            self._snapshot = (int(epoch), {k: v.clone() for k, v in params.items()})

    def observe_params(
        self,
        epoch: int,
        params: Mapping[str, Tensor],
        buffers: Mapping[str, Tensor],
        alive: Array,
        prev: Mapping[str, Tensor] | None = None,
    ) -> None:
        """Record stacked parameters ``{name: (S_alive, ...)}``; ``alive`` maps them to seeds."""
        started = time.perf_counter()
        S = len(alive)
        deltas = [torch.zeros(S, self.X.shape[0], u, dtype=self.X.dtype) for u in self._units]
        with torch.no_grad():
            params = {k: v.detach() for k, v in params.items()}
            buffers = {k: v.detach().clone() for k, v in buffers.items()}
        if self.vectorize:
            (dparams, dz), (loss, zs, outs) = self._vpass(params, buffers, deltas, self.X, self.Y)
        else:  # one seed after another, stacked afterwards
            parts = []
            for s in range(S):
                p_s = {k: v[s] for k, v in params.items()}
                b_s = {k: v[s] for k, v in buffers.items()}
                parts.append(self._pass(p_s, b_s, [d[s] for d in deltas], self.X, self.Y))
            stack = lambda xs: torch.stack(list(xs))  # noqa: E731
            dparams = {k: stack(p[0][0][k] for p in parts) for k in params}
            dz = [stack(p[0][1][l] for p in parts) for l in range(len(deltas))]
            loss = stack(p[1][0] for p in parts)
            zs = [stack(p[1][1][l] for p in parts) for l in range(len(deltas))]
            outs = [stack(p[1][2][l] for p in parts) for l in range(len(deltas))]
        layers = []
        for l, (lin, act) in enumerate(zip(self.structure.linears, self.structure.acts,
                                           strict=True)):
            z, a = _seed_last(zs[l]), _seed_last(outs[l])
            wk, bk = f"{lin}.weight", f"{lin}.bias"
            W = _weights_seed_last(params[wk])
            dW = _weights_seed_last(dparams[wk])
            if bk in params:
                b, db = _seed_last(params[bk]), _seed_last(dparams[bk])
            else:  # Linear(bias=False): a zero bias with a zero gradient
                b = db = np.zeros((W.shape[0], S))
            W_prev = None if prev is None else _weights_seed_last(prev[wk])
            with np.errstate(over="ignore", invalid="ignore"):
                gz = act.grad(z, a)
            layers.append(LayerRecord(z, a, gz, _seed_last(dz[l]), W, b, dW, db, W_prev, act))
        self.record(epoch, NetworkRecord(layers, _numpy(loss).reshape(S)), np.asarray(alive))
        self.seconds += time.perf_counter() - started


def attach(model: nn.Module, data: Dataset | tuple, **kwargs) -> TorchMonitor:
    """A ``TorchMonitor`` of one model, to use as a context manager (see ``TorchMonitor``).

    ``with attach(model, data, record="all", epochs=E) as m:`` then ``m.observe(0)`` before
    training and ``m.observe(e)`` after every epoch e; ``m.tidy()`` gives the rows.
    """
    return TorchMonitor(model, data, **kwargs)


def as_dataset(data: Dataset | tuple) -> Dataset:
    """A ``Dataset`` from itself or from ``(X, Y)`` arrays."""
    if isinstance(data, Dataset):
        return data
    X, Y = data
    Y = np.asarray(Y, dtype=np.float64)
    return Dataset("torch", np.asarray(X, dtype=np.float64), Y.reshape(len(Y), -1))


# ---- training an ensemble of seeded copies ------------------------------------------------------


@dataclass
class TorchResult(Result):
    """A ``Result`` of ``run_seeds``: same fields and tidy tables; ``config`` is None.

    ``initial_params`` and ``final_params`` are dicts name -> numpy array (S, ...) of the
    model's parameters (diverged seeds: the last finite values); ``monitor`` the instruments.
    """

    monitor: TorchMonitor | None = None
    vectorized: bool = False  # trained with vmap over stacked parameters

    def tidy(self, table: str = "outcomes") -> dict[str, Array]:
        """``outcomes`` and ``loss`` as ``Result.tidy``; ``metrics`` as ``Monitor.tidy``."""
        if table == "metrics":
            if self.monitor is None:
                raise ValueError("no instruments were recorded: pass record= to run_seeds")
            return self.monitor.tidy()
        return super().tidy(table)


@dataclass(frozen=True)
class _SGDRule:
    """torch.optim.SGD's update, written over stacked parameters."""

    lr: float
    momentum: float
    nesterov: bool


def functional_rule(optimizer: torch.optim.Optimizer) -> _SGDRule | None:
    """The stacked-parameter form of ``optimizer`` when there is one (plain SGD or momentum)."""
    if type(optimizer) is not torch.optim.SGD or len(optimizer.param_groups) != 1:
        return None
    g = optimizer.param_groups[0]
    if g.get("weight_decay", 0) or g.get("dampening", 0) or g.get("maximize", False):
        return None
    lr = g["lr"]
    if isinstance(lr, Tensor):
        lr = float(lr)
    return _SGDRule(float(lr), float(g.get("momentum", 0.0)), bool(g.get("nesterov", False)))


def _batches(batch, seeds: Array, epoch: int, N: int):
    """Per step: (index (B,) shared by all seeds, or (S, B) per seed)."""
    if batch == "online":
        return [np.array([n]) for n in range(N)]
    if batch == "full":
        return [np.arange(N)]
    size = 1 if batch == "shuffled" else int(batch)
    order = shuffle_order(seeds, epoch, N)  # (N, S), the numpy engine's order
    return [order[s : s + size].T for s in range(0, N, size)]


def run_seeds(
    make_model: Callable[[], nn.Module],
    make_optimizer: Callable[[Iterable[Tensor]], torch.optim.Optimizer],
    data: Dataset | tuple,
    seeds: int | Iterable[int],
    epochs: int,
    *,
    batch: str | int = "online",
    threshold: float = 1e-3,
    stuck_tol: float = 0.0,
    loss_every: str | int = "all",
    record: str | Iterable[str] | None = None,
    record_every: str | int = DEFAULT_EVERY,
    loss_fn: LossFn | None = None,
    activations: Mapping | None = None,
    dtype: torch.dtype = torch.float64,
    vectorize: bool | None = None,
    thresholds: Iterable[float] = (),
) -> TorchResult:
    """Train one copy of ``make_model()`` per seed; outcomes as ``diagnostics.train.train``.

    ``torch.manual_seed(seed)`` runs before each ``make_model()``. With ``vectorize`` (default:
    when the optimizer is ``torch.optim.SGD`` without weight decay or dampening, and the model
    runs under ``vmap``) the copies are trained at once over stacked parameters
    (``torch.func.stack_module_state``, ``functional_call``, ``vmap``), SGD written functionally;
    otherwise one after another with the optimizer itself.

    Args:
        make_model: builds the network (its parameters are cast to ``dtype``).
        make_optimizer: ``make_optimizer(model.parameters())`` -> a torch optimizer.
        data: a ``Dataset`` or ``(X, Y)`` arrays.
        seeds: a count n (seeds 0..n-1) or the seeds.
        epochs: passes over the data.
        batch: ``online`` (one sample per step, data order), ``shuffled`` (online, the numpy
            engine's per-seed order), ``full``, or a batch size B (the engine's per-seed order).
        threshold: converged once an epoch's loss <= threshold.
        stuck_tol: stuck: not converged and max |full-data gradient| <= stuck_tol at the end.
        loss_every: schedule of the epochs whose loss is kept (``diagnostics.schedules``).
        record: instruments (as ``Monitor``), None for none.
        record_every: their schedule.
        loss_fn: ``loss_fn(output, target)``, a mean over the batch; default ``mse_sum``. The
            epoch loss is the mean over samples of each step's loss (weighted by batch size).
        activations: the user's own activation classes, as in ``TorchMonitor``.
        dtype: the parameters' and data's dtype.
        vectorize: force (True) or forbid (False) the vmap path; None: when possible.
        thresholds: extra loss levels whose first epochs go into ``epochs_to``.

    Returns:
        A ``TorchResult`` (a ``diagnostics.train.Result``) with ``tidy("outcomes")``,
        ``tidy("loss")`` and, with ``record``, ``tidy("metrics")``.
    """
    data = as_dataset(data)
    seeds = as_seeds(seeds)
    loss_fn = loss_fn or mse_sum
    models = []
    for s in seeds:
        torch.manual_seed(int(s))
        models.append(make_model().to(dtype))
    X = torch.as_tensor(data.X, dtype=dtype)
    Y = torch.as_tensor(data.Y, dtype=dtype)
    rule = functional_rule(make_optimizer(copy.deepcopy(models[0]).parameters()))
    if vectorize and rule is None:
        raise ValueError("vectorize=True needs torch.optim.SGD without weight decay or dampening")
    template = models[0]
    monitor = None
    if record is not None:
        monitor = TorchMonitor(template, data, seeds, record, record_every, epochs,
                               loss_fn=loss_fn, activations=activations)
    state = _State(seeds, epochs, loss_every, threshold, thresholds)
    use_vmap = vectorize if vectorize is not None else rule is not None and _vmappable(
        template, models, X, Y, loss_fn)
    started = time.perf_counter()
    with torch.no_grad():
        initial = {k: torch.stack([dict(m.named_parameters())[k].detach().clone() for m in models])
                   for k, _ in template.named_parameters()}
    if use_vmap:
        final, max_grad = _train_stacked(template, models, rule, X, Y, batch, loss_fn, state,
                                         monitor)
    else:
        if monitor is not None:
            monitor.vectorize = False
        final, max_grad = _train_loop(models, make_optimizer, X, Y, batch, loss_fn, state,
                                      monitor)
    seconds = time.perf_counter() - started
    return state.result(data, initial, final, max_grad, stuck_tol, seconds, monitor, use_vmap)


def _vmappable(template, models, X, Y, loss_fn) -> bool:
    """Whether one vmapped gradient step of the stacked models runs."""
    try:
        params, buffers = stack_module_state(models[:2])
        step = _stacked_step(template, loss_fn)
        step({k: v.detach() for k, v in params.items()}, buffers, X[:1], Y[:1], None)
        return True
    except Exception:  # any vmap limitation: fall back to the loop
        return False


def _stacked_step(template: nn.Module, loss_fn: LossFn):
    """``step(params, buffers, x, y, per_seed) -> (grads, loss (S,))``, vmapped over seeds."""

    def loss_one(params, buffers, x, y):
        return loss_fn(functional_call(template, (params, buffers), (x,)), y)

    g = grad_and_value(loss_one)
    shared = vmap(g, in_dims=(0, 0, None, None))
    per_seed = vmap(g, in_dims=(0, 0, 0, 0))

    def step(params, buffers, x, y, own):
        return (per_seed if own else shared)(params, buffers, x, y)

    return step


class _State:
    """Per-seed bookkeeping shared by both training paths, as in ``diagnostics.train``."""

    def __init__(self, seeds, epochs, loss_every, threshold, thresholds):
        S = seeds.size
        self.seeds, self.epochs, self.threshold = seeds, epochs, float(threshold)
        self.rec = schedule(loss_every, epochs, first=1)
        self.rec_index = {int(e): r for r, e in enumerate(self.rec)}
        self.loss = np.full((self.rec.size, S), np.nan)
        self.extra = sorted(set(map(float, thresholds)))
        self.levels = sorted({self.threshold, *self.extra})
        self.first_below = np.full((len(self.levels), S), -1, dtype=np.int64)
        self.diverged = np.full(S, -1, dtype=np.int64)
        self.final_loss = np.full(S, np.nan)
        self.min_loss = np.full(S, np.inf)

    def epoch_done(self, epoch: int, cols: Array, loss: Array) -> None:
        r = self.rec_index.get(epoch)
        if r is not None:
            self.loss[r, cols] = loss
        self.min_loss[cols] = np.fmin(self.min_loss[cols], loss)
        for j, level in enumerate(self.levels):
            reached = (loss <= level) & (self.first_below[j, cols] < 0)
            self.first_below[j, cols[reached]] = epoch
        self.final_loss[cols] = loss

    def result(self, data, initial, final, max_grad, stuck_tol, seconds, monitor, vectorized):
        to_threshold = self.first_below[self.levels.index(self.threshold)]
        outcome = np.full(self.seeds.size, "not_converged", dtype=object)
        outcome[max_grad <= stuck_tol] = "stuck"
        outcome[to_threshold >= 0] = "converged"
        outcome[self.diverged >= 0] = "diverged"
        return TorchResult(
            config=None,
            data=data,
            seeds=self.seeds,
            outcome=outcome.astype(str),
            epochs_to_threshold=to_threshold,
            diverged_epoch=self.diverged,
            final_loss=self.final_loss,
            min_loss=np.where(np.isinf(self.min_loss), np.nan, self.min_loss),
            max_abs_grad=max_grad,
            loss_epochs=self.rec,
            loss=self.loss,
            initial_params={k: _numpy(v) for k, v in initial.items()},
            final_params={k: _numpy(v) for k, v in final.items()},
            seconds=seconds,
            epochs_to={t: self.first_below[self.levels.index(t)] for t in self.extra},
            monitor=monitor,
            vectorized=vectorized,
        )


def _finite(params: Mapping[str, Tensor]) -> Tensor:
    """(S,) True where every parameter of the seed is finite."""
    ok = None
    for v in params.values():
        f = torch.isfinite(v.reshape(v.shape[0], -1)).all(dim=1)
        ok = f if ok is None else ok & f
    return ok


def _train_stacked(template, models, rule, X, Y, batch, loss_fn, state, monitor):
    """All seeds at once over stacked parameters; diverged seeds are frozen and dropped."""
    params, buffers = stack_module_state(models)
    params = {k: v.detach() for k, v in params.items()}
    buffers = {k: v.detach() for k, v in buffers.items()}
    velocity = {k: torch.zeros_like(v) for k, v in params.items()} if rule.momentum else None
    step = _stacked_step(template, loss_fn)
    N = X.shape[0]
    alive = np.arange(state.seeds.size)
    final = {k: v.clone() for k, v in params.items()}
    if monitor is not None and 0 in monitor._index:
        monitor.observe_params(0, params, buffers, alive, None)
    for epoch in range(1, state.epochs + 1):
        prev = {k: v.clone() for k, v in params.items()}
        total = torch.zeros(alive.size, dtype=X.dtype)
        for idx in _batches(batch, state.seeds[alive], epoch, N):
            own = idx.ndim == 2
            x, y = X[torch.as_tensor(idx)], Y[torch.as_tensor(idx)]
            grads, loss = step(params, buffers, x, y, own)
            total += loss * idx.shape[-1]
            with torch.no_grad():
                for k in params:
                    d = grads[k]
                    if velocity is not None:
                        velocity[k].mul_(rule.momentum).add_(d)
                        d = d.add(velocity[k], alpha=rule.momentum) if rule.nesterov else \
                            velocity[k]
                    params[k] = params[k].add(d, alpha=-rule.lr)
        loss = _numpy(total / N)
        bad = ~(np.isfinite(loss) & _numpy(_finite(params)))
        state.epoch_done(epoch, alive, loss)
        if bad.any():
            gone = alive[bad]
            state.diverged[gone] = epoch
            keep = torch.as_tensor(~bad)
            for k in params:
                final[k][torch.as_tensor(gone)] = prev[k][torch.as_tensor(bad)]
                params[k], prev[k] = params[k][keep], prev[k][keep]
                if velocity is not None:
                    velocity[k] = velocity[k][keep]
            buffers = {k: v[keep] for k, v in buffers.items()}
            alive = alive[~bad]
            if alive.size == 0:
                break
        if monitor is not None and epoch in monitor._index:
            monitor.observe_params(epoch, params, buffers, alive, prev)
    max_grad = np.full(state.seeds.size, np.nan)
    if alive.size:
        for k in params:
            final[k][torch.as_tensor(alive)] = params[k]
        grads, _ = step(params, buffers, X, Y, False)
        flat = torch.cat([g.reshape(alive.size, -1) for g in grads.values()], dim=1)
        max_grad[alive] = _numpy(flat.abs().max(dim=1).values)
    return final, max_grad


def _train_loop(models, make_optimizer, X, Y, batch, loss_fn, state, monitor):
    """One seed after another with the optimizer itself."""
    N = X.shape[0]
    S = state.seeds.size
    names = [k for k, _ in models[0].named_parameters()]
    final = {k: [] for k in names}
    max_grad = np.full(S, np.nan)
    for j, model in enumerate(models):
        col = np.array([j])
        opt = make_optimizer(model.parameters())
        params = dict(model.named_parameters())

        def stacked(m=model):
            return ({k: v.detach()[None] for k, v in m.named_parameters()},
                    {k: v.detach()[None] for k, v in m.named_buffers()})

        if monitor is not None and 0 in monitor._index:
            monitor.observe_params(0, *stacked(), col, None)
        for epoch in range(1, state.epochs + 1):
            prev = {k: v.detach().clone() for k, v in params.items()}
            total = 0.0
            for idx in _batches(batch, state.seeds[col], epoch, N):
                idx = torch.as_tensor(idx.reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(X[idx]), Y[idx])
                loss.backward()
                opt.step()
                total += loss.item() * idx.numel()
            loss = np.array([total / N])
            finite = np.isfinite(loss[0]) and all(bool(torch.isfinite(p).all())
                                                  for p in params.values())
            state.epoch_done(epoch, col, loss)
            if not finite:
                state.diverged[j] = epoch
                with torch.no_grad():
                    for k, v in params.items():
                        v.copy_(prev[k])
                break
            if monitor is not None and epoch in monitor._index:
                monitor.observe_params(epoch, *stacked(), col,
                                       {k: v[None] for k, v in prev.items()})
        if state.diverged[j] < 0:
            model.zero_grad(set_to_none=True)
            loss_fn(model(X), Y).backward()
            max_grad[j] = max(float(p.grad.abs().max()) for p in params.values())
        for k in names:
            final[k].append(params[k].detach().clone())
    return {k: torch.stack(v) for k, v in final.items()}, max_grad


def mlp(layers: Iterable[int], activation: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear, activation, ..., Linear: a multilayer perceptron with a linear output."""
    sizes = list(layers)
    mods: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        mods.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            mods.append(activation())
    return nn.Sequential(*mods)


# ---- named models: a cell of a study can train a torch model described by a Config --------------

# toolkit activation name -> the torch module with the same function (LeakyReLU: Config's slope)
TORCH_MODULES: dict[str, Callable[..., nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "elu": nn.ELU, "selu": nn.SELU,
    "silu": nn.SiLU, "softplus": nn.Softplus, "softsign": nn.Softsign,
    "gelu": lambda: nn.GELU(approximate="tanh"),
}


def _hidden_module(config) -> Callable[[], nn.Module]:
    if config.activation == "leaky_relu":
        return lambda: nn.LeakyReLU(config.leaky_slope)
    if config.activation not in TORCH_MODULES:
        raise ValueError(f"activation {config.activation!r} has no torch module here: use one of "
                         f"{', '.join(['leaky_relu', *TORCH_MODULES])}")
    return TORCH_MODULES[config.activation]


def _torch_mlp(config) -> Callable[[], nn.Module]:
    if (config.output_activation or config.activation) != "identity":
        raise ValueError("model 'mlp' has a linear output: use output_activation='identity'")
    act = _hidden_module(config)
    return lambda: mlp(config.layers, act)


# model name -> (Config -> make_model); the Config gives layers and activation, the model its
# own initialisation (mlp: PyTorch's default for nn.Linear; Config.init is not used)
TORCH_MODELS: dict[str, Callable] = {"mlp": _torch_mlp}


def model_maker(name: str, config) -> Callable[[], nn.Module]:
    """``make_model()`` of the registered model ``name`` built as ``config`` describes."""
    if name not in TORCH_MODELS:
        raise ValueError(f"unknown torch model {name!r}: use one of {', '.join(TORCH_MODELS)}")
    return TORCH_MODELS[name](config)


def optimizer_maker(config) -> Callable[[Iterable[Tensor]], torch.optim.Optimizer]:
    """``make_optimizer(params)`` for ``config.optimizer`` with the Config's hyperparameters."""
    c = config
    makers = {
        "sgd": lambda p: torch.optim.SGD(p, lr=c.lr),
        "momentum": lambda p: torch.optim.SGD(p, lr=c.lr, momentum=c.momentum),
        "nesterov": lambda p: torch.optim.SGD(p, lr=c.lr, momentum=c.momentum, nesterov=True),
        "adam": lambda p: torch.optim.Adam(p, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps),
        "rmsprop": lambda p: torch.optim.RMSprop(p, lr=c.lr, alpha=c.rms_decay, eps=c.eps),
    }
    if c.optimizer not in makers:
        raise ValueError(f"optimizer {c.optimizer!r} has no torch form: use one of "
                         f"{', '.join(makers)}")
    return makers[c.optimizer]


def run_config(name: str, config, data: Dataset | tuple, seeds, **kwargs) -> TorchResult:
    """``run_seeds`` on the registered model ``name``: epochs, batch, threshold, stuck_tol, dtype
    and the optimizer from ``config``; ``kwargs`` as ``run_seeds`` (loss_every, record, ...)."""
    return run_seeds(
        model_maker(name, config), optimizer_maker(config), data, seeds, config.epochs,
        batch=config.batch, threshold=config.threshold, stuck_tol=config.stuck_tol,
        dtype=getattr(torch, config.dtype), **kwargs,
    )
