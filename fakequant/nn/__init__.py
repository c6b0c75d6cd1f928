"""fakequant.nn — QAT modules (nn.qat), fused float containers and fused QAT modules (nn.intrinsic)."""
