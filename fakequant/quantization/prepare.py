"""prepare_qat: propagate qconfig, swap float layers (and torch.ao's fused containers, stubs and
FloatFunctional) for fakequant's QAT modules, and attach output fake quant where torch.ao would."""
import copy
import warnings

from torch import nn

from ..nn import qat as nnqat
from ..nn.intrinsic import fused as nni
from ..nn.intrinsic import qat as nniqat
from . import stubs
from .qconfig import to_fakequant_qconfig

__all__ = ["prepare_qat", "propagate_qconfig_", "get_default_qat_module_mappings", "swap_module"]


def get_default_qat_module_mappings():
    """Float module type -> QAT module type (torch's mapping, plus Conv1d / ConvReLU1d / ConvBn*1d)."""
    mapping = {nn.Linear: nnqat.Linear, nn.modules.linear.NonDynamicallyQuantizableLinear: nnqat.Linear,
               nn.Conv1d: nnqat.Conv1d, nn.Conv2d: nnqat.Conv2d, nn.Conv3d: nnqat.Conv3d}
    for name in ("ConvBn1d", "ConvBn2d", "ConvBn3d", "ConvBnReLU1d", "ConvBnReLU2d", "ConvBnReLU3d", "ConvReLU1d",
                 "ConvReLU2d", "ConvReLU3d", "LinearReLU", "LinearBn1d"):
        mapping[getattr(nni, name)] = getattr(nniqat, name)
    return mapping


# Leaf modules that get an output fake quant (through a forward hook) when they have a qconfig: torch.ao's
# default qconfig propagation list, less the types prepare_qat swaps for QAT modules, plus average pooling.
# torch.ao leaves average pools unobserved, so its int8 model rounds the pooled values to the input's grid,
# a step its QAT model never simulated; fakequant trains with that rounding and converts it exactly.
OBSERVED_LEAF_TYPES = frozenset((
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.ELU, nn.Hardswish, nn.LeakyReLU, nn.PReLU, nn.ReLU6, nn.BatchNorm2d, nn.BatchNorm3d, nn.ConvTranspose1d,
    nn.ConvTranspose2d, nn.ConvTranspose3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.GroupNorm,
    nn.LayerNorm, nn.GRU, nn.GRUCell, nn.LSTM, nn.LSTMCell, nn.RNNCell, nn.Embedding, nn.EmbeddingBag,
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))

# torch.ao modules replaced by fakequant's (recognised by qualified name; torch.ao is not imported).
_TORCH_REPLACEMENTS = {
    "torch.ao.quantization.stubs.QuantStub": stubs.QuantStub,
    "torch.ao.quantization.stubs.DeQuantStub": stubs.DeQuantStub,
    "torch.ao.quantization.stubs.QuantWrapper": stubs.QuantWrapper,
    "torch.ao.nn.quantized.modules.functional_modules.FloatFunctional": stubs.FloatFunctional,
}
# torch.ao namespaces that must not survive prepare_qat (QAT, fake-quant, observer, quantized modules).
_TORCH_QAT_PREFIXES = ("torch.ao.quantization", "torch.ao.nn.qat", "torch.ao.nn.intrinsic.qat",
                       "torch.ao.nn.quantized", "torch.ao.nn.quantizable")


def _qualname(mod):
    return f"{type(mod).__module__}.{type(mod).__qualname__}"


def _torch_leftovers(model, allow_replaceable):
    return [f"{name or '<root>'} ({_qualname(m)})" for name, m in model.named_modules()
            if type(m).__module__.startswith(_TORCH_QAT_PREFIXES)
            and not (allow_replaceable and _qualname(m) in _TORCH_REPLACEMENTS)]


def propagate_qconfig_(module, qconfig_dict=None):
    """Sets `qconfig` on every submodule: its own, else qconfig_dict[type] or qconfig_dict[name], else the
    parent's; torch.ao qconfigs are translated to fakequant's."""
    qconfig_dict = qconfig_dict or {}

    def visit(mod, parent_qconfig, prefix):
        qconfig = qconfig_dict.get(type(mod), parent_qconfig)
        qconfig = qconfig_dict.get(prefix, qconfig)
        qconfig = to_fakequant_qconfig(getattr(mod, "qconfig", qconfig))
        mod.qconfig = qconfig
        for name, child in mod.named_children():
            visit(child, qconfig, f"{prefix}.{name}" if prefix else name)

    visit(module, None, "")


def _replace_torch_module(mod):
    """fakequant's class with mod's state: the torch.ao stubs, QuantWrapper and FloatFunctional keep all their
    state (children, hooks, qconfig, training flag) in the instance dict."""
    cls = _TORCH_REPLACEMENTS[_qualname(mod)]
    new = cls.__new__(cls)
    new.__dict__.update(mod.__dict__)
    new._modules = dict(mod._modules)
    if cls in (stubs.QuantStub, stubs.FloatFunctional) and "activation_post_process" not in new._modules:
        new.activation_post_process = nn.Identity()
    return new


def swap_module(mod, mapping):
    """mod's QAT version (on mod's device, with mod's forward hooks) when it has a qconfig and its type (or
    torch.ao fused type) is in mapping; else mod."""
    if getattr(mod, "qconfig", None) is None:
        return mod
    key = nni.fused_kind(mod) if nni.is_fused(mod) else type(mod)
    if key not in mapping:
        return mod
    new = mapping[key].from_float(mod)
    for hook in mod._forward_pre_hooks.values():
        new.register_forward_pre_hook(hook)
    for hook in mod._forward_hooks.values():
        new.register_forward_hook(hook)
    param = next(iter(mod.parameters()), None)
    return new if param is None else new.to(param.device)


def _swap(module, mapping):
    for name, child in list(module.named_children()):
        if not nni.is_fused(child):
            _swap(child, mapping)
        if _qualname(child) in _TORCH_REPLACEMENTS:
            new = _replace_torch_module(child)
        else:
            new = swap_module(child, mapping)
        if new is not child:
            setattr(module, name, new)


def _observer_forward_hook(module, inputs, output):
    """Output fake quant of a leaf module that has no slot for it in its forward."""
    return module.activation_post_process(output)


def _make_activation_fake_quant(qconfig, device):
    fake_quant = qconfig.activation()
    return fake_quant if device is None else fake_quant.to(device)


def _add_fake_quant(module, device):
    for child in module.children():
        qconfig = getattr(child, "qconfig", None)
        wanted = qconfig is not None and qconfig.activation is not None
        if isinstance(child, (nnqat.QATModule, stubs.QuantStub, stubs.FloatFunctional)):
            if wanted:
                child.activation_post_process = _make_activation_fake_quant(qconfig, device)
        elif nni.is_fused(child) or (type(child) in OBSERVED_LEAF_TYPES and not list(child.children())):
            if wanted:
                child.activation_post_process = _make_activation_fake_quant(qconfig, device)
                child.register_forward_hook(_observer_forward_hook, prepend=True)
        else:
            _add_fake_quant(child, device)


def prepare_qat(model, mapping=None, inplace=False):
    """The QAT model: qconfig propagated from model.qconfig (fakequant's or torch.ao's), float layers swapped
    for QAT modules (weight fake quant, BN folding), output fake quant after every QAT module, QuantStub,
    FloatFunctional op and observed leaf (BatchNorm, ReLU6, ...). Accepts models fused by torch.ao and
    torch.ao's QuantStub / DeQuantStub / FloatFunctional; none of torch.ao's modules remain afterwards.

    mapping: float type -> QAT type (default get_default_qat_module_mappings()); the model must be in
    training mode. Returns the prepared model (a deep copy unless inplace)."""
    if not model.training:
        raise ValueError("prepare_qat needs a model in training mode: call model.train() first")
    leftovers = _torch_leftovers(model, allow_replaceable=True)
    if leftovers:
        raise ValueError("prepare_qat needs a float model; these torch.ao QAT / fake-quant / quantized modules "
                         f"are already in it: {', '.join(leftovers)}")
    if not inplace:
        model = copy.deepcopy(model)
    if _qualname(model) in _TORCH_REPLACEMENTS:
        model = _replace_torch_module(model)
    mapping = get_default_qat_module_mappings() if mapping is None else mapping
    propagate_qconfig_(model)
    if all(m.qconfig is None for m in model.modules()):
        warnings.warn("prepare_qat: no module has a qconfig (set model.qconfig, e.g. to "
                      "get_default_qat_qconfig('x86')); the model is left float", stacklevel=2)
    _swap(model, mapping)
    param = next(iter(model.parameters()), None)
    _add_fake_quant(model, None if param is None else param.device)
    leftovers = _torch_leftovers(model, allow_replaceable=False)
    if leftovers:
        raise RuntimeError(f"torch.ao modules left after prepare_qat: {', '.join(leftovers)}")
    return model
