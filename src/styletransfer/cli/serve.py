"""``styletransfer serve``: the local web studio (the ``web`` extra)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import OptionError
from .common import PROG, _err, _flag, _Parser, _positive_int


def _cmd_serve(argv: Sequence[str]) -> int:
    parser = _Parser(prog=f"{PROG} serve", description="Run the local web studio (needs the web extra).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (another needs a token)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--data-dir", default=None, help="where jobs are kept (default: the user data directory)")
    parser.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload, MB (default 25)")
    parser.add_argument("--max-size", type=int, default=2048, help="largest output long side, px (default 2048)")
    parser.add_argument(
        "--token", default=None, help="require this token, 16 characters or more (made up when --host is not local)"
    )
    parser.add_argument(
        "--max-queued", type=_positive_int, default=100, help="most jobs waiting to run (default 100); more: 429"
    )
    parser.add_argument(
        "--max-job-pixels",
        type=_positive_int,
        default=100_000_000,
        help="most pixels of one job's images together (default 100000000)",
    )
    parser.add_argument(
        "--min-free-mb",
        type=float,
        default=None,
        help="free disk under the data folder a new job needs, MB (default 10 x --max-upload-mb + 200)",
    )
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    args = parser.parse_args(argv)
    if args.min_free_mb is not None and not args.min_free_mb >= 0:
        parser.error(f"--min-free-mb must be at least 0, not {args.min_free_mb}")
    try:
        from ..web.server import serve
    except ImportError as exc:
        _err(f"serve needs the web extra ({exc.name} is missing): pip install 'gatys-styletransfer[web]'")
        return 1
    try:
        return serve(
            args.host,
            args.port,
            args.data_dir,
            args.max_upload_mb,
            args.max_size,
            args.token,
            args.open,
            max_queued=args.max_queued,
            max_job_pixels=args.max_job_pixels,
            min_free_mb=args.min_free_mb,
        )
    except OptionError as exc:  # serve's own checks (a short token): a usage error naming the flag
        parser.error(exc.render(_flag))
