"""weightinit.hub: folders as they are, hub ids from a pre-filled cache offline, one line otherwise."""

from __future__ import annotations

import pytest
from conftest import HUB_REVISION as REVISION
from conftest import prefill_hub_cache
from typer.testing import CliRunner

from weightinit import hub
from weightinit.errors import CheckpointError
from weightinit.generators import CONFIG_NAME, LAYOUT_NAME, GeneratorInfo


@pytest.fixture
def cached(tiny_generator_dir, tmp_path, monkeypatch):
    """The tiny generator as the hub repo ``someorg/tiny-generator`` in a local hub cache, offline."""
    return prefill_hub_cache(tiny_generator_dir, tmp_path / "hub", monkeypatch)


def test_a_folder_is_itself_and_a_hub_id_is_its_cached_snapshot(cached, tiny_generator_dir):
    assert hub.resolve(tiny_generator_dir) == tiny_generator_dir
    assert hub.resolve("someorg/tiny-generator") == cached
    assert hub.resolve("someorg/tiny-generator", revision=REVISION, files=[CONFIG_NAME, LAYOUT_NAME]) == cached
    info = GeneratorInfo("someorg/tiny-generator", kind="extra")
    assert info.arch == GeneratorInfo(tiny_generator_dir, kind="extra").arch


@pytest.mark.parametrize(
    "reference, said",
    [
        ("someorg/not-cached", r"in the local hub cache \(HF_HUB_OFFLINE is set\)"),
        ("./no/such/folder", "not a hub id of the form org/name"),
        ("a/b/c", "not a hub id of the form org/name"),
    ],
)
def test_what_cannot_be_found_is_one_line(cached, reference, said):
    with pytest.raises(CheckpointError, match=said) as info:
        hub.resolve(reference)
    assert "\n" not in str(info.value)


def test_a_cached_repo_without_the_generator_files_is_told_so(cached):
    (cached / LAYOUT_NAME).unlink()
    with pytest.raises(CheckpointError, match="is not a weightinit generator: it has no layout.json"):
        hub.resolve("someorg/tiny-generator", files=[CONFIG_NAME, LAYOUT_NAME])


def test_download_refuses_offline_and_says_where_it_put_a_generator(cached, monkeypatch):
    from weightinit.cli import app as app_module

    runner = CliRunner()
    result = runner.invoke(app_module.app, ["generators", "download", "someorg/tiny-generator"])
    assert result.exit_code == 1 and "HF_HUB_OFFLINE is set" in result.output
    # online: the real client's snapshot_download, answered here from the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import huggingface_hub

    real = huggingface_hub.snapshot_download
    monkeypatch.setattr(
        huggingface_hub, "snapshot_download", lambda *a, **k: real(*a, **{**k, "local_files_only": True})
    )
    result = runner.invoke(app_module.app, ["generators", "download", "someorg/tiny-generator"])
    assert result.exit_code == 0, result.output
    assert f"someorg/tiny-generator: pix2pix:unet_64,ngf=4, in the hub cache at {cached}" in result.output
