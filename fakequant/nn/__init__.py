"""fakequant.nn — QAT modules (nn.qat), fused containers and fused QAT modules (nn.intrinsic), int8 modules (nn.quantized)."""
