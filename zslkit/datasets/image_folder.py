"""Image folders of CUB-200-2011, SUN attribute and AwA2, matched to xlsa17's ``image_files``.

xlsa17 lists images by absolute paths on its authors' machines, e.g.
``/BS/.../CUB_200_2011/images/001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg``
or ``/BS/.../Animals_with_Attributes2//JPEGImages/antelope/antelope_10001.jpg``.
Only the part after the last ``images/`` or ``JPEGImages/`` is kept
(:func:`relative_image_path`), and looked up under the user's dataset root:

* CUB: the ``CUB_200_2011`` folder (holding ``images/``), or ``images/`` itself;
* SUN: the folder holding ``images/`` (from ``SUNAttributeDB_images.tar.gz``), or ``images/``;
* AwA2: ``Animals_with_Attributes2`` (holding ``JPEGImages/``), or ``JPEGImages/``.

Images that cannot be found are reported (count and first few), never dropped:
the order of the list is the order of the labels, splits and features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zslkit.datasets.container import DatasetError

__all__ = ["IMAGE_ANCHORS", "ImageList", "MissingImagesError", "relative_image_path", "resolve_images"]

#: Folder names the xlsa17 paths are relative to.
IMAGE_ANCHORS: tuple[str, ...] = ("images", "JPEGImages")


class MissingImagesError(DatasetError):
    """Some listed images are not under the dataset root."""


def relative_image_path(path: str) -> str:
    """The part of an xlsa17 image path after its last ``images/`` or ``JPEGImages/`` folder.

    >>> relative_image_path("/BS/x/Animals_with_Attributes2//JPEGImages/antelope/antelope_10001.jpg")
    'antelope/antelope_10001.jpg'
    """
    parts = [p for p in str(path).replace("\\", "/").split("/") if p]
    anchors = [i for i, p in enumerate(parts[:-1]) if p in IMAGE_ANCHORS]
    if not anchors:
        raise DatasetError(f"image path {path!r} has no {' or '.join(a + '/' for a in IMAGE_ANCHORS)} folder to map it onto a dataset root")
    return "/".join(parts[anchors[-1] + 1 :])


def _anchor(path: str) -> str:
    parts = [p for p in str(path).replace("\\", "/").split("/") if p]
    return next(p for p in reversed(parts[:-1]) if p in IMAGE_ANCHORS)


@dataclass
class ImageList:
    """Images of an xlsa17 list resolved under a dataset root.

    Attributes:
        root: the folder the relative paths were joined to.
        relative: the relative path of every listed image, in list order.
        paths: the full path of every listed image, in list order (found or not).
        missing: positions (0-based, in list order) of the images not found.
    """

    root: Path
    relative: list[str]
    paths: list[Path]
    missing: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def missing_report(self, limit: int = 5) -> str:
        """One line: how many images are missing and which ones first ("" when none)."""
        if not self.missing:
            return ""
        first = ", ".join(str(self.paths[i]) for i in self.missing[:limit])
        more = ", ..." if len(self.missing) > limit else ""
        return f"{len(self.missing)} of {len(self.paths)} images not found under {self.root} (first: {first}{more})"

    def require_complete(self) -> ImageList:
        """``self``, or :class:`MissingImagesError` with :meth:`missing_report`."""
        if self.missing:
            raise MissingImagesError(self.missing_report())
        return self


def resolve_images(image_files: Sequence[str], root: str | Path, *, check: bool = True) -> ImageList:
    """Map xlsa17 ``image_files`` onto ``root``; with ``check``, record the ones that do not exist.

    ``root`` is the dataset folder holding ``images/`` or ``JPEGImages/`` (or that folder
    itself). Raises only for paths without such an anchor; missing files are recorded in
    :attr:`ImageList.missing` (call :meth:`ImageList.require_complete` to stop on them).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: image root directory not found")
    relative = [relative_image_path(f) for f in image_files]
    anchor = _anchor(image_files[0]) if len(image_files) else IMAGE_ANCHORS[0]
    base = root / anchor if (root / anchor).is_dir() else root
    paths = [base / r for r in relative]
    missing = [i for i, p in enumerate(paths) if not p.is_file()] if check else []
    return ImageList(root=base, relative=relative, paths=paths, missing=missing)
