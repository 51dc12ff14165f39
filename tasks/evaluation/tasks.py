"""The evaluation stage as Prefect tasks: choose on the validation rows, then score on the test rows."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.evaluation.cross_validation import choose_by_cv
from tasks.evaluation.scoring import evaluate
from tasks.evaluation.selection import choose_on_validation

choose_candidate = task(choose_on_validation, name="choose_candidate", cache_policy=NO_CACHE)
evaluate_model = task(evaluate, name="evaluate_model", cache_policy=NO_CACHE)
choose_by_folds = task(choose_by_cv, name="choose_by_cross_validation", cache_policy=NO_CACHE)
