"""params.yaml's `compression` section (`mlpipe compress`, tasks/compression)."""

from pydantic import ConfigDict, Field

from tasks.infra.base_params import Section
from tasks.infra.vocabulary import Modality, NetworkFamily


class StudentParams(Section):
    """The network `mlpipe compress` distils from @champion: its family and settings over
    families.<modality>.<family>, checked like them; its width then shrinks to fit the champion's
    size (tasks/compression/student.py)."""

    model_config = ConfigDict(extra="allow")  # the family's own keys: channels, embed_dim, max_epochs, ...

    family: NetworkFamily = "cnn"  # the student's network family

    def settings(self) -> dict:
        return dict(self.model_extra or {})


class CompressionParams(Section):
    """`mlpipe compress` (tasks/compression): the student, its distillation, and the gate of @compact."""

    margin: float = Field(0.005, ge=0, lt=1)  # accuracy a variant may lose: the bootstrap's lower bound
    temperature: float = Field(4.0, gt=0)  # softens the teacher's probabilities
    soft_weight: float = Field(0.7, ge=0, le=1)  # the teacher's share of the loss; the true labels have the rest
    size_ratio: float = Field(4.0, ge=1)  # the student has at most 1/size_ratio of the champion's parameters
    students: dict[Modality, StudentParams] = Field(default_factory=dict)  # unset: the modality's cnn as it is
