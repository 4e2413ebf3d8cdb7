"""Plot the training curves of a run directory from its `stats.jsonl` (losses, D scores, augment p, timing).

Usage::

    python -m training.plot_stats RUN_DIR [--out RUN_DIR/stats.png] [--csv stats.csv]

Each line of `stats.jsonl` is one tick: `{"<name>": {"num": n, "mean": m, "std": s}, ..., "timestamp": t}`
(written by `training.training_loop`). Rendering uses matplotlib's Agg canvas directly (no GUI, no global backend
switch).
"""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
import tempfile

import click

PANELS = [
    ('Losses', ['Loss/G/loss', 'Loss/D/loss', 'Loss/G/reg', 'Loss/D/reg']),
    ('D scores', ['Loss/scores/real', 'Loss/scores/fake', 'Loss/signs/real']),
    ('Augmentation p', ['Progress/augment']),
    ('Timing (sec/kimg)', ['Timing/sec_per_kimg']),
]


def read_stats(path: str | os.PathLike) -> list[dict]:
    """Reads `stats.jsonl` (one JSON object per line; unreadable trailing lines are skipped).

    Raises:
        FileNotFoundError: if the file does not exist.
    """
    rows = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # A tick being written while we read.
    return rows


def series(rows: list[dict], name: str) -> tuple[list[float], list[float]]:
    """(kimg, mean) pairs of statistic `name` over the ticks that reported it (finite values only)."""
    xs, ys = [], []
    for i, row in enumerate(rows):
        value = row.get(name)
        if not isinstance(value, dict) or not math.isfinite(float(value.get('mean', float('nan')))):
            continue
        kimg = row.get('Progress/kimg', {}).get('mean', i)
        xs.append(float(kimg))
        ys.append(float(value['mean']))
    return xs, ys


def plot_stats(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> pathlib.Path:
    """Renders the curves of `<run_dir>/stats.jsonl` into a PNG (default `<run_dir>/stats.png`).

    Returns:
        The path of the PNG written.

    Raises:
        FileNotFoundError: if `run_dir` has no stats.jsonl.
        ValueError: if stats.jsonl holds no ticks.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    run_dir = pathlib.Path(run_dir)
    stats_path = run_dir / 'stats.jsonl'
    if not stats_path.is_file():
        raise FileNotFoundError(f'plot_stats(): run_dir must contain stats.jsonl, got {run_dir}')
    rows = read_stats(stats_path)
    if not rows:
        raise ValueError(f'plot_stats(): stats.jsonl must hold at least one tick, got an empty {stats_path}')
    out = pathlib.Path(out) if out is not None else run_dir / 'stats.png'

    fig = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(fig)
    for k, (title, names) in enumerate(PANELS):
        ax = fig.add_subplot(2, 2, k + 1)
        for name in names:
            xs, ys = series(rows, name)
            if xs:
                ax.plot(xs, ys, marker='.' if len(xs) < 30 else None, label=name)
        ax.set_title(title)
        ax.set_xlabel('kimg')
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    fig.savefig(out, format='png')
    return out


def write_stats_csv(run_dir: str | os.PathLike, out: str | os.PathLike) -> pathlib.Path:
    """Writes the scalar statistics of `<run_dir>/stats.jsonl` as CSV: one row per tick, one column per statistic.

    Columns: `tick` (0-based), `timestamp` (Unix seconds, when recorded), then the mean of every statistic that
    any tick reported, by name (`Progress/kimg` first, the rest sorted). A statistic a tick did not report is an
    empty cell. The file is written atomically.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: if `run_dir` has no stats.jsonl.
        ValueError: if stats.jsonl holds no ticks.
    """
    run_dir = pathlib.Path(run_dir)
    stats_path = run_dir / 'stats.jsonl'
    if not stats_path.is_file():
        raise FileNotFoundError(f'write_stats_csv(): run_dir must contain stats.jsonl, got {run_dir}')
    rows = read_stats(stats_path)
    if not rows:
        raise ValueError(f'write_stats_csv(): stats.jsonl must hold at least one tick, got an empty {stats_path}')
    names = sorted({k for row in rows for k, v in row.items() if isinstance(v, dict) and 'mean' in v})
    if 'Progress/kimg' in names:
        names.remove('Progress/kimg')
        names.insert(0, 'Progress/kimg')
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f'.{out.name}.', suffix='.part')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['tick', 'timestamp', *names])
            for i, row in enumerate(rows):
                cells: list = [i, row.get('timestamp', '')]
                for name in names:
                    value = row.get(name)
                    cells.append(value.get('mean', '') if isinstance(value, dict) else '')
                writer.writerow(cells)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out


@click.command()
@click.argument('run_dir', type=click.Path(exists=True, file_okay=False))
@click.option('--out', help='Output PNG [default: RUN_DIR/stats.png]', metavar='PATH', type=click.Path(dir_okay=False))
@click.option(
    '--csv',
    'csv_path',
    default=None,
    metavar='PATH',
    type=click.Path(dir_okay=False),
    help='Also write the scalar statistics as CSV (one row per tick, one column per statistic)',
)
def main(run_dir: str, out: str | None, csv_path: str | None) -> None:
    """Plot loss, D scores, augment p and timing curves of a training run directory (and write a CSV).

    \b
    Examples:
      python -m training.plot_stats training-runs/00000-stylegan3-t-twemoji-64-gpus1-batch8-gamma0.5
      python -m training.plot_stats RUN_DIR --csv out.csv
    """
    try:
        path = plot_stats(run_dir, out)
        csv_out = write_stats_csv(run_dir, csv_path) if csv_path is not None else None
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f'Wrote {path}' + (f' and {csv_out}' if csv_out is not None else ''))


if __name__ == '__main__':
    main()
