"""Command line for the Windows fixtures; stdout is only the resulting path.

python -m pyv2v_harness.windows NAME [--rebuild]     build if missing, print the image path
python -m pyv2v_harness.windows list                 recipe names (bad ones marked)
python -m pyv2v_harness.windows virtio-win DIR [--variant no-2k22]
python -m pyv2v_harness.windows virtio-win --iso FILE [--variant no-2k22]
python -m pyv2v_harness.windows virtio-win --cached [--iso] (print the cached tree/ISO path)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from pyv2v import log
from pyv2v.errors import V2VError

from .image import ensure_windows_image
from .recipes import RECIPES
from .virtio_win import VARIANTS, ensure_virtio_win, make_iso, make_tree


def _virtio_win(argv: list[str]) -> Path:
    ap = argparse.ArgumentParser(prog="python -m pyv2v_harness.windows virtio-win")
    ap.add_argument("dir", nargs="?", type=Path, help="write the tree here (new/empty dir)")
    ap.add_argument(
        "--iso",
        nargs="?",
        const=True,
        default=None,
        help="write an ISO to FILE (with --cached: the cached ISO)",
    )
    ap.add_argument("--variant", choices=VARIANTS, default="full")
    ap.add_argument("--cached", action="store_true", help="build into the fixture cache")
    a = ap.parse_args(argv)
    if a.cached:
        return ensure_virtio_win("iso" if a.iso else "dir", a.variant)
    if isinstance(a.iso, str) and not a.dir:
        dest = Path(a.iso)
        if dest.exists():
            raise V2VError(f"{dest} already exists")
        return make_iso(dest, a.variant)
    if a.dir and a.iso is None:
        try:
            return make_tree(a.dir, a.variant)
        except ValueError as e:
            raise V2VError(str(e)) from None
    ap.error("give DIR, --iso FILE or --cached")
    raise AssertionError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    log.configure(prog="pyv2v_harness.windows", verbose="-v" in args)
    args = [a for a in args if a != "-v"]
    try:
        if args[:1] == ["virtio-win"]:
            log.info(str(_virtio_win(args[1:])))
            return 0
        ap = argparse.ArgumentParser(
            prog="python -m pyv2v_harness.windows",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        ap.add_argument("name", choices=[*RECIPES, "list"])
        ap.add_argument("--rebuild", action="store_true")
        a = ap.parse_args(args)
        if a.name == "list":
            for name, r in RECIPES.items():
                log.info(f"{name}{'  (bad: ' + r.bad + ')' if r.bad else ''}")
            return 0
        with contextlib.redirect_stdout(sys.stderr):
            path = ensure_windows_image(a.name, rebuild=a.rebuild)
        log.info(str(path))
    except V2VError as e:
        log.error(str(e))
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
