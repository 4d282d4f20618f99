"""Checkpoint files in other projects' layouts, built from a tiny open_clip CLIP with the
key names those projects use (see froster/interop/*.py for where each layout comes from)."""

from __future__ import annotations

import sys
import types

import torch
import yaml


def reference_cfg(temporal="expand_temporal_view", arch="vitb16", frames=8, distill=True) -> str:
    """A PySlowFast config dump (YAML string), as `cfg.dump()` writes it (abridged)."""
    return yaml.safe_dump({
        "DATA": {"NUM_FRAMES": frames, "SAMPLING_RATE": 16, "TARGET_FPS": 30},
        "MODEL": {"ARCH": arch, "MODEL_NAME": "TemporalClipVideo",
                  "TEMPORAL_MODELING_TYPE": temporal, "KEEP_RAW_MODEL": distill,
                  "RAW_MODEL_DISTILLATION": distill},
        "TEST": {"NUM_ENSEMBLE_VIEWS": 3, "NUM_SPATIAL_CROPS": 1},
        "TRAIN": {"LINEAR_CONNECT_CLIMB": not distill},
    })


def reference_model_state(clip, teacher=None, heads=True, ddp=False) -> dict:
    """TemporalClipVideo.state_dict(): model.* student, raw_model.* teacher, projector heads."""
    state = {f"model.{k}": v.clone() for k, v in clip.state_dict().items()}
    if teacher is not None:
        state.update({f"raw_model.{k}": v.clone() for k, v in teacher.state_dict().items()})
    if heads:
        dim = clip.text_projection.shape[1]
        torch.manual_seed(1)
        for head in ("projector_v", "projector_t"):
            state[f"{head}.0.weight"] = torch.randn(dim, dim)
            state[f"{head}.2.weight"] = torch.randn(dim, dim) * 0.01
    if ddp:
        state = {f"module.{k}": v for k, v in state.items()}
    return state


def reference_training_checkpoint(clip, cfg: str | None = None, **kwargs) -> dict:
    """checkpoint_epoch_000NN.pyth as slowfast/utils/checkpoint.py save_checkpoint writes it."""
    out = {"epoch": 11, "model_state": reference_model_state(clip, **kwargs),
           "optimizer_state": {"state": {}, "param_groups": [{"lr": 3.3e-6, "params": [0, 1]}]}}
    if cfg is not None:
        out["cfg"] = cfg
    return out


def swa_checkpoint(clip) -> dict:
    """swa_2_22.pth as the weight-averaging tool writes it: model.* CLIP keys only."""
    return {"model_state": {f"model.{k}": v.clone() for k, v in clip.state_dict().items()}}


def fake_yacs():
    """A stand-in `yacs.config.CfgNode` that pickles as the real one does (a dict subclass
    with its flags in __dict__), so test files carry the class name ViFi-CLIP's files carry."""
    if "yacs.config" in sys.modules:
        return sys.modules["yacs.config"].CfgNode

    class CfgNode(dict):
        def __init__(self, init=None, new_allowed=False):
            init = dict(init or {})
            for k, v in init.items():
                if isinstance(v, dict):
                    init[k] = CfgNode(v)
            super().__init__(init)
            self.__dict__["__immutable__"] = True
            self.__dict__["__deprecated_keys__"] = set()
            self.__dict__["__renamed_keys__"] = {}
            self.__dict__["__new_allowed__"] = new_allowed

    package, module = types.ModuleType("yacs"), types.ModuleType("yacs.config")
    CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"
    module.CfgNode = CfgNode
    package.config = module
    sys.modules.update({"yacs": package, "yacs.config": module})
    return CfgNode


def vificlip_checkpoint(clip, tokenizer, config=True, ddp=True, classes=("juggling", "abseiling")):
    """ckpt_epoch_N.pth as ViFi-CLIP's utils/tools.py epoch_saving writes it."""
    state = {}
    for k, v in clip.state_dict().items():
        if k.startswith("visual."):
            state["image_encoder." + k[len("visual."):]] = v.clone()
        elif k == "logit_scale":
            state[k] = v.clone()
        elif k != "token_embedding.weight":
            state["text_encoder." + k] = v.clone()
    tokens = tokenizer([f"a photo of a {c}." for c in classes])
    with torch.no_grad():
        state["prompt_learner.complete_text_embeddings"] = clip.token_embedding(tokens).clone()
    if ddp:
        state = {f"module.{k}": v for k, v in state.items()}
    out = {"model": state, "optimizer": {"state": {}, "param_groups": []},
           "lr_scheduler": {"t_initial": 10, "base_values": [8e-6]}, "max_accuracy": 61.0,
           "epoch": 9}
    if config:
        cfg_node = fake_yacs()
        out["config"] = cfg_node({"MODEL": {"ARCH": "ViT-B/16"},
                                  "DATA": {"NUM_FRAMES": 32, "INPUT_SIZE": 224},
                                  "TEST": {"NUM_CLIP": 1, "NUM_CROP": 1}})
    return out
