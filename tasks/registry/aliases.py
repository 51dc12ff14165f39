"""Who holds @champion, and how it moves: by the gate, by hand (`mlpipe promote`), back
(`mlpipe rollback`). Every move is appended to a history kept on the registered model, which is
what a rollback walks back."""

import json

from tasks.infra.errors import MlpipeError

HISTORY_TAG = "champion_history"  # JSON list of versions that were champion, oldest first
MARKER_TAG = "promotion"  # lifecycle.DECISION_TAG (this module sits below lifecycle): why a version is champion


def move_champion(client, name: str, version: str) -> None:
    """Point @champion at the version, then append it to the recorded history. A crash between the
    two leaves the alias ahead of the history, which `champion_history` completes when read (and
    tasks/registry/lifecycle.py's `finish_move` writes down). The caller writes the version's
    `promotion` tag (why)."""
    history = champion_history(client, name)
    if history and history[-1] == str(version):
        return  # champion already
    client.set_registered_model_alias(name, "champion", version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps([*history, str(version)]))
    drop_stale_compact(client, name, version)


def drop_stale_compact(client, name: str, champion: str) -> None:
    """@compact is a variant judged against one champion (its `compact_of` tag): a new champion
    leaves it without one until `mlpipe compress` runs again."""
    compact = client.get_registered_model(name).aliases.get("compact")
    if compact is not None and client.get_model_version(name, compact).tags.get("compact_of") != str(champion):
        client.delete_registered_model_alias(name, "compact")


def champion_history(client, name: str) -> list[str]:
    """The versions that were champion, oldest first, ending with the one @champion points at:
    the recorded history, completed by the alias when a move stopped between the two."""
    model = client.get_registered_model(name)
    history = json.loads(model.tags.get(HISTORY_TAG, "[]"))
    current = model.aliases.get("champion")
    if current is not None and (not history or history[-1] != str(current)):
        history.append(str(current))  # a move that stopped between the alias and the history
    return history


def rollback(client, name: str) -> tuple[str, str]:
    """Give @champion back to the previous champion; (from version, to version). The history is
    written first: a crash before the alias moves leaves both as they were."""
    history = champion_history(client, name)
    if len(history) < 2:
        raise MlpipeError(f"{name} has no earlier champion to roll back to (history: {history or 'empty'})")
    current, previous = history[-1], history[-2]
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[:-1]))
    client.set_registered_model_alias(name, "champion", previous)
    drop_stale_compact(client, name, previous)
    client.set_model_version_tag(name, current, "rolled_back", f"champion until rollback to v{previous}")
    client.set_model_version_tag(name, previous, MARKER_TAG, f"champion again: rollback from v{current}")
    return current, previous


def promote_by_hand(settings, name: str, version: str) -> None:
    """`mlpipe promote`: @champion to a version that loads and predicts in a fresh process, under
    the lock a pipeline's promotion gate takes."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from tasks.registry.promotion_lock import promotion_lock
    from tasks.registry.serving import FreshProcess, serving_check

    client = mlflow.MlflowClient(settings.tracking_uri)
    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise MlpipeError(f"{name} has no version {version}") from None
    with FreshProcess() as process:
        serving_check(process, settings.tracking_uri, name, version)
    with promotion_lock(settings, name):
        move_champion(client, name, version)
        client.set_model_version_tag(
            name, version, MARKER_TAG, f"champion: promoted by hand (mlpipe promote --version {version})"
        )


def roll_back(settings, name: str) -> tuple[str, str]:
    """`mlpipe rollback`, under the promotion lock: (from version, to version)."""
    import mlflow

    from tasks.registry.promotion_lock import promotion_lock

    with promotion_lock(settings, name):
        return rollback(mlflow.MlflowClient(settings.tracking_uri), name)
