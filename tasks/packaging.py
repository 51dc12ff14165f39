"""A candidate as the files of its registered model: spec.json and one artifact per member.

tasks/pyfunc_model.py reads them back in the serving process: a network's weights, or the
classical baseline's fitted scikit-learn estimator; an ensemble has one member per candidate it averages.
"""

import json
import pickle
from pathlib import Path

from tasks.baseline import TrainedBaseline
from tasks.selection import Ensemble

PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")


def write_model_files(model, folder: Path) -> dict[str, str]:
    """Write spec.json and the members' artifacts into `folder`; return MLflow's artifacts mapping."""
    members = model.members if isinstance(model, Ensemble) else [model]
    artifacts, described = {}, []
    for index, member in enumerate(members):
        name = f"member_{index}"
        if isinstance(member, TrainedBaseline):
            path = folder / f"{name}.pkl"
            path.write_bytes(pickle.dumps(member.estimator))
            described.append({"kind": "sklearn", "family": member.family, "preprocessing": member.preprocessing})
        else:
            import torch

            path = folder / f"{name}.pt"
            torch.save(member.network.state_dict(), path)
            described.append(
                {
                    "kind": "network",
                    "family": member.family,
                    "network_kwargs": member.network_kwargs,
                    "preprocessing": member.preprocessing,
                }
            )
        described[-1]["artifact"] = name
        artifacts[name] = str(path)
    spec = folder / "spec.json"
    spec.write_text(
        json.dumps({"family": model.family, "classes": model.preprocessing["classes"], "members": described})
    )
    return {"spec": str(spec), **artifacts}


def requirements() -> list[str]:
    """The serving process's packages, pinned to this one's (MLflow would spend seconds inferring them)."""
    import mlflow
    import numpy as np
    import pandas as pd
    import sklearn
    import tokenizers
    import torch

    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"tokenizers=={tokenizers.__version__}",
    ]
