"""Whether a study's best settings replace params.yaml's: the best trial (on the search rows) is
kept only when it beats the defaults' trial on the check rows, which chose nothing, by more than
chance. The same paired bootstrap as the promotion gate: the lower bound of the interval of
(best - defaults) accuracy over the check rows must be above zero. A tie, a gain the bootstrap
cannot tell from noise, or defaults never measured keep the defaults."""

from tasks.tuning.study import CHECK, CHECKED, DEFAULTS, unpack


def verdict(trials: list, confidence: float, samples: int, seed: int) -> dict:
    """On one snapshot of the study's trials: the best and the defaults' trial numbers, their
    check figures, `kept` ("tuned" or "defaults") and `why`. `samples` and `seed` are the
    bootstrap's."""
    from optuna.trial import TrialState

    from tasks.evaluation.statistics import MIN_DIFFERING_ROWS, paired_bootstrap, rows_judged

    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(finished, key=lambda t: t.value, default=None)
    # A retried or doubly enqueued defaults' trial has copies: the finished one counts.
    ours = [t for t in trials if t.user_attrs.get(DEFAULTS)]
    defaults = next((t for t in ours if t.state == TrialState.COMPLETE), ours[0] if ours else None)
    found = {
        "best_trial": best.number if best else None,
        "defaults_trial": defaults.number if defaults else None,
        "check": {
            "tuned": best.user_attrs.get(CHECK) if best else None,
            "defaults": defaults.user_attrs.get(CHECK) if defaults else None,
        },
    }
    if best is None:
        return found | {"kept": "defaults", "why": "no trial finished"}
    if defaults is None or defaults.state != TrialState.COMPLETE:
        return found | {"kept": "defaults", "why": "params.yaml's settings have no finished trial to compare with"}
    if best.user_attrs.get(DEFAULTS):
        return found | {"kept": "defaults", "why": "no trial beat params.yaml's settings on the search rows"}
    tuned, kept = unpack(best.user_attrs[CHECKED]), unpack(defaults.user_attrs[CHECKED])
    delta, (low, high) = paired_bootstrap(tuned, kept, samples, confidence, seed)
    differ, judged = rows_judged(tuned, kept)
    interval = f"{confidence:.0%} interval [{low:+.4f}, {high:+.4f}]"
    facts = f"{len(tuned)} check rows: accuracy {delta:+.4f} against the defaults, {interval} ({judged})"
    if delta <= 0:
        return found | {"kept": "defaults", "why": f"{facts}: no better than the defaults"}
    if differ < MIN_DIFFERING_ROWS:
        why = f"{facts}: {differ} differing rows are too few to tell a gain from chance"
        return found | {"kept": "defaults", "why": why}
    if low > 0:
        return found | {"kept": "tuned", "why": facts}
    return found | {"kept": "defaults", "why": f"{facts}: the gain may be chance"}
