"""zslkit.losses."""
