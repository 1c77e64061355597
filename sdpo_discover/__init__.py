"""sdpo-discover: test-time discovery on hard programming problems with self-distillation (SDPO)."""

__version__ = "0.1.0"
