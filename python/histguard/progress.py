"""A progress line for bulk sends: tqdm when it is installed, else one plain line on stderr."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional


class Progress:
    """Counts histograms sent and verdicts by quality; ``close()`` prints the summary."""

    def __init__(self, total: Optional[int], enabled: bool, stream: Any = None) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.counts: dict = {}
        self._start = time.monotonic()
        self._last = 0.0
        self._bar = None
        # Live updates where '\r' redraws the line (a terminal, a notebook); elsewhere (a log
        # file) only the final line.
        isatty = getattr(self.stream, "isatty", None)
        self._live = bool(isatty and isatty()) or "ipykernel" in sys.modules
        if enabled:
            try:
                from tqdm.auto import tqdm  # optional
                self._bar = tqdm(total=total, unit="hist", file=self.stream)
            except Exception:
                self._bar = None

    def update(self, verdicts: Any) -> None:
        n = 0
        for v in verdicts:
            n += 1
            self.counts[v.quality.value] = self.counts.get(v.quality.value, 0) + 1
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            bad = self.counts.get("BAD", 0) + self.counts.get("WARNING", 0)
            self._bar.set_postfix_str(f"{bad} warning/bad", refresh=False)
            return
        now = time.monotonic()
        if self._live and now - self._last >= 0.2:
            self._last = now
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def _line(self) -> str:
        secs = time.monotonic() - self._start
        rate = self.done / secs if secs > 0 else 0.0
        of = f"/{self.total}" if self.total is not None else ""
        counts = " ".join(f"{n} {q}" for q, n in sorted(self.counts.items()))
        return f"sent {self.done}{of} ({rate:.0f}/s){': ' + counts if counts else ''}"

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            return
        self.stream.write(("\r" if self._live else "") + self._line() + "\n")
        self.stream.flush()
