"""Text prompts: the 28 templates plus the bare description, class texts, and token banks.

A class text is either a plain name ("abseiling") or "Name: description" as in FROSTER's
rephrased class files. A templated prompt is ``template.format(Name) + " " + text``; the
bare prompt is the text itself. As in the reference, the text is appended to a templated
prompt for a plain name as well ("a photo of a person abseiling. abseiling"): a model
trained by the reference expects it. ``clean=True`` leaves it off for plain names ("a photo
of a person abseiling."); prompts with a description are the same in both forms.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from .errors import FrosterError

PREFIXES = ("a photo of", "a video of", "a example of", "a demonstration of")
PHRASES = ("{}", "a person {}", "a person using {}", "a person doing {}", "a person during {}",
           "a person performing {}", "a person practicing {}")
#: The 28 templates of the reference, each ending with a full stop.
TEMPLATES = tuple(f"{prefix} {phrase}." for prefix in PREFIXES for phrase in PHRASES)
#: The 29th prompt: the class text alone.
BARE = "{}"
#: Index of the bare prompt in ALL_PROMPTS.
BARE_INDEX = len(TEMPLATES)
ALL_PROMPTS = TEMPLATES + (BARE,)


@dataclass(frozen=True)
class ClassText:
    name: str
    text: str  # "Name: description", or the name alone when there is no description

    @classmethod
    def parse(cls, raw: str) -> "ClassText":
        raw = " ".join(str(raw).split())
        if not raw:
            raise ValueError("empty class name")
        name, sep, description = raw.partition(":")
        if sep and name.strip() and description.strip():
            return cls(name=name.strip(), text=raw)
        return cls(name=raw, text=raw)

    @property
    def has_description(self) -> bool:
        return self.text != self.name


def make_prompt(template: str, cls: ClassText, clean: bool = False) -> str:
    """One prompt: the reference's form by default; `clean` drops the repeated plain name."""
    if template == BARE:
        return cls.text
    prompt = template.format(cls.name)
    if clean and not cls.has_description:
        return prompt
    return f"{prompt} {cls.text}"


def read_templates(path) -> tuple[str, ...]:
    """Prompt templates from a text file, one per line with `{}` where the class name goes.

    A line that is just `{}` is the bare prompt (the class text alone); blank lines and
    lines starting with `#` are skipped. Training draws one template per step.
    """
    from pathlib import Path

    templates = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.count("{}") != 1 or line.replace("{}", "").count("{") or line.replace("{}", "").count("}"):
            raise FrosterError(f"{path}:{number}: a template needs exactly one '{{}}' where the class "
                               f"name goes (and no other braces), got {line!r}")
        templates.append(line)
    if not templates:
        raise FrosterError(f"{path}: no templates (one per line, with '{{}}' for the class name)")
    return tuple(templates)


def draw_template(rng: random.Random) -> int:
    """Training draws one of the 28 templates uniformly (the bare prompt is always added)."""
    return rng.randrange(len(TEMPLATES))


class PromptBank:
    """The prompts of one class set, tokenised once per template and kept.

    `templates` defaults to the 29 prompts of the reference; users may give their own.
    `clean` gives plain names the clean prompts (see `make_prompt`).
    """

    def __init__(self, class_texts, tokenizer, templates=ALL_PROMPTS, clean: bool = False):
        self.classes = [c if isinstance(c, ClassText) else ClassText.parse(c) for c in class_texts]
        if not self.classes:
            raise ValueError("a prompt bank needs at least one class")
        self.templates = tuple(templates)
        self.clean = clean
        self.tokenizer = tokenizer
        self._tokens: dict[int, torch.Tensor] = {}
        self.key = (tuple(c.text for c in self.classes), clean)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def prompts(self, template_index: int) -> list[str]:
        return [make_prompt(self.templates[template_index], c, self.clean) for c in self.classes]

    def tokens(self, template_index: int) -> torch.Tensor:
        """(C, L) token ids of every class under one template."""
        if template_index not in self._tokens:
            self._tokens[template_index] = self.tokenizer(self.prompts(template_index))
        return self._tokens[template_index]

    def stacked(self, template_indices) -> torch.Tensor:
        """(C, P, L) tokens for the given templates."""
        return torch.stack([self.tokens(i) for i in template_indices], dim=1)

    def training_templates(self, rng: random.Random) -> tuple[int, int]:
        """One drawn template plus the bare prompt, as the reference trains."""
        if self.templates != ALL_PROMPTS:
            return (rng.randrange(len(self.templates)),)
        return (draw_template(rng), BARE_INDEX)

    def training_template_sets(self) -> list[tuple[int, ...]]:
        """Every template set `training_templates` can draw."""
        if self.templates != ALL_PROMPTS:
            return [(i,) for i in range(len(self.templates))]
        return [(i, BARE_INDEX) for i in range(len(TEMPLATES))]

    def all_templates(self) -> tuple[int, ...]:
        return tuple(range(len(self.templates)))
