"""TimePix geometry: the one home of the detector's pixel grid and its PADME-frame mapping.

Facts file sections 1/7: 2 rows x 6 Timepix3 chips of 256 x 256 pixels of 55 um, about
85.4 x 28.5 mm^2. The gaps between chips are not documented; the defaults make the published
outline: gap_x = (85.4 - 6 * 14.08) / 5 = 0.184 mm, gap_y = 28.5 - 2 * 14.08 = 0.34 mm.
Orientation relative to the PADME frame (``flip_x``/``flip_y``) and the detector centre
(``offset_x_mm``/``offset_y_mm``) are named parameters.

Chip numbering: ``chip = row * n_chip_cols + col``; row 0 / col 0 / pixel 0 at the lowest
(unflipped) y / x. A hit is ``(chip, x, y, count)`` with chip-local pixel indices. The global
image (what Serval's ``jsonimage`` preview sends, :mod:`.jsonimage`) is ``image[gy, gx]`` of
shape :attr:`TimepixGeometry.shape`, gaps not represented (Serval's "Original" layout).
Other layers take their spot grid from here (:meth:`TimepixGeometry.pixel_to_mm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TimepixGeometry:
    """Pixel -> PADME-frame millimetres for the 2 x 6 chip array."""

    n_chip_rows: int = 2
    n_chip_cols: int = 6
    chip_pixels: int = 256
    pixel_mm: float = 0.055
    gap_x_mm: float = 0.184
    gap_y_mm: float = 0.34
    flip_x: bool = False
    flip_y: bool = False
    offset_x_mm: float = 0.0
    offset_y_mm: float = 0.0

    @property
    def chip_mm(self) -> float:
        return self.chip_pixels * self.pixel_mm

    @property
    def width_mm(self) -> float:
        return self.n_chip_cols * self.chip_mm + (self.n_chip_cols - 1) * self.gap_x_mm

    @property
    def height_mm(self) -> float:
        return self.n_chip_rows * self.chip_mm + (self.n_chip_rows - 1) * self.gap_y_mm

    @property
    def n_chips(self) -> int:
        return self.n_chip_rows * self.n_chip_cols

    @property
    def shape(self) -> tuple[int, int]:
        """Global pixel image shape (rows of pixels, columns of pixels)."""
        return (self.n_chip_rows * self.chip_pixels, self.n_chip_cols * self.chip_pixels)

    def global_pixel(
        self, chip: np.ndarray, px: np.ndarray, py: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Chip-local -> global pixel indices (gx, gy), gaps ignored."""
        chip = np.asarray(chip, dtype=np.int64)
        row, col = np.divmod(chip, self.n_chip_cols)
        return col * self.chip_pixels + np.asarray(px), row * self.chip_pixels + np.asarray(py)

    def pixel_to_mm(
        self, chip: np.ndarray, px: np.ndarray, py: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pixel centres in mm in the PADME frame (origin at the detector centre + offset)."""
        chip = np.asarray(chip, dtype=np.int64)
        row, col = np.divmod(chip, self.n_chip_cols)
        x = col * (self.chip_mm + self.gap_x_mm) + (np.asarray(px) + 0.5) * self.pixel_mm
        y = row * (self.chip_mm + self.gap_y_mm) + (np.asarray(py) + 0.5) * self.pixel_mm
        x = x - self.width_mm / 2
        y = y - self.height_mm / 2
        if self.flip_x:
            x = -x
        if self.flip_y:
            y = -y
        return x + self.offset_x_mm, y + self.offset_y_mm

    def mm_to_pixel(
        self, x_mm: np.ndarray, y_mm: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Inverse of :meth:`pixel_to_mm`: ``(chip, px, py, inside)``; ``inside`` is False
        for points in a gap or off the detector (their chip/pixel values are meaningless)."""
        x = np.asarray(x_mm, dtype=float) - self.offset_x_mm
        y = np.asarray(y_mm, dtype=float) - self.offset_y_mm
        if self.flip_x:
            x = -x
        if self.flip_y:
            y = -y
        x = x + self.width_mm / 2
        y = y + self.height_mm / 2
        pitch_x, pitch_y = self.chip_mm + self.gap_x_mm, self.chip_mm + self.gap_y_mm
        col = np.floor(x / pitch_x).astype(np.int64)
        row = np.floor(y / pitch_y).astype(np.int64)
        px = np.floor((x - col * pitch_x) / self.pixel_mm).astype(np.int64)
        py = np.floor((y - row * pitch_y) / self.pixel_mm).astype(np.int64)
        inside = (
            (col >= 0)
            & (col < self.n_chip_cols)
            & (row >= 0)
            & (row < self.n_chip_rows)
            & (px >= 0)
            & (px < self.chip_pixels)
            & (py >= 0)
            & (py < self.chip_pixels)
        )
        return row * self.n_chip_cols + col, px, py, inside

    def image_from_hits(
        self, chip: np.ndarray, px: np.ndarray, py: np.ndarray, count: np.ndarray
    ) -> np.ndarray:
        """Summed counts as the global image ``image[gy, gx]`` (int32: 3 MB for the 2 x 6
        array, allocated once per frame); off-chip hits dropped."""
        chip, px, py = (np.asarray(a, dtype=np.int64) for a in (chip, px, py))
        count = np.asarray(count, dtype=np.int64)
        ok = (chip >= 0) & (chip < self.n_chips) & (px >= 0) & (px < self.chip_pixels)
        ok &= (py >= 0) & (py < self.chip_pixels)
        gx, gy = self.global_pixel(chip[ok], px[ok], py[ok])
        ny, nx = self.shape
        image = np.zeros(ny * nx, dtype=np.int32)
        np.add.at(image, gy * nx + gx, count[ok].astype(np.int32))
        return image.reshape(ny, nx)

    def hits_from_image(
        self, image: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Inverse of :meth:`image_from_hits`: ``(chip, px, py, count)`` of the non-zero pixels."""
        image = np.asarray(image)
        if image.shape != self.shape:
            raise ValueError(f"image shape {image.shape} is not the detector's {self.shape}")
        gy, gx = np.nonzero(image)
        count = image[gy, gx].astype(np.int64)
        col, px = np.divmod(gx, self.chip_pixels)
        row, py = np.divmod(gy, self.chip_pixels)
        return row * self.n_chip_cols + col, px, py, count

    def as_layout(self) -> dict[str, Any]:
        """The ``/detector/layout`` document the simulator serves for this geometry."""
        return {
            "Original": {"Width": self.shape[1], "Height": self.shape[0]},
            "Rotated": {"Width": self.shape[1], "Height": self.shape[0]},
            "Chips": [
                {"Index": c, "Row": c // self.n_chip_cols, "Col": c % self.n_chip_cols}
                for c in range(self.n_chips)
            ],
            "PixelSizeMm": self.pixel_mm,
            "GapXMm": self.gap_x_mm,
            "GapYMm": self.gap_y_mm,
        }
