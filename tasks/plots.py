"""Charts for comparing runs."""

from pathlib import Path


def plot_leaderboard(rows: list[dict], path: Path) -> Path:
    """Test accuracy and macro F1 of every candidate run, grouped by family, oldest run first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = sorted({r["family"] or "?" for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, metric in zip(axes, ("test_accuracy", "test_f1_macro"), strict=True):
        for offset, family in enumerate(families):
            scores = [r[metric] for r in rows if (r["family"] or "?") == family and r[metric] is not None]
            ax.scatter([offset] * len(scores), scores, alpha=0.7, label=family)
            if scores:
                ax.hlines(max(scores), offset - 0.3, offset + 0.3, colors="black", linewidth=1)
        ax.set_xticks(range(len(families)), families)
        ax.set_title(metric.replace("_", " "))
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("score on the test rows (line: best run)")
    fig.suptitle(f"{rows[0]['dataset']}: {len(rows)} candidate runs" if rows else "no runs")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
