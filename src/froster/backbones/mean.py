"""`mean`: every frame encoded on its own by the CLIP ViT; the per-frame logits are
averaged over time (the fine-tuned CLIP baseline of the paper's Table 3). No new parameters."""

from .base import Backbone


class Mean(Backbone):
    name = "mean"
    needs_standard_vit = False  # any open_clip visual tower: encode_image per frame


BACKBONE = Mean
