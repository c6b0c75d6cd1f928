"""Runnable examples of the fakequant QAT workflow (python -m fakequant.examples.qat)."""
