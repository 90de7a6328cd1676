import os

# Tests run offline with one torch thread: on a busy 2-core machine two threads can be 10x slower.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Text embeddings cached on disk go to a folder of this run, never the user's cache.
if "WEIGHTINIT_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["WEIGHTINIT_CACHE"] = tempfile.mkdtemp(prefix="weightinit-test-cache-")
    atexit.register(shutil.rmtree, os.environ["WEIGHTINIT_CACHE"], ignore_errors=True)

import torch

torch.set_num_threads(1)

import pytest  # noqa: E402

# A tiny zoo and a tiny generator trained on it, shared by the tests that need a real one.
TINY_ZOO = dict(
    arch="pix2pix:unet_64,ngf=4",
    base_steps=4,
    concept_steps=3,
    pool_size=8,
    test_pairs=4,
    base_pool_per_concept=4,
    batch_size=2,
    lora_rank=2,
)
TINY_MLP = {"hidden_dim": 32, "num_layers": 2, "emb_dim": 32, "attn_dim": 16, "attn_heads": 2}


@pytest.fixture(scope="session")
def tiny_zoo_dir(tmp_path_factory):
    from weightinit.concepts.catalog import default_catalog
    from weightinit.images import PhotoSet
    from weightinit.zoo.build import ZooBuilder
    from weightinit.zoo.manifest import ZooConfig

    cat = default_catalog()
    chosen = cat.by_split("train")[:3] + cat.by_split("heldout")[:1]
    folder = tmp_path_factory.mktemp("tiny_zoo")
    ZooBuilder(folder, ZooConfig(**TINY_ZOO), chosen, photos=PhotoSet.load(None), log=lambda s: None).run()
    return folder


@pytest.fixture(scope="session")
def tiny_generator_dir(tiny_zoo_dir, tmp_path_factory):
    from weightinit.generator.training import GeneratorTrainingConfig, train_generator

    out = tmp_path_factory.mktemp("tiny_generator") / "generator"
    config = GeneratorTrainingConfig(
        denoiser_kwargs=TINY_MLP, steps=6, batch_size=8, warmup_steps=2, save_every=3, log_every=2, pair_start=False
    )
    train_generator(tiny_zoo_dir, out, config, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_pair_generator_dir(tiny_zoo_dir, tmp_path_factory):
    """The tiny generator trained again with its pair start (``weightinit.pair_start``)."""
    from weightinit.generator.training import GeneratorTrainingConfig, train_generator

    out = tmp_path_factory.mktemp("tiny_pair_generator") / "generator"
    config = GeneratorTrainingConfig(denoiser_kwargs=TINY_MLP, steps=6, batch_size=8, warmup_steps=2, log_every=2)
    train_generator(tiny_zoo_dir, out, config, progress=False)
    return out


@pytest.fixture
def installed_generator():
    """A plugin registry without the installed generator packages; the fixture's value installs
    ``(name, folder)`` through a test plugin's ``register_generators``, as a package would."""
    import importlib.metadata

    from weightinit import plugins
    from weightinit.hookspecs import hookimpl

    packages = [ep.name for ep in importlib.metadata.entry_points(group="weightinit") if "generator" in ep.value]
    saved = os.environ.get(plugins.DISABLE_ENV)
    os.environ[plugins.DISABLE_ENV] = ",".join(filter(None, [saved, *packages]))
    plugins.get_registry(reload=True)

    def install(name, folder):
        class Plugin:
            @hookimpl
            def register_generators(self, register):
                register(name, folder)

        plugins.register_plugin(Plugin(), name=f"test-generator-{name}")

    try:
        yield install
    finally:
        if saved is None:
            os.environ.pop(plugins.DISABLE_ENV, None)
        else:
            os.environ[plugins.DISABLE_ENV] = saved
        plugins.get_registry(reload=True)


HUB_REVISION = "0123456789abcdef0123456789abcdef01234567"


def prefill_hub_cache(folder, cache, monkeypatch, repo_id: str = "someorg/tiny-generator"):
    """``folder`` as the hub repo ``repo_id`` in a local hub cache at ``cache``, read offline by the real
    ``huggingface_hub`` client; returns the snapshot folder."""
    import shutil

    org, name = repo_id.split("/")
    repo = cache / f"models--{org}--{name}"
    shutil.copytree(folder, repo / "snapshots" / HUB_REVISION)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(HUB_REVISION)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    return repo / "snapshots" / HUB_REVISION
