"""The pretraining flow: a BERT-style encoder from scratch, by masked-language modelling on a text
data set's own texts, registered as `<name>-encoder` for `mlpipe run --backbone models:/...`.

    load -> split -> gather the training and validation texts (never the test rows) and --texts
    files -> learn a WordPiece vocabulary and pretrain -> log the run and register the encoder
"""

from prefect import flow, get_run_logger, runtime

from flows.parameters import PretrainParams, flow_parameters
from flows.run_names import run_namer
from tasks.data.splitting import test_rows_digest
from tasks.data.tasks import load_dataset, split_dataset
from tasks.infra.lineage import run_lineage
from tasks.infra.params import load_params
from tasks.infra.settings import get_settings
from tasks.pretraining import report
from tasks.pretraining.tasks import gather_corpus, pretrain_encoder, publish_encoder, register_encoder
from tasks.registry.store import check_tracking_store, connect


@flow(name="pretraining_pipeline", flow_run_name=run_namer(PretrainParams, "pretrain"))
@flow_parameters(PretrainParams)
def pretraining_pipeline(params: PretrainParams) -> dict:
    """Pretrain a BERT-style encoder from scratch with masked-language modelling on a text data
    set's training and validation texts (never its test rows) and any unlabelled text files, and
    register it in MLflow as `<name>-encoder`, the backbone `mlpipe run --backbone` fine-tunes."""
    return _pretrain(params)


def _pretrain(params: PretrainParams) -> dict:
    logger = get_run_logger()
    settings = get_settings()
    project = load_params(settings)
    check_tracking_store(settings)  # an unreachable MLflow server stops the run before any training
    seed = params.seed if params.seed is not None else project.seed
    chosen = {"max_epochs": params.max_epochs, "timeout_minutes": params.timeout_minutes}
    options = project.pretraining.model_copy(update={k: v for k, v in chosen.items() if v is not None})
    dataset = load_dataset(params.dataset)
    parts = split_dataset(dataset, project.split, seed)  # the training flow's split: its test rows stay out
    corpus = gather_corpus(dataset, parts, params.texts)
    logger.info(
        "corpus: %d texts (%d training and validation rows, %s; %d equal to a test row left out)",
        len(corpus.texts), corpus.dataset_rows, f"{sum(corpus.file_lines.values())} lines of {len(params.texts)} files",
        corpus.dropped_as_test,
    )  # fmt: skip
    flow_run_id = str(runtime.flow_run.id or "none")
    folder = settings.outputs_dir / dataset.name / f"pretrain-{flow_run_id[:8]}" / "encoder"
    experiment_id = connect(settings, dataset.name)
    result = pretrain_encoder(corpus, options, seed, folder)
    tags = {
        **run_lineage(flow_run_id, str(runtime.flow_run.name)),
        "test_rows": test_rows_digest(dataset, parts),  # the rows it never read: fine-tuning on this data checks them
    }
    registered = register_encoder(experiment_id, dataset, corpus, result, tags)
    summary = report.summary(dataset.name, registered.uri, registered.run_id, corpus, result)
    publish_encoder(summary)
    logger.info("registered %s (%d epochs, final val/loss %s)", registered.uri, result.epochs, result.final_val_loss)
    return summary
