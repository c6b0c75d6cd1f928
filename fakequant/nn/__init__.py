"""fakequant.nn — modules: int8 inference modules in fakequant.nn.quantized."""
