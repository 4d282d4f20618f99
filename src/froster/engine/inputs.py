"""Checking a run's input files up front, with errors that name the path and what is expected."""

from __future__ import annotations

from pathlib import Path

from ..data import read_class_names
from ..errors import FrosterError, MissingFileError
from ..prompts import ALL_PROMPTS, PromptBank, read_templates


def require_file(path: str, key: str, expected: str) -> Path:
    if not path:
        raise FrosterError(f"{key} is not set: give {key}=<{expected}> (in the config or on the "
                           "command line)")
    if not Path(path).is_file():
        raise MissingFileError(f"{key}: {path} not found; expected {expected}")
    return Path(path)


def require_data_root(data_root: str, list_file: str) -> None:
    if data_root and not Path(data_root).is_dir():
        raise MissingFileError(f"data_root: {data_root} is not a folder; it should be the folder "
                               f"the video paths in {list_file} are relative to")


def class_bank(class_file: str, key: str, tokenizer, templates_file: str = "",
               clean: bool = False) -> PromptBank:
    """The prompts of a class file, under the reference's 29 prompts or `templates_file`'s
    (`clean`: clean prompts for plain class names)."""
    path = require_file(class_file, key, "a class file (JSON {\"0\": \"Name: description\"}, "
                                         "CSV index,name, or one name per line)")
    templates = ALL_PROMPTS
    if templates_file:
        templates = read_templates(require_file(templates_file, "templates",
                                                "a text file with one prompt template per line"))
    return PromptBank(read_class_names(path), tokenizer, templates, clean)


def list_file(path: str, key: str) -> Path:
    return require_file(path, key, "a video list with 'relative/path.mp4,label' lines")
