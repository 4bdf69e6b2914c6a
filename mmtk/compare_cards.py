"""The protocol cards of compared runs: one line that summarises them, and a refusal to rank
rows whose cards differ in something that changes what the numbers mean."""
from __future__ import annotations

from typing import Any

from .audit import read_card
from .errors import MmtkError

# (card section, key) whose values must agree across the rows of one table
MATTERS: tuple[tuple[str, ...], ...] = (
    ("trials",), ("seeds",), ("folds",), ("selection", "split"), ("data", "normalisation"),
    ("data", "validation split"), ("data", "data seed"), ("evaluation", "protocol"),
    ("evaluation", "mask seed"), ("evaluation", "one model per test condition"),
)


def _get(card: dict, keys: tuple[str, ...]) -> Any:
    node: Any = card
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node


def check_cards(entries: list[Any]) -> str:
    """A one-line summary of the finished rows' cards; an :class:`MmtkError` when they differ
    in a way that matters, or when a run read its test split while training."""
    cards = {e.name: read_card(e.run_dir) for e in entries if e.results and e.run_dir}
    if not cards:
        return ""
    for name, card in cards.items():
        peeked = {t: n for t, n in (_get(card, ("test split", "read while training")) or {}).items() if n}
        if peeked:
            raise MmtkError(f"'{name}' read its test split while training ({peeked}); its numbers "
                            f"cannot be ranked with the others (mmtk audit {entries[0].run_dir.parent.parent})")
    (first, ref), *others = cards.items()
    for name, card in others:
        for keys in MATTERS:
            if _get(card, keys) != _get(ref, keys):
                raise MmtkError(f"cannot rank '{first}' and '{name}': their protocol cards differ in "
                                f"{'.'.join(keys)} ({_get(ref, keys)!r} vs {_get(card, keys)!r}); "
                                "compare runs made under the same protocol")
    per_condition = _get(ref, ("evaluation", "one model per test condition"))
    return (f"protocol cards agree: {ref.get('trials')} trial(s) per row, selection on "
            f"{_get(ref, ('selection', 'split'))}, test read only at the end, normalisation: "
            f"{_get(ref, ('data', 'normalisation'))}, evaluation {_get(ref, ('evaluation', 'protocol'))}"
            f"{', per-condition models' if per_condition else ', one model for every condition'}")
