"""`froster import`: another project's checkpoint as a froster export folder."""

from __future__ import annotations

import sys

from ..cli_options import TRUST_PICKLE_HELP, add_parser, output_option
from ..errors import FrosterError
from . import FORMATS


def run_import(args) -> int:
    from ..checkpoint import build_imported, export_imported
    from . import froster_folder, read_checkpoint

    if froster_folder.folder_of(args.source) is not None:
        raise FrosterError(f"{args.source} is already a froster checkpoint folder")
    imported = read_checkpoint(args.source, format=args.format, trust_pickle=args.trust_pickle,
                               temporal=args.temporal, base_clip=args.clip,
                               patch_ratio=args.patch_ratio)
    for warning in imported.warnings:
        print(f"froster import: warning: {warning}", file=sys.stderr)
    student, _ = build_imported(imported)  # proves the weights fit before anything is written
    folder = export_imported(imported, args.output, student)
    kept = " (+ projectors.safetensors: the FROSTER heads, for train init=)" if imported.heads else ""
    print(f"read {args.source}: {imported.describe(heads_used=bool(imported.heads))}")
    print(f"wrote {folder}/model.safetensors + config.json{kept}")
    return 0


def register(subparsers) -> None:
    p = add_parser(
        subparsers, "import", help="convert a FROSTER reference / Open-VCLIP / ViFi-CLIP checkpoint",
        description="Write a froster checkpoint folder (model.safetensors + config.json) from\n"
                    "another project's checkpoint file, so later loads are pickle-free (and the\n"
                    "FROSTER heads of a training checkpoint are kept for train init=).\n"
                    "Every command that takes --checkpoint also reads these files directly.\n\n"
                    "Formats (auto: detected from the keys):\n"
                    "  froster-ref  FROSTER's and Open-VCLIP's PySlowFast files: a training\n"
                    "               checkpoint_epoch_000NN.pyth or the averaged swa_2_22.pth\n"
                    "               (model_state; the cfg, if present, gives the temporal type\n"
                    "               and frames; the teacher raw_model.* is skipped; FROSTER's\n"
                    "               heads projector_v/t are kept in projectors.safetensors)\n"
                    "  vificlip     ViFi-CLIP's ckpt_epoch_N.pth (fully fine-tuned CLIP,\n"
                    "               frames mean-pooled); its token embedding comes from --clip\n"
                    "froster's own checkpoints/last.pt is recognised too.\n\n"
                    "The architecture is read from the weights' shapes (a config's MODEL.ARCH\n"
                    "is only a hint). Files are read with torch.load(weights_only=True).\n\n"
                    "e.g. froster import swa_2_22.pth -o checkpoints/froster_k400")
    p.add_argument("source", metavar="SRC", help="the checkpoint file")
    output_option(p, "folder to write", metavar="DIR", required=True)
    p.add_argument("--format", choices=("auto", *FORMATS.names()), default="auto",
                   help="the file's layout")
    p.add_argument("--temporal", default=None, metavar="TYPE",
                   help="froster temporal type to use instead of the one the file records "
                        "(e.g. neighbor or mean; for files without a config)")
    p.add_argument("--clip", default="openai", metavar="TAG_OR_FILE",
                   help="the CLIP the checkpoint was fine-tuned from: ViFi-CLIP's token "
                        "embedding (which it does not save) and --patch-ratio use it "
                        "(default: openai, a download; or a local OpenAI .pt / open_clip "
                        "weights file)")
    p.add_argument("--patch-ratio", type=float, default=None, metavar="R",
                   help="interpolate every CLIP weight as R * CLIP + (1 - R) * checkpoint, as "
                        "Open-VCLIP tests its released models (R = 0.5; TEST.PATCHING_RATIO); "
                        "FROSTER's are tested without (default: none)")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    p.set_defaults(run=run_import)
