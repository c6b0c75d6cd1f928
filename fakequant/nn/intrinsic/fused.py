"""Fused float containers (conv+bn, conv+bn+relu, conv+relu, linear+relu, linear+bn, bn+relu) that
fuse_modules produces and prepare_qat swaps for QAT modules; torch's fused containers of the same names are
accepted wherever these are."""
from torch import nn

__all__ = ["ConvBn1d", "ConvBn2d", "ConvBn3d", "ConvBnReLU1d", "ConvBnReLU2d", "ConvBnReLU3d", "ConvReLU1d",
           "ConvReLU2d", "ConvReLU3d", "LinearReLU", "LinearBn1d", "BNReLU2d", "BNReLU3d", "FUSED_CLASSES"]

TORCH_FUSED_MODULE = "torch.ao.nn.intrinsic.modules.fused"


class _FusedModule(nn.Sequential):
    """A Sequential of the given module types, checked on construction."""

    _TYPES: tuple = ()

    def __init__(self, *mods):
        got = tuple(type(m) for m in mods)
        if got != self._TYPES:
            want = ", ".join(t.__name__ for t in self._TYPES)
            raise TypeError(f"{type(self).__name__} needs ({want}), got ({', '.join(t.__name__ for t in got)})")
        super().__init__(*mods)


def _fused(name, *types):
    return type(name, (_FusedModule,), {"_TYPES": types, "__doc__": f"Fused {' + '.join(t.__name__ for t in types)}.",
                                        "__module__": __name__})


ConvBn1d = _fused("ConvBn1d", nn.Conv1d, nn.BatchNorm1d)
ConvBn2d = _fused("ConvBn2d", nn.Conv2d, nn.BatchNorm2d)
ConvBn3d = _fused("ConvBn3d", nn.Conv3d, nn.BatchNorm3d)
ConvBnReLU1d = _fused("ConvBnReLU1d", nn.Conv1d, nn.BatchNorm1d, nn.ReLU)
ConvBnReLU2d = _fused("ConvBnReLU2d", nn.Conv2d, nn.BatchNorm2d, nn.ReLU)
ConvBnReLU3d = _fused("ConvBnReLU3d", nn.Conv3d, nn.BatchNorm3d, nn.ReLU)
ConvReLU1d = _fused("ConvReLU1d", nn.Conv1d, nn.ReLU)
ConvReLU2d = _fused("ConvReLU2d", nn.Conv2d, nn.ReLU)
ConvReLU3d = _fused("ConvReLU3d", nn.Conv3d, nn.ReLU)
LinearReLU = _fused("LinearReLU", nn.Linear, nn.ReLU)
LinearBn1d = _fused("LinearBn1d", nn.Linear, nn.BatchNorm1d)
BNReLU2d = _fused("BNReLU2d", nn.BatchNorm2d, nn.ReLU)
BNReLU3d = _fused("BNReLU3d", nn.BatchNorm3d, nn.ReLU)

FUSED_CLASSES = (ConvBn1d, ConvBn2d, ConvBn3d, ConvBnReLU1d, ConvBnReLU2d, ConvBnReLU3d, ConvReLU1d, ConvReLU2d,
                 ConvReLU3d, LinearReLU, LinearBn1d, BNReLU2d, BNReLU3d)


def is_fused(mod):
    """A fused float container: fakequant's or torch.ao's (recognised by name, torch.ao is not imported)."""
    return isinstance(mod, _FusedModule) or type(mod).__module__ == TORCH_FUSED_MODULE


def fused_kind(mod):
    """The fakequant fused class matching mod's type (its own, or torch's of the same name), else None."""
    if isinstance(mod, _FusedModule):
        return type(mod)
    if type(mod).__module__ == TORCH_FUSED_MODULE:
        return next((c for c in FUSED_CLASSES if c.__name__ == type(mod).__name__), None)
    return None
