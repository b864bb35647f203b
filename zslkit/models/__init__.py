"""zslkit.models."""
