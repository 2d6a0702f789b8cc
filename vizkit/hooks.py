"""Scoped hooks and model changes: record activations and gradients, swap modules, patch the
ReLU backward rule, freeze a model. Every context manager puts the model back exactly, even on error."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .layers import ModelLike, as_net, get_layer, resolve_name

# fmt: off
__all__ = [
    "NON_RELU_ACTIVATIONS", "backward_rule", "count_hooks", "frozen", "LayerRef", "preserved", "record",
    "Recording", "relu_rule", "RuleReLU", "run_to", "swap_modules",
]
# fmt: on

LayerRef = str | nn.Module


class Recording:
    """What `record` saw: per layer, the output (and its gradient) of every call in the forward pass."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self._outputs: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        self._grads: dict[str, dict[int, torch.Tensor]] = {n: {} for n in names}

    def __getitem__(self, name: str) -> torch.Tensor:
        """The layer's output (still in the autograd graph when gradients were enabled)."""
        return self._outputs[name][self._single(name)]

    def grad(self, name: str) -> torch.Tensor:
        """Gradient of the last backward pass with respect to the layer's output."""
        call = self._single(name)
        if call not in self._grads[name]:
            raise RuntimeError(
                f"no gradient was recorded at {name!r}: call backward() inside the `with record(..., "
                "grads=True)` block, with gradients enabled (not under torch.no_grad()) and an input "
                "or parameters that require grad"
            )
        return self._grads[name][call]

    def calls(self, name: str) -> list[torch.Tensor]:
        """Outputs of every call of the layer in the forward pass, in order."""
        return list(self._outputs[name])

    def add(self, name: str, output: torch.Tensor) -> int:
        """Store one call's output of layer `name`; returns the call's number (0 for the first)."""
        self._outputs[name].append(output)
        return len(self._outputs[name]) - 1

    def clear(self) -> None:
        """Forget what was recorded (for a second forward pass in the same block)."""
        for name in self.names:
            self._outputs[name].clear()
            self._grads[name].clear()

    def _single(self, name: str) -> int:
        if name not in self._outputs:
            raise KeyError(f"{name!r} was not recorded; recorded layers: {self.names}")
        count = len(self._outputs[name])
        if count == 0:
            raise RuntimeError(
                f"layer {name!r} did not run: call the model inside the `with` block, "
                "and check that the layer is used by the model's forward pass"
            )
        if count > 1:
            raise RuntimeError(
                f"layer {name!r} ran {count} times in one forward pass (a module used twice, like the "
                "ReLU of torchvision's BasicBlock), so its output is ambiguous; record a layer that runs "
                "once (its parent block, for example) or read .calls(name)"
            )
        return 0


@contextmanager
def record(
    model: ModelLike, layers: LayerRef | Sequence[LayerRef], grads: bool = False
) -> Iterator[Recording]:
    """Record the outputs (and, with grads=True, their gradients) of `layers` while in the block.

    Each recorded output is the tensor the layer produced; the rest of the network gets a copy,
    so in-place operations that follow (an in-place ReLU after a conv) cannot alter what was
    recorded. Hooks are removed on exit, also on error.
    """
    net = as_net(model)
    layers = [layers] if isinstance(layers, (str, nn.Module)) else list(layers)
    names = [resolve_name(net, layer) for layer in layers]
    modules = [get_layer(net, name) for name in names]
    rec = Recording(names)
    handles = []
    try:
        for name, module in zip(names, modules):
            handles.append(module.register_forward_hook(_recorder(rec, name, grads)))
        yield rec
    finally:
        for handle in handles:
            handle.remove()


def _recorder(rec: Recording, name: str, grads: bool) -> Callable:
    def hook(module, inputs, output):
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"layer {name!r} returns {type(output).__name__}, not a tensor; "
                "record one of its submodules instead"
            )
        call = rec.add(name, output)
        if grads and output.requires_grad:

            def save(grad, call=call):
                rec._grads[name][call] = grad

            output.register_hook(save)
        return output.clone()  # downstream in-place ops modify the copy, never the recorded tensor

    return hook


@contextmanager
def swap_modules(
    model: ModelLike, replace: Callable[[str, nn.Module], nn.Module | None]
) -> Iterator[list[str]]:
    """Replace submodules while in the block: replace(name, module) returns a module or None (keep).

    A module registered in several places (used twice) gets one shared replacement, as before.
    Yields the names of the replaced places; every original is put back on exit, also on error.
    """
    net = as_net(model)
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    replacements: dict[int, nn.Module] = {}
    names = []
    try:
        for parent_name, parent in list(net.named_modules(remove_duplicate=False)):
            for attr, child in list(parent._modules.items()):
                if child is None:
                    continue
                name = f"{parent_name}.{attr}" if parent_name else attr
                if id(child) not in replacements:
                    new = replace(name, child)
                    if new is None:
                        continue
                    replacements[id(child)] = new
                swapped.append((parent, attr, child))
                parent._modules[attr] = replacements[id(child)]
                names.append(name)
        yield names
    finally:
        for parent, attr, child in reversed(swapped):
            parent._modules[attr] = child


def backward_rule(x: torch.Tensor, grad: torch.Tensor, rule: str, upper: float = 6.0) -> torch.Tensor:
    """What a ReLU-like unit y = clamp(x, 0, upper) sends back to x, given the gradient at y, under `rule`.

    x: the unit's input in the forward pass; rule: 'vanilla' (or 'backprop': the true derivative),
    'deconvnet' or 'guided'."""
    passed = (x > 0) & (x < upper)  # where the forward pass let the signal through
    if rule in ("vanilla", "backprop"):
        return grad * passed
    if rule == "deconvnet":
        return grad.clamp(min=0)
    if rule == "guided":
        return grad.clamp(min=0) * passed
    raise ValueError(f"unknown backward rule {rule!r}; use 'vanilla' ('backprop'), 'guided' or 'deconvnet'")


class _ClampWithRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, upper, rule):
        ctx.save_for_backward(x)
        ctx.upper, ctx.rule = upper, rule
        return x.clamp(0, upper)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return backward_rule(x, grad, ctx.rule, ctx.upper), None, None


class RuleReLU(nn.Module):
    """A ReLU (upper=inf) or ReLU6 (upper=6) whose backward pass follows `rule`; never in-place."""

    def __init__(self, upper: float, rule: str):
        super().__init__()
        self.upper, self.rule = upper, rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ClampWithRule.apply(x, self.upper, self.rule)

    def extra_repr(self) -> str:
        return f"upper={self.upper}, rule={self.rule!r}"


# Activations whose backward rule has no guided/deconvnet form here: swapping them would be silent.
NON_RELU_ACTIVATIONS = (
    nn.SiLU,
    nn.GELU,
    nn.Hardswish,
    nn.Mish,
    nn.ELU,
    nn.LeakyReLU,
    nn.PReLU,
    nn.SELU,
    nn.CELU,
    nn.Softplus,
)


def _relu_upper(module: nn.Module) -> float | None:
    """inf for a ReLU, 6 for a ReLU6 (or Hardtanh(0, 6)), None for anything else."""
    if isinstance(module, nn.ReLU):
        return float("inf")
    if isinstance(module, nn.Hardtanh) and module.min_val == 0:  # nn.ReLU6 is a Hardtanh(0, 6)
        return float(module.max_val)
    return None


@contextmanager
def relu_rule(model: ModelLike, rule: str) -> Iterator[list[str]]:
    """Give every ReLU/ReLU6 module the backward `rule` ('vanilla', 'guided', 'deconvnet') in the block.

    In-place activations become out-of-place copies, shared modules stay shared, and the originals
    return on exit. For 'guided' and 'deconvnet', raises if the model has other activations (SiLU,
    GELU, ...) or no ReLU modules at all (a functional F.relu in forward() cannot be patched by
    swapping modules); 'vanilla' is autograd's rule, so any network passes.
    Yields the names of the patched places.
    """
    backward_rule(torch.zeros(1), torch.zeros(1), rule, 1.0)  # validates `rule` up front
    net = as_net(model)
    others = [
        f"{type(m).__name__} at {name!r}"
        for name, m in net.named_modules()
        if isinstance(m, NON_RELU_ACTIVATIONS)
    ]
    if others and rule != "vanilla":  # 'vanilla' is autograd's own rule: any activation may stay
        raise ValueError(
            f"the {rule!r} rule is defined for ReLU-like units only; this model also has "
            f"{', '.join(others[:5])}{' ...' if len(others) > 5 else ''}"
        )

    def replace(name: str, module: nn.Module) -> nn.Module | None:
        upper = _relu_upper(module)
        return None if upper is None else RuleReLU(upper, rule)

    with swap_modules(net, replace) as names:
        if not names and rule != "vanilla":
            raise ValueError(
                "no nn.ReLU / nn.ReLU6 modules found: if forward() calls F.relu or "
                "torch.relu directly, module swapping cannot see it; use modules"
            )
        with _FunctionalReLUGuard(rule):
            yield names


class _FunctionalReLUGuard(TorchFunctionMode):
    """Raise when a functional ReLU runs while a backward rule is patched: it would keep its plain rule."""

    def __init__(self, rule: str):
        super().__init__()
        self.rule = rule
        self.flagged = {
            F.relu,
            F.relu_,
            torch.relu,
            torch.relu_,
            F.relu6,
            F.hardtanh,
            F.hardtanh_,
            torch.Tensor.relu,
            torch.Tensor.relu_,
        }

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.flagged:
            raise ValueError(
                f"{getattr(func, '__name__', func)} was called as a function inside "
                f"relu_rule({self.rule!r}): module swapping cannot patch a functional "
                "ReLU (F.relu in a forward()), so its backward rule would stay the plain "
                "one. Use nn.ReLU modules, or run this outside the relu_rule block."
            )
        return func(*args, **(kwargs or {}))


@contextmanager
def preserved(model: ModelLike) -> Iterator[nn.Module]:
    """Snapshot train/eval flags, requires_grad flags and .grad of every parameter; restore on exit."""
    net = as_net(model)
    modes = [(m, m.training) for m in net.modules()]
    params = [(p, p.requires_grad, None if p.grad is None else p.grad.clone()) for p in net.parameters()]
    try:
        yield net
    finally:
        for m, training in modes:
            m.training = training
        for p, requires_grad, grad in params:
            p.requires_grad_(requires_grad)
            p.grad = grad


@contextmanager
def frozen(model: ModelLike) -> Iterator[nn.Module]:
    """Eval mode, no parameter gradients and gradients enabled (even under torch.no_grad()) in the block.

    Use it to take gradients with respect to the input: the model comes back exactly as it was.
    """
    with preserved(model) as net, torch.enable_grad():
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        yield net


def count_hooks(model: ModelLike) -> int:
    """Number of forward/backward hooks registered on the model's modules (0 after vizkit is done)."""
    net = as_net(model)
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in net.modules()
    )


# ----------------------------------------------------------------------------------------------
# Running a network only as far as one layer.


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the wanted layer has run."""


@contextmanager
def _capture(net: nn.Module, name: str, inputs: bool = False) -> Iterator[list]:
    """While in the block, a forward pass stores every output (or input) of layer `name` and stops
    as soon as the layer's parent module has finished, so a module used twice is noticed."""
    calls: list = []
    module = get_layer(net, name)
    parent = get_layer(net, name.rsplit(".", 1)[0]) if "." in name else None

    def on_output(mod, args, output):
        calls.append(output)

    def on_input(mod, args):
        calls.append(args[0])

    def on_parent_done(mod, args, output):
        raise _Stop

    handles = [
        module.register_forward_pre_hook(on_input) if inputs else module.register_forward_hook(on_output)
    ]
    if parent is not None:
        handles.append(parent.register_forward_hook(on_parent_done))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def run_to(net: nn.Module, x: torch.Tensor, name: str, inputs: bool = False) -> torch.Tensor:
    """The output (or input) of layer `name` for x, running the network no further than needed (a
    module that runs more than once in the pass is refused)."""
    with _capture(net, name, inputs) as calls:
        try:
            net(x)
        except _Stop:
            pass
    if len(calls) != 1:
        raise RuntimeError(
            f"layer {name!r} ran {len(calls)} times in one forward pass; choose a layer "
            "that runs exactly once (for a module used twice, its parent block)"
        )
    return calls[0]
