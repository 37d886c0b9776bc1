"""Write the MAD-X entry decks under lattices/btf_padme (one per settings entry).

``python scripts/gen_madx_decks.py`` (re)writes ``<settings>.madx`` and
``<settings>_derived.madx`` from ``beamline.lattice.entry_deck_files``; ``--check`` only
reports (exit 1) files that are not current. tests/test_madx_entry_decks.py runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beamline.lattice import LINE_DIR, available_settings, entry_deck_files  # noqa: E402
from scanplan.atomic import atomic_write_text  # noqa: E402


def stale_files() -> dict[Path, str]:
    """Entry files whose committed text differs from the generated one (path -> text)."""
    out: dict[Path, str] = {}
    for name in available_settings():
        for fname, text in entry_deck_files(name).items():
            path = ROOT / "lattices" / LINE_DIR / fname
            if not path.is_file() or path.read_text() != text:
                out[path] = text
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    stale = stale_files()
    for path, text in stale.items():
        if args.check:
            print(f"not current: {path.relative_to(ROOT)}")
        else:
            atomic_write_text(path, text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    raise SystemExit(main())
