"""The student's video backbones, one file each, looked up by name (as open_clip's model
configs and timm's registry are): `VideoCLIP(clip, temporal=NAME)` and the config's
`temporal` key take any name of `names()`.

A backbone says how the visual tower runs a clip of T frames (each residual block, and an
optional post-network over the frame embeddings) and which modules it adds to the CLIP.
Added modules live inside the CLIP under the reference's own attribute names, so the
student's weights are `clip.state_dict()` whatever the backbone, and a reference
checkpoint's keys map by prefix.

This file imports no torch, so the command line can list the names cheaply; a variant's
module is imported when it is first asked for. A new variant is one file with a
`Backbone` subclass named `BACKBONE` and one line here.
"""

from __future__ import annotations

from ..registry import Registry

#: name -> the `BACKBONE` class of a module of this package; the order is the docs' order.
BACKBONES = Registry("temporal", __name__, {
    "neighbor": "neighbor:BACKBONE",        # VCLIP neighbour-frame attention (the paper's default)
    "mean": "mean:BACKBONE",                # frames encoded independently (fine-tuned CLIP)
    "aim": "aim:BACKBONE",                  # AIM: temporal, spatial and MLP adapters
    "st_adapter": "st_adapter:BACKBONE",    # ST-Adapter: depthwise temporal convolution before attention
    "adaptformer": "adaptformer:BACKBONE",  # AdaptFormer: a parallel MLP adapter
    "actionclip": "actionclip:BACKBONE",    # ActionCLIP: a temporal transformer over frame embeddings
})
names = BACKBONES.names
get = BACKBONES.get  # the backbone class registered under a name
