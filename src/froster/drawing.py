"""What every picture froster draws shares (charts, timelines, attention grids)."""

from __future__ import annotations

from PIL import ImageFont


def default_font(size: int):
    """Pillow's default font at `size` pixels (one small bitmap font before Pillow 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()
