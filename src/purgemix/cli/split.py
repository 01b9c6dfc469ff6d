"""purgemix split IN --hq HQ --lq LQ: high- and low-quality pools by (curated) score."""

from __future__ import annotations

from collections import Counter

import typer

from .common import JsonOpt, emit, fail, friendly_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def split(
        inputs: list[str] = typer.Argument(..., help="Curated (or rated) file(s).", metavar="IN..."),
        hq: str = typer.Option(..., "--hq", help="Output file for the high-quality pool."),
        lq: str = typer.Option(..., "--lq", help="Output file for the low-quality pool."),
        score_key: str = typer.Option("ds2.curated", "--score",
                                      help="Score to cut on (falls back to --fallback where missing)."),
        fallback: str = typer.Option("ds2.score", "--fallback", help="Score used where --score is missing ('' = none)."),
        hq_min: float = typer.Option(4, "--hq-min", help="HQ: score >= this."),
        lq_max: float = typer.Option(None, "--lq-max",
                                     help="LQ: score <= this (default: just below --hq-min, no excluded band). "
                                          "A lower value excludes the middle band from both pools."),
        middle: str = typer.Option(None, "--middle", help="Optional file for the excluded middle band."),
        unrated: str = typer.Option(None, "--unrated", help="Optional file for records without any score."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Split records into HQ (score >= --hq-min) and LQ (score <= --lq-max), in canonical messages form."""
        from ..core.progress import console
        from ..core.shapes import Converter, RecordError, export
        from ..io.readers import Source, decode_json_line
        from ..io.writers import Writer

        cut_lq = lq_max if lq_max is not None else hq_min - 1e-9
        if cut_lq >= hq_min:
            fail("--lq-max must be below --hq-min", 2)
        counts: Counter = Counter()
        outs = {"hq": Writer(hq), "lq": Writer(lq)}
        if middle:
            outs["middle"] = Writer(middle)
        if unrated:
            outs["unrated"] = Writer(unrated)
        try:
            for path in inputs:
                src = Source.open(path)
                conv = Converter(src.name)
                for _, payload, err in src.rows():
                    if err is not None or payload is None:
                        counts["unreadable"] += 1
                        continue
                    obj = payload
                    if isinstance(payload, (bytes, bytearray)):
                        obj, perr = decode_json_line(payload)
                        if perr:
                            counts["unreadable"] += 1
                            continue
                    try:
                        rec = conv(obj)
                    except RecordError:
                        counts["unreadable"] += 1
                        continue
                    sc = rec.get("scores") or {}
                    v = sc.get(score_key)
                    if not isinstance(v, (int, float)) and fallback:
                        v = sc.get(fallback)
                    if not isinstance(v, (int, float)):
                        pool = "unrated"
                    elif v >= hq_min:
                        pool = "hq"
                    elif v <= cut_lq:
                        pool = "lq"
                    else:
                        pool = "middle"
                    counts[pool] += 1
                    if pool in outs:
                        outs[pool].write([export(rec, "messages")])
        except BaseException:
            for w in outs.values():
                w.abort()
            raise
        for w in outs.values():
            w.close()
        summary = {"command": "split", "counts": dict(counts), "outputs": {k: str(w.path) for k, w in outs.items()},
                   "hq_min": hq_min, "lq_max": cut_lq if lq_max is not None else None, "score": score_key}
        console.print("split: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
        emit(summary, as_json)
