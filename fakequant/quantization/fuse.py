"""fuse_modules / fuse_modules_qat: replace conv+bn(+relu), conv+relu, linear+relu, linear+bn, bn+relu by one
fused module (fakequant.nn.intrinsic) followed by nn.Identity placeholders, as torch.ao does."""
import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from ..nn.intrinsic import fused as nni

__all__ = ["fuse_modules", "fuse_modules_qat", "fuse_known_modules", "get_fuser_method"]

_CONV_BN = {(nn.Conv1d, nn.BatchNorm1d): 1, (nn.Conv2d, nn.BatchNorm2d): 2, (nn.Conv3d, nn.BatchNorm3d): 3}
_CONV_BN_QAT = {1: nni.ConvBn1d, 2: nni.ConvBn2d, 3: nni.ConvBn3d}
_CONV_BN_RELU_QAT = {1: nni.ConvBnReLU1d, 2: nni.ConvBnReLU2d, 3: nni.ConvBnReLU3d}
_CONV_RELU = {nn.Conv1d: nni.ConvReLU1d, nn.Conv2d: nni.ConvReLU2d, nn.Conv3d: nni.ConvReLU3d}


def _check_same_mode(mods):
    if len({m.training for m in mods}) != 1:
        raise ValueError(f"modules to fuse must all be in the same mode (train or eval): "
                         f"{[type(m).__name__ for m in mods]}")


def _check_eval(mods):
    if any(m.training for m in mods):
        raise ValueError("fuse_modules folds BatchNorm into the weights and needs eval mode (model.eval()); "
                         "use fuse_modules_qat to fuse for QAT")


def _check_bn(bn, features):
    if bn.num_features != features:
        raise ValueError(f"BatchNorm num_features ({bn.num_features}) must equal the layer's outputs ({features})")
    if not (bn.affine and bn.track_running_stats):
        raise ValueError("only BatchNorm with affine=True and track_running_stats=True can be fused")


def fuse_conv_bn(is_qat, conv, bn):
    """QAT: a ConvBn container (BN folded during training); otherwise the eval-mode conv with BN folded in."""
    _check_same_mode((conv, bn))
    if is_qat:
        _check_bn(bn, conv.out_channels)
        return _CONV_BN_QAT[_CONV_BN[(type(conv), type(bn))]](conv, bn)
    _check_eval((conv, bn))
    return fuse_conv_bn_eval(conv, bn)


def fuse_conv_bn_relu(is_qat, conv, bn, relu):
    _check_same_mode((conv, bn, relu))
    if is_qat:
        _check_bn(bn, conv.out_channels)
        return _CONV_BN_RELU_QAT[_CONV_BN[(type(conv), type(bn))]](conv, bn, relu)
    _check_eval((conv, bn))
    return _CONV_RELU[type(conv)](fuse_conv_bn_eval(conv, bn), relu)


def fuse_linear_bn(is_qat, linear, bn):
    _check_same_mode((linear, bn))
    if is_qat:
        _check_bn(bn, linear.out_features)
        return nni.LinearBn1d(linear, bn)
    _check_eval((linear, bn))
    return fuse_linear_bn_eval(linear, bn)


def _sequential(fused_class):
    def fuse(is_qat, *mods):
        _check_same_mode(mods)
        return fused_class(*mods)
    return fuse


_FUSER_METHODS = {
    **{pair: fuse_conv_bn for pair in _CONV_BN},
    **{pair + (nn.ReLU,): fuse_conv_bn_relu for pair in _CONV_BN},
    **{(conv, nn.ReLU): _sequential(fused) for conv, fused in _CONV_RELU.items()},
    (nn.Linear, nn.BatchNorm1d): fuse_linear_bn,
    (nn.Linear, nn.ReLU): _sequential(nni.LinearReLU),
    (nn.BatchNorm2d, nn.ReLU): _sequential(nni.BNReLU2d),
    (nn.BatchNorm3d, nn.ReLU): _sequential(nni.BNReLU3d),
}


def get_fuser_method(op_list, additional_fuser_method_mapping=None):
    """The fuser for a tuple of module types, or None."""
    return {**_FUSER_METHODS, **(additional_fuser_method_mapping or {})}.get(tuple(op_list))


def fuse_known_modules(mod_list, is_qat, additional_fuser_method_mapping=None):
    """[fused, Identity, ...] for a known sequence; forward pre-hooks of the first module and forward hooks
    of the last move to the fused module."""
    types = tuple(type(m) for m in mod_list)
    fuser = get_fuser_method(types, additional_fuser_method_mapping)
    if fuser is None:
        raise NotImplementedError(f"cannot fuse modules {tuple(t.__name__ for t in types)}; supported: "
                                  f"{sorted(tuple(t.__name__ for t in k) for k in _FUSER_METHODS)}")
    fused = fuser(is_qat, *mod_list)
    for hook in mod_list[0]._forward_pre_hooks.values():
        fused.register_forward_pre_hook(hook)
    mod_list[0]._forward_pre_hooks.clear()
    for hook in mod_list[-1]._forward_hooks.values():
        fused.register_forward_hook(hook)
    mod_list[-1]._forward_hooks.clear()
    rest = []
    for _ in mod_list[1:]:
        identity = nn.Identity()
        identity.training = mod_list[0].training
        rest.append(identity)
    return [fused] + rest


def _fuse(model, modules_to_fuse, is_qat, inplace, fuser_func, fuse_custom_config_dict):
    if not inplace:
        model = copy.deepcopy(model)
    groups = [modules_to_fuse] if all(isinstance(m, str) for m in modules_to_fuse) else modules_to_fuse
    extra = (fuse_custom_config_dict or {}).get("additional_fuser_method_mapping", {})
    for names in groups:
        mods = [model.get_submodule(name) for name in names]
        for name, new in zip(names, fuser_func(mods, is_qat, extra)):
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf, new)
    return model


def fuse_modules(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules, fuse_custom_config_dict=None):
    """Fuse for post-training / inference (eval mode: BN folded into the conv / linear weights now).
    modules_to_fuse: a list of submodule names, or a list of such lists."""
    return _fuse(model, modules_to_fuse, False, inplace, fuser_func, fuse_custom_config_dict)


def fuse_modules_qat(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules,
                     fuse_custom_config_dict=None):
    """Fuse for QAT (train mode: conv + bn stays a ConvBn container, folded during training by prepare_qat's
    QAT module)."""
    return _fuse(model, modules_to_fuse, True, inplace, fuser_func, fuse_custom_config_dict)
