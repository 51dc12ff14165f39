"""A model card per registered version (Mitchell et al., 2019, cut to what a run knows): the data
and its version, rows and class balance, figures overall and per class, the baseline it was
measured against, the promotion decision, lineage, and what the spec's `card:` says it is for.
Kept as `card/model_card.md` (MLflow's artifact view shows it) and `card/model_card.json`."""

import json
from datetime import UTC, datetime

from tasks.evaluation.scoring import Evaluation
from tasks.evaluation.selection import Choice
from tasks.infra.vocabulary import BASELINE
from tasks.registry.promotion import Decision
from tasks.registry.run_logging import start_tags
from tasks.types import Candidate, Dataset, Split

UNSTATED = "not stated: fill the spec's `card:` section"


def model_card(
    dataset: Dataset,
    split: Split,
    candidates: list[tuple[Candidate, Evaluation]],
    choice: Choice,
    version: str,
    decision: Decision,
    lineage: dict[str, str],
) -> dict:
    from tasks.data.spec import CardSpec, read_spec

    spec = read_spec(dataset.spec_path) if dataset.spec_path else None
    stated = spec.card if spec else CardSpec()
    chosen_model, chosen = next((m, e) for m, e in candidates if m.family == choice.family)
    baseline = next((e for m, e in candidates if m.family == BASELINE), None)
    labels = dataset.frame[dataset.label_column].astype(str)
    per_class = next((json.loads(p.read_text()) for p in chosen.artifacts if p.name == "per_class_metrics.json"), {})
    return {
        "model": {
            "name": dataset.name,
            "version": version,
            "family": choice.family,
            "init": start_tags(chosen_model)["init"],  # scratch, a backbone, or the models:/ URI it was carried from
            "made": _now(),
        },
        "data": {
            "name": dataset.name,
            "version": dataset.data_hash,
            "modality": dataset.modality,
            "description": spec.description if spec else "",
            "rows": {"train": len(split.train), "val": len(split.val), "test": len(split.test)},
            "class_balance": {c: round(v, 4) for c, v in labels.value_counts(normalize=True).sort_index().items()},
        },
        "metrics": {
            "validation": choice.scores.get(choice.family, {}),
            "selected_by": choice.selected_by,  # cv5/accuracy: the validation figures are out-of-fold
            "test": chosen.metrics,
            "per_class": per_class,
        },
        "baseline": None if baseline is None else {"family": BASELINE, "test": baseline.metrics},
        "promotion": {
            "promoted": decision.promote,
            "reason": decision.reason,
            "champion_version": decision.champion_version,
        },
        "lineage": {"data_hash": dataset.data_hash, **lineage},
        "intended_use": stated.intended_use or UNSTATED,
        "limitations": stated.limitations or [UNSTATED],
        "contact": stated.contact or UNSTATED,
    }


def markdown(card: dict) -> str:
    model, data, metrics = card["model"], card["data"], card["metrics"]
    accuracy = metrics["test"].get("test/accuracy")
    lines = [
        f"# Model card: {model['name']} v{model['version']} ({model['family']})",
        "",
        f"**Started from:** {model.get('init', 'scratch')}",
        "",
        f"**Intended use:** {card['intended_use']}",
        "",
        "## Data",
        "",
        f"{data['name']} ({data['modality']}), version `{data['version'][:12]}`. {data['description']}".rstrip(),
        "",
        "| rows | train | val | test |",
        "|---|---|---|---|",
        f"| | {data['rows']['train']} | {data['rows']['val']} | {data['rows']['test']} |",
        "",
        "Class balance: " + ", ".join(f"{c} {s:.1%}" for c, s in data["class_balance"].items()),
        "",
        f"## Figures (the test rows judge; chosen on {metrics.get('selected_by', 'val/accuracy')})",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {name} | {value:.4f} |" for name, value in {**metrics["validation"], **metrics["test"]}.items()),
    ]
    if card["baseline"]:
        base = card["baseline"]["test"].get("test/accuracy")
        versus = f"{accuracy - base:+.4f}" if accuracy is not None and base is not None else "n/a"
        lines += ["", f"**Baseline** (scikit-learn, same rows): test accuracy {base:.4f}; this model {versus}."]
    if metrics["per_class"]:
        lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for name, row in metrics["per_class"].items():
            cells = [f"{row.get(k, 0):.3f}" for k in ("precision", "recall", "f1-score")]
            lines.append(f"| {name} | {' | '.join(cells)} | {int(row.get('support', 0))} |")
    promotion = card["promotion"]
    lines += [
        "",
        "## Promotion",
        "",
        f"{'Promoted to @champion' if promotion['promoted'] else 'Not promoted'}: {promotion['reason']}",
        "",
        "## Known limits",
        "",
        *(f"- {limit}" for limit in card["limitations"]),
        "",
        "## Lineage",
        "",
        *(f"- {key}: `{value}`" for key, value in card["lineage"].items()),
        f"- contact: {card['contact']}",
        f"- card written {model['made']}",
    ]
    return "\n".join(lines) + "\n"


def log_card(card: dict, run_id: str) -> None:
    """Into the version's run, beside its model."""
    import mlflow

    client = mlflow.MlflowClient()
    client.log_text(run_id, markdown(card), "card/model_card.md")
    client.log_dict(run_id, card, "card/model_card.json")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
