"""Models assembled from registered parts. Importing this package registers ``msdn``, ``dazle``, ``apn``, ``gem_zsl``, ``transzero``, ``transzero_pp``,
``zslvit``, ``psvma`` and ``svip``, and the converters of the authors' checkpoints (kind ``converter``: ``msdn``, ``apn``, ``gem_zsl``,
``transzero``, ``transzero_pp``, ``zslvit``, ``psvma``, ``svip``; one module beside each model, e.g. :mod:`zslkit.models.apn_official`).

:class:`BackboneModel` puts an image backbone in front of one of them for end-to-end fine-tuning;
:class:`TokenAttentionModel` is the base of models that own a ViT backbone, with adapters inside it.
"""

from zslkit.models.apn import APN
from zslkit.models.attention_model import AttentionZSLModel
from zslkit.models.backbone_model import BackboneModel
from zslkit.models.class_space import ClassSpace
from zslkit.models.dazle import DAZLE
from zslkit.models.gem_zsl import GEMZSL
from zslkit.models.msdn import MSDN
from zslkit.models.output import ModelOutput
from zslkit.models.parts import Part, parse_parts
from zslkit.models.psvma import PSVMA
from zslkit.models.svip import SVIP
from zslkit.models.token_model import TokenAttentionModel
from zslkit.models.transzero import TransZero, TransZeroPP
from zslkit.models.zslvit import ZSLViT

# the converters register themselves (kind "converter"); imported after the models they build
from zslkit.models import apn_official, gem_zsl_official, msdn_official, psvma_official, svip_official, transzero_official, zslvit_official  # noqa: E402,F401  isort: skip

__all__ = ["APN", "DAZLE", "GEMZSL", "MSDN", "PSVMA", "SVIP", "AttentionZSLModel", "BackboneModel", "ClassSpace", "ModelOutput", "Part", "TokenAttentionModel", "TransZero", "TransZeroPP", "ZSLViT", "parse_parts"]
