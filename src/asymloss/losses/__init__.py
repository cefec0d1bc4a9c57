"""Loss functions (filled in by the losses work)."""
__all__: list[str] = []
