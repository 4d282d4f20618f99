"""froster: open-vocabulary video action recognition with FROSTER."""

from .version import __version__

# The public API; torch and open_clip are imported on first use, so `import froster` stays light.
__all__ = ["__version__", "Recognizer", "load_model", "classify_video"]


def load_model(checkpoint=None, model=None, pretrained="openai", device=None, **options):
    """A `Recognizer` from a froster checkpoint folder, or from an open_clip model + tag/file.

    >>> rec = froster.load_model("runs/k400/average")            # fine-tuned student
    >>> rec = froster.load_model(model="ViT-B-16", pretrained="openai")  # plain CLIP
    """
    from .inference.api import Recognizer

    if (checkpoint is None) == (model is None):
        from .errors import FrosterError

        raise FrosterError("give either checkpoint= or model= (with pretrained=)")
    if checkpoint is not None:
        return Recognizer.from_checkpoint(checkpoint, device=device, **options)
    return Recognizer.from_pretrained(model, pretrained, device=device, **options)


def classify_video(video, labels, checkpoint=None, model=None, pretrained="openai", top_k=None,
                   device=None):
    """One-shot: ranked [(label, probability)] of one video (path or uint8 frames).
    Loads the model every call; keep a `load_model(...)` Recognizer for many videos."""
    return load_model(checkpoint, model, pretrained, device).classify(video, labels, top_k)


def __getattr__(name):
    if name == "Recognizer":
        from .inference.api import Recognizer
        return Recognizer
    raise AttributeError(f"module 'froster' has no attribute {name!r}")
