"""zslkit.backbones."""
