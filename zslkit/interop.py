"""Import checkpoints of the authors' code into zslkit models: the ``load_official_*`` converters, re-exported.

Each model's converter lives beside the model and registers itself as a ``converter``
under the model's name (``zslkit list converter``; ``zslkit eval --official
--official-model NAME``):

=================  ===============================================  ===================================
converter          function                                         key table
=================  ===============================================  ===================================
``msdn``           :func:`load_official_msdn`                       :mod:`zslkit.models.msdn_official`
``apn``            :func:`load_official_apn`                        :mod:`zslkit.models.apn_official`
``gem_zsl``        :func:`load_official_gem_zsl`                    :mod:`zslkit.models.gem_zsl_official`
``transzero``      :func:`load_official_transzero`                  :mod:`zslkit.models.transzero_official`
``transzero_pp``   :func:`load_official_transzero_pp`               :mod:`zslkit.models.transzero_official`
``zslvit``         :func:`load_official_zslvit`                     :mod:`zslkit.models.zslvit_official`
=================  ===============================================  ===================================

This module keeps ``from zslkit.interop import load_official_msdn`` (and the others) working.
"""

from __future__ import annotations

from zslkit.models.apn_official import load_official_apn
from zslkit.models.gem_zsl_official import load_official_gem_zsl
from zslkit.models.msdn_official import OFFICIAL_MSDN_KEYS, load_official_msdn
from zslkit.models.official import read_state_dict
from zslkit.models.transzero_official import load_official_transzero, load_official_transzero_pp
from zslkit.models.zslvit_official import load_official_zslvit

__all__ = [
    "OFFICIAL_MSDN_KEYS",
    "load_official_apn",
    "load_official_gem_zsl",
    "load_official_msdn",
    "load_official_transzero",
    "load_official_transzero_pp",
    "load_official_zslvit",
    "read_state_dict",
]
