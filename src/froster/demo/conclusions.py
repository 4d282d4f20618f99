"""The paper's conclusions, checked on the demo's table (means over the training splits).

    checks = check_conclusions(rows)      # rows: the demo's, with keys zero_shot, fine_tune, froster
    print(conclusions_text(checks))       # "- held: FROSTER's HM (58.7) >= fine-tuning's (55.1) + 2"

They are what the demo is there to show (docs/demo.md): FROSTER keeps the novel classes that
plain fine-tuning forgets, for a better harmonic mean, while fine-tuning does learn the base
classes. Each is a comparison of the unrounded means; the text shows them rounded.
"""

from __future__ import annotations

__all__ = ["HM_MARGIN", "CONCLUSIONS", "check_conclusions", "conclusions_text", "all_held"]

#: FROSTER's HM must be at least this many points above fine-tuning's.
HM_MARGIN = 2.0

#: (key, what is claimed, (row, measure) on the left, (row, measure) on the right, margin):
#: left >= right + margin when margin > 0, else left > right.
CONCLUSIONS = (
    ("froster_hm", f"FROSTER's HM is at least {HM_MARGIN:g} points above fine-tuning's",
     ("froster", "hm"), ("fine_tune", "hm"), HM_MARGIN),
    ("froster_novel", "FROSTER's novel accuracy is above fine-tuning's",
     ("froster", "novel"), ("fine_tune", "novel"), 0.0),
    ("fine_tune_base", "fine-tuning's base accuracy is above frozen CLIP's",
     ("fine_tune", "base"), ("zero_shot", "base"), 0.0),
)
_NAMES = {"zero_shot": "frozen CLIP's", "fine_tune": "fine-tuning's", "froster": "FROSTER's"}


def check_conclusions(rows) -> list[dict]:
    """[{key, claim, held, left, right, margin, text}] for the rows (dicts with key, base,
    novel, hm)."""
    by_key = {row["key"]: row for row in rows}
    checks = []
    for key, claim, (lrow, lmeasure), (rrow, rmeasure), margin in CONCLUSIONS:
        left, right = float(by_key[lrow][lmeasure]), float(by_key[rrow][rmeasure])
        held = left >= right + margin if margin > 0 else left > right
        what = {"hm": "HM", "novel": "novel", "base": "base"}
        sign = f">= {_NAMES[rrow]} ({right:.1f}) + {margin:g}" if margin > 0 else \
            f"> {_NAMES[rrow]} ({right:.1f})"
        text = f"{_NAMES[lrow]} {what[lmeasure]} ({left:.1f}) {sign}"
        checks.append({"key": key, "claim": claim, "held": held, "left": left, "right": right,
                       "margin": margin, "text": text})
    return checks


def conclusions_text(checks) -> str:
    """Markdown lines: each conclusion, 'held' or 'did not hold', with its numbers."""
    lines = [f"- {'held' if c['held'] else 'did not hold'}: {c['claim']}: {c['text']}"
             for c in checks]
    return "\n".join(lines) + "\n"


def all_held(checks) -> bool:
    return all(c["held"] for c in checks)
