"""What a pretraining run reports: its summary (the command line, the Prefect UI) and its loss curve (MLflow)."""

from pathlib import Path

from tasks.pretraining.corpus import Corpus
from tasks.pretraining.encoder import Pretrained


def summary(dataset: str, uri: str, run_id: str, corpus: Corpus, result: Pretrained) -> dict:
    """What a pretraining run made, for the command line and the Prefect UI."""
    return {
        "dataset": dataset,
        "uri": uri,
        "run_id": run_id,
        "texts": len(corpus.texts),
        "dataset_rows": corpus.dataset_rows,
        "file_lines": corpus.file_lines,
        "dropped_as_test": corpus.dropped_as_test,
        "epochs": result.epochs,
        "stopped_by": result.stopped_by,
        "final_val_loss": result.final_val_loss,
        "seconds": result.seconds,
        "parameters": result.parameters,
    }


def markdown(summary: dict) -> str:
    loss = "none" if summary["final_val_loss"] is None else f"{summary['final_val_loss']:.4f}"
    files = ", ".join(f"`{path}` ({lines} lines)" for path, lines in summary["file_lines"].items()) or "none"
    run = f"mlpipe run --dataset {summary['dataset']} --models pretrained --backbone {summary['uri']}"
    return "\n".join(
        [
            f"# Encoder pretrained on `{summary['dataset']}`: `{summary['uri']}`",
            "",
            f"- texts: {summary['texts']} ({summary['dataset_rows']} training and validation rows; files: {files}; "
            f"{summary['dropped_as_test']} equal to a test row left out)",
            f"- {summary['epochs']} epochs (stopped by {summary['stopped_by']}), final val/loss {loss}, "
            f"{summary['seconds']:.0f} s, {summary['parameters']:,} parameters",
            f"- fine-tune it: `{run}`",
        ]
    )


def loss_curve(history: list[dict], title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("train/loss", "val/loss"):
        epochs = [row["epoch"] for row in history if row[key] is not None]
        ax.plot(epochs, [row[key] for row in history if row[key] is not None], marker="o", label=key)
    ax.set(xlabel="epoch", ylabel="loss per masked token", title=title)
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
