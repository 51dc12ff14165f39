"""The pretraining stage as Prefect tasks: gather the corpus, pretrain the encoder, register it."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.infra.pretraining_params import PretrainingParams
from tasks.infra.settings import get_settings
from tasks.pretraining.corpus import Corpus, build_corpus, text_files
from tasks.pretraining.encoder import Pretrained
from tasks.pretraining.registering import RegisteredEncoder
from tasks.types import Dataset, Split

# Nothing is cached: each run trains a new encoder and registers a new version (a retry would
# register a second one, so registering is not retried either).
STAGE = {"cache_policy": NO_CACHE}


@task(name="gather_corpus", **STAGE)
def gather_corpus(dataset: Dataset, split: Split, texts: list[str]) -> Corpus:
    return build_corpus(dataset, split, text_files(texts, get_settings().root))


@task(name="pretrain_encoder", **STAGE)
def pretrain_encoder(corpus: Corpus, params: PretrainingParams, seed: int, folder) -> Pretrained:
    from tasks.pretraining.encoder import pretrain

    return pretrain(corpus.texts, params, seed, folder)


@task(name="register_encoder", **STAGE)
def register_encoder(
    experiment_id: str, dataset: Dataset, corpus: Corpus, result: Pretrained, tags: dict
) -> RegisteredEncoder:
    from tasks.pretraining import registering

    return registering.register_encoder(experiment_id, dataset, corpus, result, tags)


@task(name="publish_encoder", **STAGE)
def publish_encoder(summary: dict) -> None:
    """The encoder's URI and how it trained, as an artifact in the Prefect UI."""
    from prefect.artifacts import create_markdown_artifact

    from tasks.infra.runs import artifact_key
    from tasks.pretraining.report import markdown

    key = f"encoder-{artifact_key(summary['dataset'])}"
    create_markdown_artifact(key=key, markdown=markdown(summary), description=summary["uri"])
