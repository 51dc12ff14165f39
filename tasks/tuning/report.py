"""What a study found: its best trial, its counts and times, Optuna's plots, and a markdown
table for the Prefect UI."""

from pathlib import Path

from tasks.evaluation.selection import SELECTED_BY
from tasks.tuning.study import TuneJob
from tasks.tuning.verdict import verdict


def summarize(study, job: TuneJob) -> dict:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {
        state.name: sum(t.state == state for t in trials)
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    seconds = {
        state.name: round(sum(t.duration.total_seconds() for t in trials if t.state == state and t.duration), 1)
        for state in (TrialState.COMPLETE, TrialState.PRUNED)
    }
    judged = verdict(trials, job.tuning.confidence, job.project.promotion.bootstrap_samples, job.seed)
    best = {t.number: t for t in trials}.get(judged["best_trial"])
    search, check = job.rows()
    return {
        "family": job.family,
        "study": job.study_name,
        **judged,
        "value": best.user_attrs.get(SELECTED_BY, best.value) if best else None,  # on the search rows, no tie-break
        "settings": dict(best.params) if best else {},  # the best trial's, kept or not
        "rows": {"search": len(search), "check": len(check)},
        "counts": counts,
        "seconds": seconds,
        # Epochs each trial ran (one reported figure per epoch), by how it ended.
        "epochs": {
            state.name: [len(t.intermediate_values) for t in trials if t.state == state]
            for state in (TrialState.COMPLETE, TrialState.PRUNED)
        },
        "trials_counted": counts["COMPLETE"] + counts["PRUNED"],
    }


def plot_study(study, out_dir: Path) -> list[Path]:
    """Optuna's optimisation history and parameter importances, as PNG files (matplotlib)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    makers = {"optimization_history": plot_optimization_history}
    if len(finished) >= 2:  # importances need trials to compare
        makers["param_importances"] = plot_param_importances
    for name, make in makers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                axes = make(study)
            except (ValueError, RuntimeError):
                continue  # e.g. every trial had the same settings: no importance to show
        figure = axes.figure if hasattr(axes, "figure") else plt.gcf()
        figure.savefig(out_dir / f"{name}.png", dpi=100, bbox_inches="tight")
        plt.close(figure)
        plots.append(out_dir / f"{name}.png")
    return plots


def tuning_markdown(dataset: str, summaries: list[dict], links: dict[str, str], plots: dict[str, dict]) -> str:
    lines = [
        f"# Tuning of `{dataset}`",
        "",
        "Trials are judged on half of the validation rows (search); the best trial's settings are kept only "
        "if they beat params.yaml's defaults on the other half (check). The test rows are not read.",
        "",
        "| family | best val accuracy (search) | trial | check: best / defaults | kept | finished | pruned | failed "
        "| settings | MLflow |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        value = f"{s['value']:.4f}" if s["value"] is not None else "-"
        check = " / ".join(f"{v:.4f}" if v is not None else "-" for v in (s["check"]["tuned"], s["check"]["defaults"]))
        settings = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in s["settings"].items())
        counts = s["counts"]
        lines.append(
            f"| {s['family']} | {value} | {s['best_trial']} | {check} | {s['kept']} | {counts['COMPLETE']} | "
            f"{counts['PRUNED']} | "
            f"{counts['FAIL']} | {settings} | [study run]({links.get(s['family'], '')}), "
            + ", ".join(f"[{name.replace('_', ' ')}]({url})" for name, url in plots.get(s["family"], {}).items())
            + " |"
        )
    return "\n".join(lines)
