"""``torch.hub`` entry points of a zslkit checkout::

    model = torch.hub.load("path/to/zslkit", "from_pretrained", "path/to/model-folder", source="local")

``from_pretrained``: a model folder written by ``zslkit export`` or ``model.save_pretrained`` (docs/sharing.md).
"""

dependencies = ["torch", "timm", "einops", "safetensors"]

from zslkit import from_pretrained  # noqa: E402,F401  (torch.hub reads the module's callables)
