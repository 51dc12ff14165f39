"""The compression flow: from @champion (the teacher) a distilled student, int8 and ONNX variants,
each weighed on the same test rows, and the fastest non-inferior one registered as @compact.

    load -> split -> read @champion -> distil the student -> build the variants -> weigh them
    -> log the runs -> register @compact (after a serving check in a fresh process)
"""

from dataclasses import asdict

from prefect import flow, get_run_logger, runtime, task
from prefect.cache_policies import NO_CACHE

from flows.parameters import CompressParams, flow_parameters
from flows.run_names import run_namer
from tasks.compression import registering
from tasks.compression.registering import Compression
from tasks.compression.student import parameters_of, sized
from tasks.data.tasks import load_dataset, split_dataset
from tasks.infra.lineage import run_lineage
from tasks.infra.params import StudentParams, load_params
from tasks.infra.settings import get_settings
from tasks.registry.store import check_tracking_store, connect
from tasks.training.config import train_config

STAGE = {"cache_policy": NO_CACHE}


@task(name="read_champion", **STAGE)
def read_champion(name: str, folder):
    import mlflow

    from tasks.compression.variants import champion

    return champion(mlflow.MlflowClient(), name, folder)


@task(name="distil_student", **STAGE)
def distil_student(dataset, split, teacher, config, out_dir, temperature: float, soft_weight: float):
    from tasks.compression.distill import distill

    soft = teacher.probabilities(dataset.frame.iloc[split.train][dataset.feature_columns])
    return distill(dataset, split, soft, config, out_dir, temperature, soft_weight)


@task(name="build_variants", **STAGE)
def build_variants(dataset, split, student, teacher, folder):
    from tasks.compression.variants import network_variants, single_network

    test = dataset.frame.iloc[split.test][dataset.feature_columns]
    made, notes = network_variants(
        "student", student.family, student.network, student.network_kwargs, student.preprocessing, folder, test, True
    )
    if (own := single_network(teacher)) is not None:  # the champion's own network, made smaller
        family, network, kwargs, preprocessing = own
        more, more_notes = network_variants("champion", family, network, kwargs, preprocessing, folder, test, False)
        made, notes = made + more, notes + more_notes
    return made, notes


@task(name="weigh_variants", **STAGE)
def weigh_variants(dataset, split, teacher, variants, margin: float, policy):
    from tasks.compression.weighing import judge, weigh

    champion = weigh(teacher, dataset, split)
    return champion, [judge(weigh(v, dataset, split), champion, margin, policy) for v in variants]


@flow(name="compression_pipeline", flow_run_name=run_namer(CompressParams, "compress"))
@flow_parameters(CompressParams)
def compression_pipeline(params: CompressParams) -> Compression:
    """Distil @champion into a smaller network, quantize it to int8 and export it to ONNX; weigh each
    variant against the champion on the same test rows (accuracy, size, latency per row, throughput)
    and register the fastest non-inferior one, smaller and faster than the champion, as @compact."""
    return _compress(params)


def _compress(params: CompressParams) -> Compression:
    import mlflow

    from tasks.compression.weighing import compact_choice
    from tasks.registry.serving import FreshProcess

    settings = get_settings()
    project = load_params(settings)
    check_tracking_store(settings)
    choices = _compression_choices(params, project.compression)
    seed = params.seed if params.seed is not None else project.seed
    dataset = load_dataset(params.dataset)
    config = _student_config(params, project, dataset, seed)
    parts = split_dataset(dataset, project.split, seed)
    run_dir = settings.outputs_dir / dataset.name / f"compress-{str(runtime.flow_run.id or 'local')[:8]}"
    experiment_id = connect(settings, dataset.name)
    client = mlflow.MlflowClient()
    with FreshProcess() as process:  # the serving check's: its imports overlap the work
        champion_version, teacher = read_champion(dataset.name, run_dir / "champion")
        config = _sized_to_champion(dataset, config, teacher, project.compression.size_ratio)
        chosen_settings = {**choices, "student": asdict(config)}
        key = registering.compression_key(dataset, champion_version, chosen_settings)
        if (earlier := registering.compressed_before(client, dataset.name, key)) is not None:
            return _unchanged(dataset.name, champion_version, earlier)
        student = distil_student(
            dataset, parts, teacher, config, run_dir / "student", choices["temperature"], choices["soft_weight"]
        )
        variants, notes = build_variants(dataset, parts, student, teacher, run_dir / "variants")
        champion, weighed = weigh_variants(dataset, parts, teacher, variants, choices["margin"], project.promotion)
        _log_weighed([champion, *weighed])
        chosen, reason = compact_choice(weighed, champion)
        champion_tags = client.get_model_version(dataset.name, champion_version).tags
        tags = _run_tags(dataset, key)
        run_params = _run_params(chosen_settings, config.family, student.run_params())
        parent, runs = registering.log_runs(experiment_id, champion_version, champion, weighed, run_params, tags)
        version = None
        if chosen is not None:
            version_tags = _version_tags(tags, chosen, champion_version, champion_tags)
            version, refused = registering.register_compact(
                client, settings, dataset, parts, chosen, runs[chosen.name], version_tags, process
            )
            if refused:
                reason, version = refused, None
        client.set_terminated(parent)
    rows = [registering.row(w) for w in [champion, *weighed]]
    result = Compression(dataset.name, champion_version, parent, version, "; ".join([reason, *notes]), rows)
    _publish(result)
    get_run_logger().info("%s", result.reason)
    return result


def _compression_choices(params: CompressParams, options) -> dict:
    """temperature, soft_weight and margin: the run's over params.yaml's compression section."""
    return {
        "temperature": params.temperature or options.temperature,
        "soft_weight": params.soft_weight if params.soft_weight is not None else options.soft_weight,
        "margin": params.margin if params.margin is not None else options.margin,
    }


def _student_config(params: CompressParams, project, dataset, seed: int):
    """The student's config: the run's family, else params.yaml's student for the modality."""
    student_params = project.compression.students.get(dataset.modality, StudentParams())
    family = params.family or student_params.family
    own = student_params.settings() if family == student_params.family else {}  # another family: its own settings
    return train_config(
        project, dataset.modality, family, seed, max_epochs=params.max_epochs, tuned=own, tuned_from="compression"
    )


def _sized_to_champion(dataset, config, teacher, size_ratio: float):
    """The student's config with at most 1/size_ratio of the champion's parameters."""
    config = sized(dataset, config, int(teacher.parameters / size_ratio))
    get_run_logger().info(
        "student: %s %s, %d parameters (the champion has %d)",
        config.family, config.network, parameters_of(dataset, config), teacher.parameters,
    )  # fmt: skip
    return config


def _unchanged(dataset: str, champion_version: str, earlier) -> Compression:
    """An identical run registered and decided before: point at its version, do nothing new."""
    reason = f"unchanged: v{earlier.version} was made from this champion with these settings and code"
    get_run_logger().info("%s", reason)
    return Compression(dataset, champion_version, None, str(earlier.version), reason, [], reused=True)


def _log_weighed(weighed: list) -> None:
    for each in weighed:
        verdict = each.verdict.reason if each.verdict else "the reference"
        get_run_logger().info(
            "%s: test accuracy %.4f, %.1f KB, p50 %.3f ms/row, %.0f rows/s at 256; %s",
            each.name, each.test_accuracy, each.cost.size_bytes / 1024, each.cost.p50_ms,
            each.cost.rows_per_second, verdict,
        )  # fmt: skip


def _run_tags(dataset, key: str) -> dict[str, str]:
    """The compression run's tags: the data, the lineage and the key an identical run would find."""
    flow_run_id = str(runtime.flow_run.id or "none")
    lineage = run_lineage(flow_run_id, str(runtime.flow_run.name))
    return {"dataset": dataset.name, "data_hash": dataset.data_hash, **lineage, "compression_key": key}


def _version_tags(tags: dict, chosen, champion_version: str, champion_tags: dict) -> dict[str, str]:
    """The @compact version's: the run's, the variant's, the champion it was made from and the verdict."""
    return {
        **tags,
        "family": chosen.served.family,
        "variant": chosen.name,
        "compact_of": champion_version,
        "validation": champion_tags.get("validation", "unknown"),
        **chosen.verdict.tags(),
    }


def _run_params(chosen_settings: dict, family: str, student_settings: dict) -> dict:
    """The run's settings, the student's family and its settings under student.*."""
    return {
        **chosen_settings,
        "student": family,
        **{f"student.{k}": v for k, v in student_settings.items()},
    }


def _publish(result: Compression) -> None:
    from prefect.artifacts import create_markdown_artifact

    from tasks.infra.runs import artifact_key

    create_markdown_artifact(
        key=f"compression-{artifact_key(result.dataset)}", markdown=result.markdown(), description=result.reason[:500]
    )
