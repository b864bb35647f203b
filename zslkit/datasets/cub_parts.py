"""CUB-200-2011 part annotations: ``parts.txt``, ``part_locs.txt``, ``bounding_boxes.txt``, ``images.txt``.

As distributed with the dataset (in ``CUB_200_2011/`` and ``CUB_200_2011/parts/``):

``parts.txt``           ``<part id> <part name>``: the 15 parts (back, beak, ..., throat)
``part_locs.txt``       ``<image id> <part id> <x> <y> <visible>``: one line per image and part,
                        pixel coordinates in the original image; ``visible`` 0 or 1
``bounding_boxes.txt``  ``<image id> <x> <y> <width> <height>``: the bird's box
``images.txt``          ``<image id> <relative path>``: which image an id is

All ids are 1-based. The image ids follow ``images.txt``, which is **not** the order of
xlsa17's ``image_files`` (those are sorted by path: id 1 is
``Black_Footed_Albatross_0046_18.jpg``, xlsa17's first image is ``..._0001_796111.jpg``).
Both orders group the images by class folder, so a class check cannot tell them apart:
matching annotations to xlsa17 images (:func:`load_cub_parts` with ``image_files``)
therefore needs ``images.txt`` and refuses to guess without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zslkit.datasets.attribute_groups import attribute_group
from zslkit.datasets.checks import file_error, require_file
from zslkit.datasets.container import DatasetError
from zslkit.datasets.image_folder import relative_image_path

__all__ = [
    "APN_CUB_PARTS",
    "APN_PART_KEYPOINTS",
    "CUB_PARTS",
    "BIRD_BOX",
    "MAPPINGS",
    "CUB_GROUP_TARGETS",
    "CUBParts",
    "attribute_group",
    "cub_attribute_targets",
    "load_cub_parts",
    "read_bounding_boxes",
    "read_image_ids",
    "read_part_locations",
    "read_parts",
]

#: The 15 parts of ``parts.txt``, in id order (id = position + 1).
CUB_PARTS: tuple[str, ...] = (
    "back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg",
    "left wing", "nape", "right eye", "right leg", "right wing", "tail", "throat",
)


def _rows(path: Path, columns: int, what: str) -> list[list[str]]:
    """The non-empty lines of ``path`` split in ``columns`` fields (the last one keeps its spaces)."""
    path = require_file(path, what)
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=columns - 1)
        if len(fields) != columns:
            raise file_error(path, f"line {number}: expected {columns} fields, found {len(fields)} ({line.strip()!r})")
        rows.append(fields)
    if not rows:
        raise file_error(path, f"{what}: the file is empty")
    return rows


def _numbers(path: Path, columns: int, what: str) -> np.ndarray:
    rows = _rows(path, columns, what)
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        bad = next(i for i, r in enumerate(rows) if not all(_is_number(f) for f in r))
        raise file_error(path, f"{what}: row {bad + 1} is not numeric ({' '.join(rows[bad])!r})") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_ids(ids: np.ndarray, path: Path, what: str) -> np.ndarray:
    """1-based ids running 1, 2, ..., n (in any line order) -> 0-based ints."""
    if not np.all(ids == np.round(ids)):
        raise file_error(path, f"{what} ids must be integers")
    ids = ids.astype(np.int64)
    expected = np.arange(1, len(ids) + 1)
    if not np.array_equal(np.sort(ids), expected):
        missing = np.setdiff1d(expected, ids)
        detail = f"id {missing[0]} is missing" if missing.size else "an id appears twice"
        raise file_error(path, f"{what} ids must be 1..{len(ids)}, each once ({detail})")
    return ids - 1


def _names_by_id(path: Path, what: str, kind: str) -> list[str]:
    """The second column of an ``<id> <name>`` file (ids 1..N, each once), entry ``i`` for id ``i + 1``."""
    rows = _rows(path, 2, what)
    ids = _check_ids(np.array([float(r[0]) if _is_number(r[0]) else np.nan for r in rows]), path, kind)
    names = [""] * len(rows)
    for i, row in zip(ids, rows):
        names[i] = row[1].strip()
    return names


def read_parts(path: str | Path) -> list[str]:
    """Part names of ``parts.txt`` in id order."""
    return _names_by_id(Path(path), "CUB parts.txt", "part")


def read_bounding_boxes(path: str | Path) -> np.ndarray:
    """``(N, 4)`` float64 boxes ``x, y, width, height`` of ``bounding_boxes.txt``, row ``i`` for image id ``i + 1``."""
    path = Path(path)
    table = _numbers(path, 5, "CUB bounding_boxes.txt")
    ids = _check_ids(table[:, 0], path, "image")
    boxes = np.empty((len(ids), 4))
    boxes[ids] = table[:, 1:]
    if (boxes[:, 2:] <= 0).any():
        first = int(np.flatnonzero((boxes[:, 2:] <= 0).any(axis=1))[0])
        raise file_error(path, f"image id {first + 1}: box width and height must be positive, found {boxes[first, 2:].tolist()}")
    return boxes


def read_part_locations(path: str | Path, num_parts: int = len(CUB_PARTS)) -> np.ndarray:
    """``(N, P, 3)`` float64 ``x, y, visible`` of ``part_locs.txt``; ``[i, p]`` is image id ``i + 1``, part id ``p + 1``.

    Every image must have one line for each of the ``num_parts`` parts; ``visible`` is 0 or 1.
    """
    path = Path(path)
    table = _numbers(path, 5, "CUB part_locs.txt")
    if len(table) % num_parts:
        raise file_error(path, f"{len(table)} lines is not a multiple of the {num_parts} parts (one line per image and part)")
    image, part = table[:, 0].astype(np.int64) - 1, table[:, 1].astype(np.int64) - 1
    num_images = len(table) // num_parts
    if image.min() < 0 or image.max() >= num_images or part.min() < 0 or part.max() >= num_parts:
        raise file_error(path, f"ids out of range: image ids must be 1..{num_images}, part ids 1..{num_parts}")
    slot = image * num_parts + part
    if np.unique(slot).size != len(slot):
        first = np.flatnonzero(np.bincount(slot) > 1)[0]
        raise file_error(path, f"image id {first // num_parts + 1}, part id {first % num_parts + 1} appears twice")
    if not np.isin(table[:, 4], (0, 1)).all():
        raise file_error(path, "the visible column must hold 0 or 1")
    locations = np.empty((num_images * num_parts, 3))
    locations[slot] = table[:, 2:]
    return locations.reshape(num_images, num_parts, 3)


def read_image_ids(path: str | Path) -> list[str]:
    """The relative paths of ``images.txt`` (``001.Black_footed_Albatross/....jpg``), entry ``i`` for id ``i + 1``."""
    return _names_by_id(Path(path), "CUB images.txt", "image")


@dataclass
class CUBParts:
    """CUB part annotations, one row per image.

    Attributes:
        part_names: the ``P`` part names of ``parts.txt``.
        locations: ``(N, P, 3)`` ``x, y, visible`` in original-image pixels.
        boxes: ``(N, 4)`` bird boxes ``x, y, width, height``.
        image_files: the relative path of every row (from ``images.txt``), or ``None``
            when the rows are in CUB's id order and no ``images.txt`` was read.
    """

    part_names: list[str]
    locations: np.ndarray
    boxes: np.ndarray
    image_files: list[str] | None = None

    @property
    def num_images(self) -> int:
        return int(self.locations.shape[0])

    def take(self, rows: np.ndarray) -> CUBParts:
        """The annotations of ``rows``, in that order."""
        files = None if self.image_files is None else [self.image_files[int(r)] for r in rows]
        return CUBParts(self.part_names, self.locations[rows], self.boxes[rows], files)


def _annotation_file(folder: Path, name: str) -> Path:
    """``folder/name`` or ``folder/parts/name`` (the dataset keeps the part files in ``parts/``)."""
    for candidate in (folder / name, folder / "parts" / name):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{folder}: no {name} (looked in {folder} and {folder / 'parts'}); "
                       "give the CUB_200_2011 folder that holds the part annotations")


def _relative(path: str) -> str:
    """An xlsa17 path relative to its ``images/`` folder, or ``path`` itself when it is already relative to it."""
    try:
        return relative_image_path(path)
    except DatasetError:
        return str(path)


def load_cub_parts(folder: str | Path, image_files: Sequence[str] | None = None) -> CUBParts:
    """Read the part annotations of a ``CUB_200_2011`` folder (the part files may be in ``parts/``).

    With ``image_files`` (e.g. xlsa17's, in the dataset's image order), the rows are put
    in that order through ``images.txt``, which must then be in ``folder``; without it,
    the rows follow CUB's image ids.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{folder}: CUB folder not found (expected CUB_200_2011 with parts.txt, part_locs.txt, bounding_boxes.txt)")
    names = read_parts(_annotation_file(folder, "parts.txt"))
    locations = read_part_locations(_annotation_file(folder, "part_locs.txt"), len(names))
    boxes = read_bounding_boxes(_annotation_file(folder, "bounding_boxes.txt"))
    if len(boxes) != len(locations):
        raise DatasetError(f"{folder}: bounding_boxes.txt has {len(boxes)} images, part_locs.txt {len(locations)}")
    files = read_image_ids(folder / "images.txt") if (folder / "images.txt").is_file() else None
    if files is not None and len(files) != len(boxes):
        raise DatasetError(f"{folder}: images.txt has {len(files)} images, bounding_boxes.txt {len(boxes)}")
    parts = CUBParts(names, locations, boxes, files)
    if image_files is None:
        return parts
    if files is None:
        raise DatasetError(
            f"{folder}: no images.txt to match the part annotations to the dataset's image files; CUB's image ids "
            "are not in the sorted order of xlsa17's image_files, so rows cannot be matched by position"
        )
    row_of = {f: i for i, f in enumerate(files)}
    wanted = [_relative(f) for f in image_files]
    missing = [f for f in wanted if f not in row_of]
    if missing:
        raise DatasetError(f"{folder}: {len(missing)} of the dataset's {len(wanted)} images are not in images.txt (first: {missing[0]!r})")
    return parts.take(np.array([row_of[f] for f in wanted], dtype=np.int64))


# ------------------------------------------------------------------ attributes -> parts
#: The box target: a whole-bird attribute hits when its peak lies inside the bird's box.
BIRD_BOX = "bird box"
_WINGS, _LEGS, _EYES = ("left wing", "right wing"), ("left leg", "right leg"), ("left eye", "right eye")
_HEAD = ("beak", "crown", "forehead", "left eye", "right eye", "nape")  # APN's head keypoints

#: CUB attribute group (``has_<group>::<value>``) -> (target name, the parts it may hit).
#: A pair hits the target when the map's peak is near the *nearest visible* of its parts;
#: an empty part tuple is the bird's bounding box (:data:`BIRD_BOX`). Groups and choices:
#: upperparts = back, nape and wings; underparts = throat, breast and belly (the
#: field-guide regions); the head pattern = APN's six head keypoints; size, shape and
#: primary colour describe the whole bird and are judged against its box.
CUB_GROUP_TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bill_shape": ("beak", ("beak",)),
    "bill_length": ("beak", ("beak",)),
    "bill_color": ("beak", ("beak",)),
    "wing_color": ("wing", _WINGS),
    "wing_shape": ("wing", _WINGS),
    "wing_pattern": ("wing", _WINGS),
    "eye_color": ("eye", _EYES),
    "leg_color": ("leg", _LEGS),
    "head_pattern": ("head", _HEAD),
    "crown_color": ("crown", ("crown",)),
    "forehead_color": ("forehead", ("forehead",)),
    "nape_color": ("nape", ("nape",)),
    "throat_color": ("throat", ("throat",)),
    "breast_color": ("breast", ("breast",)),
    "breast_pattern": ("breast", ("breast",)),
    "belly_color": ("belly", ("belly",)),
    "belly_pattern": ("belly", ("belly",)),
    "back_color": ("back", ("back",)),
    "back_pattern": ("back", ("back",)),
    "tail_shape": ("tail", ("tail",)),
    "tail_pattern": ("tail", ("tail",)),
    "upper_tail_color": ("tail", ("tail",)),
    "under_tail_color": ("tail", ("tail",)),
    "upperparts_color": ("upperparts", ("back", "nape", *_WINGS)),
    "underparts_color": ("underparts", ("throat", "breast", "belly")),
    "size": (BIRD_BOX, ()),
    "shape": (BIRD_BOX, ()),
    "primary_color": (BIRD_BOX, ()),
}


#: APN's eight CUB parts (``wenjiaXu/APN-ZSL`` ``model/main.py``: the parts of its
#: ``attri_groups_8.json``, which is not in the repository) as unions of CUB's 28 attribute
#: groups: the bill, eye, crown, forehead and nape under ``head``; the throat under ``breast``;
#: the underparts with ``belly``, the upperparts with ``back``; the whole-bird ones in ``others``.
#: APN's localisation scores each part's attributes at its keypoints (:data:`APN_PART_KEYPOINTS`)
#: and leaves ``others`` out; its CUB group lasso runs over these parts.
APN_CUB_PARTS: dict[str, tuple[str, ...]] = {
    "head": ("bill_shape", "bill_length", "bill_color", "eye_color", "head_pattern", "crown_color", "forehead_color",
             "nape_color"),
    "breast": ("breast_color", "breast_pattern", "throat_color"),
    "belly": ("belly_color", "belly_pattern", "underparts_color"),
    "back": ("back_color", "back_pattern", "upperparts_color"),
    "wing": ("wing_color", "wing_shape", "wing_pattern"),
    "tail": ("tail_shape", "tail_pattern", "upper_tail_color", "under_tail_color"),
    "leg": ("leg_color",),
    "others": ("size", "shape", "primary_color"),
}
#: The keypoints of each of APN's parts (``model/CAM_utils.py`` ``get_IoU_Image``'s
#: ``attri_to_group_dict``, CUB's part ids 1-based there); ``others`` has none.
APN_PART_KEYPOINTS: dict[str, tuple[str, ...]] = {
    "head": _HEAD, "breast": ("breast", "throat"), "belly": ("belly",), "back": ("back",),
    "wing": _WINGS, "tail": ("tail",), "leg": _LEGS,
}
#: Attribute -> part mappings of :func:`cub_attribute_targets`: ``apn`` (APN's, above) and
#: ``field-guide`` (:data:`CUB_GROUP_TARGETS`).
MAPPINGS: tuple[str, ...] = ("apn", "field-guide")


def _apn_group_targets() -> dict[str, tuple[str, tuple[str, ...]] | None]:
    """:data:`APN_CUB_PARTS` as ``group -> (part, keypoints)``, ``None`` for the left-out ``others``."""
    return {group: (part, APN_PART_KEYPOINTS[part]) if part in APN_PART_KEYPOINTS else None
            for part, groups in APN_CUB_PARTS.items() for group in groups}


def cub_attribute_targets(
    attribute_names: Sequence[str], part_names: Sequence[str] = CUB_PARTS, *, exclude: Sequence[str] = (),
    mapping: str = "field-guide",
) -> list[tuple[str, tuple[int, ...]] | None]:
    """Per attribute: ``(target name, indices into part_names)``, or ``None``.

    ``mapping``: ``"field-guide"`` (:data:`CUB_GROUP_TARGETS`) or ``"apn"`` (APN's parts,
    :data:`APN_CUB_PARTS` at :data:`APN_PART_KEYPOINTS`; size, shape and primary colour left out).
    ``None`` marks attributes that are left out: those of the groups in ``exclude``
    (e.g. ``("size", "shape", "primary_color")`` to drop the whole-bird ones), and APN's
    ``others``. A name whose group is not a CUB group is an error naming it.
    """
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping must be one of {MAPPINGS}, got {mapping!r}")
    table = CUB_GROUP_TARGETS if mapping == "field-guide" else _apn_group_targets()
    index = {name: i for i, name in enumerate(part_names)}
    unknown_exclude = sorted(set(exclude) - set(CUB_GROUP_TARGETS))
    if unknown_exclude:
        raise ValueError(f"exclude names {unknown_exclude[0]!r}, not a CUB attribute group; groups: {', '.join(CUB_GROUP_TARGETS)}")
    targets: list[tuple[str, tuple[int, ...]] | None] = []
    for position, name in enumerate(attribute_names):
        group = attribute_group(name)
        if group not in CUB_GROUP_TARGETS:
            raise ValueError(f"attribute {position} {name!r} is not a CUB attribute has_<group>::<value> of a known group "
                             "(load the dataset with attribute_names=<CUB attributes.txt>)")
        if group in exclude or table[group] is None:
            targets.append(None)
            continue
        target, parts = table[group]
        absent = [p for p in parts if p not in index]
        if absent:
            raise ValueError(f"attribute {name!r} needs part {absent[0]!r}, which the part list {list(part_names)} lacks")
        targets.append((target, tuple(index[p] for p in parts)))
    return targets
