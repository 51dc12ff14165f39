"""The data stage as Prefect tasks."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.data.loading import load
from tasks.data.splitting import split_parts
from tasks.infra.retrying import transient_retries
from tasks.infra.settings import get_settings
from tasks.types import Dataset


# Retried while another process holds DVC's lock (TransientError); bad data fails at once.
@task(name="load_dataset", cache_policy=NO_CACHE, **transient_retries(4))
def load_dataset(dataset: str) -> Dataset:
    return load(dataset, get_settings())


split_dataset = task(split_parts, name="split_dataset", cache_policy=NO_CACHE)
