"""What every command of the `froster` command line shares: the help layout, the handling
of users' mistakes, and the inference options (model, labels, views, text, throughput),
so that a flag has one name and one meaning across predict, search, timeline, explain,
eval and serve. Each option's help names its config-key twin ("config: num_frames").

Torch-free: `froster --help` imports this for every command."""

from __future__ import annotations

import argparse

from .data.sampling import SAMPLINGS
from .data.views import DEFAULT_VIEW
from .errors import FrosterError
from .precisions import EVAL_PRECISIONS


class HelpFormatter(argparse.HelpFormatter):
    """A description with line breaks is kept as written (others are wrapped); each
    option's default is shown once, unless its help already says what the default is or
    there is none to show (None, False)."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, argparse.SUPPRESS)
                or action.option_strings == [] or isinstance(default, list) and not default):
            return text
        return f"{text} (default: %(default)s)"


def add_parser(subparsers, name: str, **kwargs) -> argparse.ArgumentParser:
    """A sub-command's parser with the shared help layout and `--debug`."""
    parser = subparsers.add_parser(name, formatter_class=HelpFormatter, **kwargs)
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of any error")
    return parser


# -- the model -----------------------------------------------------------------------------
CHECKPOINT_HELP = ("a froster checkpoint folder (model.safetensors + config.json), or a FROSTER "
                   "reference / Open-VCLIP / ViFi-CLIP checkpoint file as released "
                   "(e.g. swa_2_22.pth)")
TRUST_PICKLE_HELP = ("allow a checkpoint file that needs full unpickling (it could run code: "
                     "only for files from a source you trust)")


def model_options(parser: argparse.ArgumentParser) -> None:
    """--checkpoint or --model/--pretrained, and how the towers run."""
    group = parser.add_argument_group("model (one of --checkpoint or --model)")
    group.add_argument("--checkpoint", metavar="CKPT", help=CHECKPOINT_HELP)
    group.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    group.add_argument("--model", metavar="ARCH",
                       help="an open_clip architecture, e.g. ViT-B-16 (plain CLIP, no "
                            "fine-tuning; config: model)")
    group.add_argument("--pretrained", metavar="TAG_OR_FILE", default="openai",
                       help="open_clip tag or local weights file for --model; 'none' for "
                            "random weights, only useful for testing (config: pretrained)")
    from .backbones import names  # the registry lists names without loading torch

    group.add_argument("--temporal", choices=names(), default="neighbor",
                       help="video backbone of --model; a checkpoint records its own "
                            "(config: temporal)")
    device_and_precision(group)
    group.add_argument("--clean-prompts", action=argparse.BooleanOptionalAction, default=None,
                       help="plain labels get clean prompts ('a photo of a person juggling.') "
                            "instead of the reference's ('... juggling. juggling'); default: as "
                            "the checkpoint was trained, else the reference's (config: "
                            "clean_prompts)")


def device_and_precision(group) -> None:
    group.add_argument("--device", default=None,
                       help="cpu, cuda, cuda:1, ...; default: cuda if available (config: device)")
    group.add_argument("--precision", choices=EVAL_PRECISIONS, default=None,
                       help="the towers' precision; default: fp32, as the reference tests; bf16 "
                            "or fp16 (CUDA only) are faster and differ slightly, see "
                            "docs/fidelity.md (config: eval_precision)")


# -- what the model sees -------------------------------------------------------------------
def view_options(group, views: bool = True, sampling: bool = True, clip: str = "view") -> None:
    """Frames per clip and their spacing; with `views`, the test views; with `sampling`, the
    rule; always whether display rotation is applied."""
    if views:
        group.add_argument("--views", type=int, default=None,
                           help=f"temporal views per video; default: {DEFAULT_VIEW.num_views} "
                                "(config: test_views)")
    group.add_argument("--frames", type=int, default=None,
                       help=f"frames per {clip}; default: the checkpoint's training frames, "
                            f"else {DEFAULT_VIEW.num_frames} (config: num_frames)")
    group.add_argument("--sampling-rate", type=int, default=None,
                       help=f"frame step within a {clip}, counted at 30 fps; default: the "
                            f"checkpoint's, else {DEFAULT_VIEW.sampling_rate} (config: "
                            "sampling_rate)")
    if sampling:
        group.add_argument("--sampling", choices=SAMPLINGS.names(), default=None,
                           help="which frames make a view: 'reference', those the FROSTER "
                                "reference decoder takes (what its models were trained and "
                                "tested on); 'uniform', views spread evenly over the whole "
                                f"video; default: {DEFAULT_VIEW.sampling} (config: sampling)")
    group.add_argument("--ignore-rotation", action="store_true",
                       help="decode frames as stored, ignoring the video's display rotation, "
                            "as the reference does (config: apply_rotation=false)")


def throughput_options(group, batch_help: str = "videos per forward pass",
                       batch_default: int = 4) -> None:
    group.add_argument("--batch-size", type=int, default=batch_default,
                       help=f"{batch_help} (config: eval_batch_size)")
    group.add_argument("--workers", type=int, default=None,
                       help="decoding worker processes; default: min(4, CPU cores) "
                            "(config: num_workers)")


def progress_option(parser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def progress(args) -> bool | None:
    """False with --no-progress; None: a bar when stderr is a terminal."""
    return False if getattr(args, "no_progress", False) else None


def text_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("text")
    group.add_argument("--cache-dir", default=None,
                       help="text-embedding cache; default: $FROSTER_CACHE or ~/.cache/froster")
    group.add_argument("--no-cache", action="store_true", help="do not read or write the text cache")
    group.add_argument("--template", action="append", dest="templates", metavar="TEMPLATE",
                       help="a prompt template with {} for the label (repeatable); replaces the "
                            "default prompts (the reference's 28 templates + the bare text)")


def output_option(parser, what: str, metavar: str = "FILE", **kwargs) -> None:
    """`-o/--output`, the same spelling on every command that writes."""
    parser.add_argument("-o", "--output", metavar=metavar, help=what, **kwargs)


def format_option(parser, choices, what: str = "output format") -> None:
    parser.add_argument("--format", choices=choices, default=None,
                        help=f"{what}: json is one JSON document, jsonl one JSON object per "
                             "line; default: from --output's name, else a table")


# -- labels --------------------------------------------------------------------------------
def label_options(parser: argparse.ArgumentParser) -> None:
    labels = parser.add_argument_group("labels (one of)")
    labels.add_argument("--labels", help="labels separated by --separator, e.g. "
                                         "'juggling,abseiling' (never a folder)")
    labels.add_argument("--label-file", metavar="FILE",
                        help="class file: JSON ({\"0\": \"Name: description\"} or a list), "
                             "CSV (index,name) or text (one per line)")
    labels.add_argument("--separator", default=",", help="separator of --labels")


def read_labels(args) -> list[str]:
    from .data.annotations import read_class_names

    if bool(args.labels) == bool(args.label_file):
        raise FrosterError("give the labels with either --labels 'a,b,c' or --label-file FILE")
    if args.labels:
        labels = [label.strip() for label in args.labels.split(args.separator) if label.strip()]
    else:
        labels = read_class_names(args.label_file)
    if not labels:
        raise FrosterError("no labels given")
    return labels


def check_templates(templates) -> tuple[str, ...] | None:
    for template in templates or ():
        if template.count("{}") != 1:
            raise FrosterError(f"template {template!r} must contain {{}} exactly once")
    return tuple(templates) if templates else None


# -- the Recognizer these options describe -------------------------------------------------
def recognizer_options(args, **overrides) -> dict:
    """The Recognizer keyword arguments the parsed options give (None: its default)."""
    options = dict(device=args.device, num_views=getattr(args, "views", None),
                   num_frames=args.frames, sampling_rate=args.sampling_rate,
                   sampling=getattr(args, "sampling", None),
                   apply_rotation=False if args.ignore_rotation else None,
                   cache_dir=args.cache_dir, use_cache=not args.no_cache,
                   batch_size=getattr(args, "batch_size", 4),
                   num_workers=getattr(args, "workers", None),
                   precision=args.precision or "fp32", clean_prompts=args.clean_prompts)
    templates = check_templates(args.templates)
    if templates:
        options["templates"] = templates
    options.update(overrides)
    return options


def load_recognizer(args, **overrides):
    """The Recognizer of --checkpoint, or of --model/--pretrained."""
    from .inference.api import Recognizer

    if bool(args.checkpoint) == bool(args.model):
        raise FrosterError("give either --checkpoint CKPT or --model ARCH [--pretrained TAG]")
    options = recognizer_options(args, **overrides)
    if args.checkpoint:
        return Recognizer.from_checkpoint(args.checkpoint, trust_pickle=args.trust_pickle,
                                          **options)
    return Recognizer.from_pretrained(args.model, args.pretrained, temporal=args.temporal,
                                      **options)
