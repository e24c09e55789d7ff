"""How long packing a bundle takes at deflate levels 1 and 9, and how big it is: `fnhost up` packs at 1.

    .venv/bin/python bench/pack.py [GUEST_DIR ...]    (default: the shop example's three Python guests)

Builds each guest (a cache hit when unchanged), then packs its bundle REPEAT times per level; prints
the best time and the size.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fnhost.build import build_guest
from fnhost.control import pack_bundle

ROOT = Path(__file__).resolve().parents[1]
REPEAT = 3


def main(dirs: list[Path]) -> None:
    print(f"{'guest':<12} {'wasm MB':>8} {'level':>5} {'best s':>7} {'zip MB':>7}")
    for src in dirs:
        built = build_guest(src)
        wasm, manifest = built.wasm_path.read_bytes(), (src / "fnhost.toml").read_text()
        for level in (1, 9):
            best, size = float("inf"), 0
            for _ in range(REPEAT):
                start = time.perf_counter()
                size = len(pack_bundle(manifest, wasm, compresslevel=level))
                best = min(best, time.perf_counter() - start)
            print(f"{src.name:<12} {len(wasm) / 1e6:>8.1f} {level:>5} {best:>7.2f} {size / 1e6:>7.2f}")


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]] or [ROOT / "guests" / "apps" / "shop" / n for n in ("orders", "tally", "report")]
    main(args)
