"""zslkit.ops."""
