"""`neighbor` (VCLIP, from Open-VCLIP; FROSTER's default): every attention layer lets the
queries of frame t attend to the keys and values of frames t+1, t-1 and t. No new
parameters. `neighbor_padding="zeros"` keeps the reference's all-zero keys/values for a
missing neighbour at the clip ends (they take part in the softmax); "masked" masks them."""

from functools import partial

from ..temporal import neighbor_attention, residual_block
from .base import Backbone


class Neighbor(Backbone):
    name = "neighbor"
    starts_as_clip = False  # frames see their neighbours from the start

    def __init__(self, neighbor_padding: str = "zeros"):
        super().__init__(neighbor_padding)
        neighbor_attention(2, neighbor_padding)  # validates the padding name early

    def step(self, frames, kernel):
        return partial(residual_block,
                       attend=neighbor_attention(frames, self.neighbor_padding, kernel))


BACKBONE = Neighbor
