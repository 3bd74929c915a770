"""python -m histguard: send histogram files and inspect verdicts without the C++ CLI.

    python -m histguard send -a HOST:50051 --monitor pixel/occupancy --run 356000 run356000/*.json
    python -m histguard inspect -a HOST:50051 pixel/occupancy --run 356000 --lumisection 42
    python -m histguard monitors -a HOST:50051

The address comes from -a/--address, else $HISTGUARD_ADDRESS, else localhost:50051; the token
from --token, else $HISTGUARD_TOKEN. Exit codes as the C++ CLI's: 0 fine, 1 a file failed or a
histogram was rejected (send) or the daemon said no, 2 bad usage, 3 the daemon was not reached.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np

from histguard import rootjson
from histguard.client import DEFAULT_ADDRESS, Client
from histguard.errors import DaemonUnavailable, HistguardError, InvalidHistogram
from histguard.progress import Progress
from histguard.types import Inspection, Verdict

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE = 0, 1, 3


def _client(args: argparse.Namespace) -> Client:
    return Client(args.address, token=args.token, tls_ca=args.tls_ca, tls_cert=args.tls_cert,
                  tls_key=args.tls_key, timeout=args.timeout)


def _fail(command: str, e: HistguardError) -> int:
    print(f"histguard {command}: {e}", file=sys.stderr)
    return EXIT_UNREACHABLE if isinstance(e, DaemonUnavailable) else EXIT_FAILED


# ---- send ----

def run_send(args: argparse.Namespace) -> int:
    start = time.monotonic()
    failed = 0
    counts: Dict[str, int] = {}
    items: List[Any] = []
    paths: List[str] = []
    next_ls: Dict[str, int] = {}
    for path in args.files:
        try:
            h = rootjson.read_file(path)
        except InvalidHistogram as e:
            print(f"histguard send: {e}", file=sys.stderr)
            failed += 1
            continue
        monitor = args.monitor or h.monitor or h.name
        if not monitor:
            print(f"histguard send: {path}: the file names no monitor: give --monitor",
                  file=sys.stderr)
            failed += 1
            continue
        run = args.run if (args.run is not None or h.run is None) else h.run
        run = run or 0
        if args.lumisection is not None or h.lumisection is None:
            ls = next_ls.setdefault(monitor, args.lumisection or 0)
            next_ls[monitor] = ls + 1
        else:
            ls = h.lumisection
        items.append((monitor, run, ls, h))
        paths.append(path)

    client = _client(args)
    sent = 0
    bar = Progress(len(items), args.progress)
    try:
        for first in range(0, len(items), args.batch):
            chunk = items[first:first + args.batch]
            try:
                verdicts = client.submit_many(chunk, batch=args.batch)
            except HistguardError as e:
                bar.close()
                return _fail("send", e)
            bar.update(verdicts)
            for path, v in zip(paths[first:], verdicts):
                counts[v.quality.value] = counts.get(v.quality.value, 0) + 1
                if not args.quiet:
                    print(f"{path}: {v}", flush=True)
            sent += len(verdicts)
    finally:
        bar.close()
        client.close()
    secs = time.monotonic() - start
    summary = f"sent {sent} of {len(args.files)} files in {secs:.3g} s"
    if secs > 0:
        summary += f" ({sent / secs:.0f}/s)"
    summary += ":" + "".join(f" {n} {q}" for q, n in sorted(counts.items()))
    if failed:
        summary += f"; {failed} files failed"
    print(summary, file=sys.stderr)
    return EXIT_FAILED if failed or counts.get("REJECTED") else EXIT_OK


# ---- inspect ----

def _bin_text(b: Any) -> str:
    return f"{b[0]},{b[1]}" if isinstance(b, tuple) else str(b)


def inspection_json(ins: Inspection) -> Dict[str, Any]:
    """The inspection as JSON-ready values: numbers stay numbers, arrays become lists."""
    def arr(a: Optional[np.ndarray]) -> Any:
        return None if a is None else np.where(np.isfinite(a), a, None).tolist()

    verdict = dataclasses.asdict(ins.verdict)
    verdict["quality"] = ins.verdict.quality.value
    return {
        "monitor": ins.monitor, "run": ins.run, "lumisection": ins.lumisection,
        "verdict": verdict, "in_training_window": ins.in_training_window,
        "shape": list(ins.observed.shape), "entries": ins.entries,
        "underflow": ins.underflow, "overflow": ins.overflow,
        "x_title": ins.x_title, "y_title": ins.y_title,
        "x_edges": arr(ins.x_edges), "y_edges": arr(ins.y_edges),
        "observed": arr(ins.observed), "expected": arr(ins.expected), "pulls": arr(ins.pulls),
    }


def run_inspect(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            ins = client.inspect(args.monitor, args.run, args.lumisection)
        except HistguardError as e:
            return _fail("inspect", e)
    if args.plot:
        from histguard.plotting import plot

        import matplotlib
        matplotlib.use("Agg")
        plot(ins).savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}", file=sys.stderr)
    if args.json:
        json.dump(inspection_json(ins), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    print(ins.verdict)
    shape = " x ".join(str(n) for n in ins.observed.shape)
    print(f"histogram: {shape} bins, entries {ins.entries:.10g}, underflow {ins.underflow:.10g}, "
          f"overflow {ins.overflow:.10g}")
    if not ins.has_expectation:
        detail = f" ({ins.verdict.detail})" if ins.verdict.detail else ""
        print(f"no expectation to compare with: no model scored this histogram{detail}")
        return EXIT_OK
    n = ins.observed.size if args.all_bins else args.top
    rows = [("BIN", "OBSERVED", "EXPECTED", "PULL")]
    for b, obs, exp, pull in ins.worst_bins(n):
        rows.append((_bin_text(b), f"{obs:.6g}", f"{exp:.6g}", f"{pull:+.2f}"))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    print()
    for r in rows:
        print("  ".join([r[0].ljust(widths[0])] + [r[c].rjust(widths[c]) for c in (1, 2, 3)])
              .rstrip())
    if len(rows) - 1 < ins.observed.size:
        print(f"({len(rows) - 1} of {ins.observed.size} bins, largest |pull| first, ROOT bin "
              "numbers; --all-bins shows all)")
    return EXIT_OK


# ---- monitors ----

def run_monitors(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            monitors = client.monitors(args.prefix)
        except HistguardError as e:
            return _fail("monitors", e)
    if args.json:
        out = []
        for m in monitors:
            d = dataclasses.asdict(m)
            if m.last_verdict is not None:
                d["last_verdict"]["quality"] = m.last_verdict.quality.value
            out.append(d)
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    if not monitors:
        print("no monitors yet" if not args.prefix else f"no monitors under prefix '{args.prefix}'")
        return EXIT_OK
    rows = [("MONITOR", "MODEL", "WINDOW", "LAST", "P")]
    for m in monitors:
        v: Optional[Verdict] = m.last_verdict
        last = f"{v.quality.value} run {v.run} ls {v.lumisection}" if v else "-"
        p = f"{v.p_value:.3g}" if v is not None and v.scored else "-"
        rows.append((m.monitor, f"v{m.model_version}" if m.model_version else "-",
                     str(m.window_size), last, p))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    right = {1, 2, 4}
    for r in rows:
        print("  ".join(r[c].rjust(widths[c]) if c in right else r[c].ljust(widths[c])
                        for c in range(5)).rstrip())
    return EXIT_OK


# ---- arguments ----

def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _batch(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10000:
        raise argparse.ArgumentTypeError("a batch is 1 to 10000 histograms")
    return value


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-a", "--address", default=None,
                        help=f"daemon gRPC address host:port (env HISTGUARD_ADDRESS, default "
                             f"{DEFAULT_ADDRESS})")
    common.add_argument("--token", default=None, help="bearer token (env HISTGUARD_TOKEN)")
    common.add_argument("--tls-ca", default=None, help="CA certificate (PEM) to use TLS")
    common.add_argument("--tls-cert", default=None, help="client certificate (PEM), with --tls-key")
    common.add_argument("--tls-key", default=None, help="client key (PEM), with --tls-cert")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds per call")

    p = argparse.ArgumentParser(
        prog="python -m histguard",
        description="histguard client: send histogram files, inspect verdicts, list monitors.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "send", parents=[common],
        help="send histogram files and print each verdict",
        description="Send histogram files and print each verdict. Files are ROOT TH1*/TH2* "
        "objects as written by TBufferJSON::ToJSON or JSROOT, or plain JSON {monitor, run, "
        "lumisection, shape, contents}. A malformed file is reported by name and skipped; the "
        "others are still sent; the exit code is 1 if any file failed or was rejected. Bins in "
        "verdicts are ROOT bin numbers (1-based; ix,iy for 2D).")
    s.add_argument("files", nargs="+", help="histogram files")
    s.add_argument("-m", "--monitor", default=None,
                   help="monitor name for every file (default: the file's, or the ROOT object's "
                        "name)")
    s.add_argument("--run", type=_non_negative, default=None,
                   help="run number for files that give none (given: for every file)")
    s.add_argument("--lumisection", type=_non_negative, default=None,
                   help="first lumisection for files that give none (counts up per monitor)")
    s.add_argument("--batch", type=_batch, default=100, help="histograms per Submit call (100)")
    s.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    s.add_argument("--progress", action="store_true", help="show a progress line on stderr")
    s.set_defaults(func=run_send)

    i = sub.add_parser(
        "inspect", parents=[common],
        help="explain one lumisection's verdict bin by bin",
        description="Explain one lumisection's verdict bin by bin: observed content against the "
        "expectation of the model that scored it, and each bin's pull, largest |pull| first. "
        "Bins are ROOT bin numbers (1-based; ix,iy for 2D).")
    i.add_argument("monitor", help="monitor name, e.g. pixel/barrel/l1/occupancy")
    i.add_argument("--run", type=_non_negative, required=True, help="run number")
    i.add_argument("--lumisection", "--ls", type=_non_negative, required=True,
                   help="lumisection number")
    group = i.add_mutually_exclusive_group()
    group.add_argument("--top", type=int, default=10, help="how many bins to list (10)")
    group.add_argument("--all-bins", action="store_true", help="list every bin")
    i.add_argument("--json", action="store_true",
                   help="print the inspection as JSON (numbers as numbers, arrays as lists)")
    i.add_argument("--plot", metavar="FILE", default=None,
                   help="also draw it into FILE (png, pdf, svg; needs matplotlib)")
    i.set_defaults(func=run_inspect)

    m = sub.add_parser("monitors", parents=[common], help="list the monitors the daemon knows")
    m.add_argument("-p", "--prefix", default="", help="only monitors whose name starts with this")
    m.add_argument("--json", action="store_true", help="print them as JSON")
    m.set_defaults(func=run_monitors)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except HistguardError as e:
        return _fail(args.command, e)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

