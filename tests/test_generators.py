"""The generator registry: what is installed, which layout each serves, the reference flags, the pick by layout."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import typer
from conftest import TINY_MLP, TINY_ZOO
from typer.testing import CliRunner

from weightinit import generators as registry
from weightinit import plugins
from weightinit.adapters.pix2pix_networks import ResnetGenerator, UnetGenerator, get_norm_layer
from weightinit.errors import CheckpointError, LayoutMismatch
from weightinit.generators import (
    arch_layout_fingerprint,
    generator_for_layout,
    generator_for_model,
    installed_generators,
    model_layout_fingerprint,
    reference_flags,
)

RESNET_ARCH = "pix2pix:resnet_6blocks,ngf=4,norm=instance"


def reference_define_G(netG: str, ngf: int, norm: str, no_dropout: bool, input_nc: int = 3, output_nc: int = 3):
    """The reference ``networks.define_G`` dispatch (without its init), driven by train.py's flags."""
    norm_layer, use_dropout = get_norm_layer(norm), not no_dropout
    if netG.startswith("resnet_"):
        n_blocks = {"resnet_9blocks": 9, "resnet_6blocks": 6}[netG]
        return ResnetGenerator(
            input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout, n_blocks=n_blocks
        )
    num_downs = {"unet_128": 7, "unet_256": 8}[netG]
    return UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer=norm_layer, use_dropout=use_dropout)


def _fingerprint(model) -> str:
    return plugins.adapter_for_model(model).layout(model).fingerprint


@pytest.mark.parametrize(
    "arch, image_size, args",
    [
        (
            "pix2pix:unet_256",
            None,
            "--netG unet_256 --ngf 64 --norm batch --no_dropout --load_size 286 --crop_size 256",
        ),
        (
            "pix2pix:unet_256,ngf=64,norm=batch,dropout=true",
            None,
            "--netG unet_256 --ngf 64 --norm batch --load_size 286 --crop_size 256",
        ),
        (
            "pix2pix:unet_128,ngf=32,norm=instance",
            None,
            "--netG unet_128 --ngf 32 --norm instance --no_dropout --load_size 143 --crop_size 128",
        ),
        (
            "pix2pix:resnet_9blocks,ngf=64,norm=instance",
            256,
            "--netG resnet_9blocks --ngf 64 --norm instance --no_dropout --load_size 286 --crop_size 256",
        ),
        (
            "cyclegan:resnet_9blocks",
            None,
            "--netG resnet_9blocks --ngf 64 --norm instance --no_dropout --load_size 286 --crop_size 256",
        ),
        (
            "pix2pix:resnet_6blocks,ngf=8,norm=none,input_nc=1",
            64,
            "--netG resnet_6blocks --ngf 8 --norm none --no_dropout --input_nc 1 --load_size 286 --crop_size 256",
        ),
    ],
)
def test_reference_flags_build_exactly_the_layout_the_arch_has(arch, image_size, args):
    flags, note = reference_flags(arch, image_size)
    assert str(flags) == args
    assert "dropout has no weights" in note
    if "resnet" in arch:  # any size serves: the flags give the reference's default, the note the zoo's crops
        assert "serves any multiple of 4 px" in note and (
            f"{image_size}-px crops" in note if image_size else "not recorded" in note
        )
    if not arch.startswith("cyclegan:"):  # the pair's layout is two generators; each is the flags' network
        built = reference_define_G(flags.netG, flags.ngf, flags.norm, flags.no_dropout, flags.input_nc, flags.output_nc)
        assert _fingerprint(built) == arch_layout_fingerprint(arch)
        other_dropout = reference_define_G(
            flags.netG, flags.ngf, flags.norm, not flags.no_dropout, flags.input_nc, flags.output_nc
        )
        assert _fingerprint(other_dropout) == arch_layout_fingerprint(arch)


@pytest.mark.parametrize(
    "arch, why",
    [
        ("pix2pix:unet_64,ngf=16", "no 'unet_64'"),
        ("pix2pix:resnet_6blocks,padding=zero", "pads with reflect"),
        ("generic:anything", "does not build the reference"),
    ],
)
def test_archs_the_reference_cannot_build_serve_no_flags(arch, why):
    flags, note = reference_flags(arch)
    assert flags is None and why in note


def test_arch_layout_comes_from_the_meta_device_and_equals_a_real_build():
    for arch in ("pix2pix:unet_64,ngf=16", "pix2pix:unet_256", "pix2pix:resnet_9blocks,norm=instance"):
        assert arch_layout_fingerprint(arch) == _fingerprint(plugins.build_model(arch))
    assert arch_layout_fingerprint("pix2pix:unet_256") != arch_layout_fingerprint("pix2pix:unet_256,norm=instance")


def test_the_bundled_generator_is_listed_with_why_it_serves_no_reference_flags():
    infos = installed_generators()
    bundled = infos[0]
    assert bundled.kind == "bundled" and bundled.name == "bundled" and bundled.arch == "pix2pix:unet_64,ngf=16"
    assert bundled.flags is None and "define_G has no 'unet_64'" in bundled.serves()
    row = bundled.to_dict(with_layout_file=True)
    assert row["layout_fingerprint"] == _fingerprint(plugins.build_model(bundled.arch))
    assert (
        row["weights_layout_fingerprint"]
        == row["weights_layout"]["fingerprint"]
        == bundled.config["layout_fingerprint"]
    )


@pytest.fixture(scope="module")
def resnet_generator_dir(tmp_path_factory):
    """A real tiny CycleGAN-style generator (ResNet, instance norm) trained on a real tiny zoo."""
    from weightinit.concepts.catalog import default_catalog
    from weightinit.generator.training import GeneratorTrainingConfig, train_generator
    from weightinit.images import PhotoSet
    from weightinit.zoo.build import ZooBuilder
    from weightinit.zoo.manifest import ZooConfig

    zoo = tmp_path_factory.mktemp("resnet_zoo")
    config = ZooConfig(**{**TINY_ZOO, "arch": RESNET_ARCH})
    ZooBuilder(
        zoo, config, default_catalog().by_split("train")[:2], photos=PhotoSet.load(None), log=lambda s: None
    ).run()
    out = tmp_path_factory.mktemp("resnet_generator") / "resnet-6-instance"
    train_generator(
        zoo,
        out,
        GeneratorTrainingConfig(
            denoiser_kwargs=TINY_MLP, steps=4, batch_size=8, warmup_steps=2, save_every=4, log_every=2
        ),
        progress=False,
    )
    return out


@pytest.fixture
def installed(resnet_generator_dir, installed_generator):
    """The ResNet generator installed as a package would install it (``register_generators``)."""
    installed_generator(resnet_generator_dir.name, resnet_generator_dir)
    return resnet_generator_dir


def test_installed_and_extra_generators_are_listed_in_order(installed, tiny_generator_dir):
    infos = installed_generators([tiny_generator_dir])
    assert [(g.kind, g.name) for g in infos] == [
        ("bundled", "bundled"),
        ("installed", installed.name),
        ("extra", tiny_generator_dir.name),
    ]
    resnet, tiny = infos[1], infos[2]
    # a ResNet is fully convolutional: the reference's default sizes, and the note names the zoo's 64-px crops
    assert (
        resnet.arch == RESNET_ARCH
        and str(resnet.flags)
        == "--netG resnet_6blocks --ngf 4 --norm instance --no_dropout --load_size 286 --crop_size 256"
    )
    assert "its zoo trained on 64-px crops" in resnet.flags_note
    assert tiny.arch == TINY_ZOO["arch"] and tiny.flags is None


def test_listing_reads_the_json_configs_only(tiny_generator_dir, tmp_path):
    only_json = tmp_path / "configs-only"
    only_json.mkdir()
    for name in ("generator_config.json", "layout.json"):
        shutil.copy(tiny_generator_dir / name, only_json / name)
    info = installed_generators([only_json])[-1]
    row = info.to_dict(with_layout_file=True)  # no weight file exists, so none was read
    assert row["arch"] == TINY_ZOO["arch"] and row["layout_fingerprint"] == arch_layout_fingerprint(TINY_ZOO["arch"])
    assert row["weights_layout"]["blocks"] > 0


def test_generator_for_layout_picks_the_match_or_lists_what_is_installed(installed, tiny_generator_dir):
    from weightinit.adapters.cyclegan import CycleGANPair

    resnet = plugins.build_model(RESNET_ARCH)
    assert generator_for_model(resnet, [tiny_generator_dir]).name == installed.name
    named = generator_for_layout(arch_layout_fingerprint(RESNET_ARCH), [installed])  # named by path: it wins
    assert named.kind == "extra" and named.reference == str(installed)
    unet = plugins.build_model(TINY_ZOO["arch"])
    assert generator_for_model(unet, [tiny_generator_dir]).reference == str(tiny_generator_dir)
    assert (
        generator_for_model(plugins.build_model(RESNET_ARCH).to(torch.bfloat16)).name == installed.name
    )  # dtype does not count
    pair = CycleGANPair(plugins.build_model(RESNET_ARCH), plugins.build_model(RESNET_ARCH))
    assert model_layout_fingerprint(pair) == _fingerprint(resnet)
    assert generator_for_model(pair).name == installed.name
    with pytest.raises(LayoutMismatch) as err:
        generator_for_model(unet)  # the tiny U-Net is not installed, only named above
    message = str(err.value)
    assert err.value.actual == _fingerprint(unet) and "\n" not in message
    assert "bundled = pix2pix:unet_64,ngf=16" in message and "define_G has no 'unet_64'" in message
    assert (
        f"{installed.name} = {RESNET_ARCH}" in message
        and "`--netG resnet_6blocks --ngf 4 --norm instance --no_dropout --load_size 286 --crop_size 256`" in message
    )


def test_the_picked_generator_initialises_a_cyclegan_pair(installed):
    from weightinit import initialize
    from weightinit.adapters.cyclegan import CycleGANPair

    torch.manual_seed(0)
    pair = CycleGANPair(plugins.build_model(RESNET_ARCH), plugins.build_model(RESNET_ARCH))
    before = {k: v.clone() for k, v in pair.state_dict().items()}
    info = generator_for_model(pair)
    report = initialize(pair, "photo to sepia", generator=info.reference)
    assert report.parameters_set > 0
    assert any(not torch.equal(before[k], v) for k, v in pair.state_dict().items())


def test_initialize_without_a_generator_picks_the_installed_one_that_fits(installed):
    from weightinit import initialize

    torch.manual_seed(0)
    resnet = plugins.build_model(RESNET_ARCH)
    report = initialize(resnet, "photo to sepia")  # no generator=: the registry's match, not the bundled one
    assert report.generator == f"generator {installed.name}" and report.parameters_set > 0
    unet = plugins.build_model(TINY_ZOO["arch"])
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    with pytest.raises(
        LayoutMismatch, match="no installed generator serves pix2pix:unet_64,ngf=4,norm=batch: "
    ) as info:
        initialize(unet, "photo to sepia")
    assert "ngf 4 is narrower than 16" in str(info.value) and "a resnet network does not carry to a unet" in str(
        info.value
    )
    assert all(torch.equal(before[k], v) for k, v in unet.state_dict().items())


def test_an_installation_without_generators_says_so(monkeypatch, tmp_path, installed_generator):
    monkeypatch.setattr(registry, "bundled_generator_path", lambda: tmp_path / "nothing")
    assert installed_generators() == []
    with pytest.raises(LayoutMismatch, match="no bundled generator"):
        generator_for_layout(arch_layout_fingerprint("pix2pix:unet_256"))


def test_a_hub_id_absent_from_the_offline_cache_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    info = installed_generators(["nobody-here/no-such-generator"])[-1]
    with pytest.raises(CheckpointError, match="local hub cache"):
        _ = info.layout_fingerprint
    with pytest.raises(CheckpointError, match="not a hub id"):
        _ = installed_generators(["./missing/folder"])[-1].config


def _cli():
    from weightinit.cli.generators import generators

    app = typer.Typer()
    app.command()(generators)
    return app


def test_generators_command_lists_as_json_and_matches_an_arch(installed, tiny_generator_dir):
    runner = CliRunner()
    listed = runner.invoke(_cli(), [str(tiny_generator_dir), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [r["name"] for r in rows] == ["bundled", installed.name, tiny_generator_dir.name]
    assert rows[1]["reference_flags"]["args"][:2] == ["--netG", "resnet_6blocks"] and rows[0]["reference_flags"] is None
    match = runner.invoke(_cli(), ["--arch", RESNET_ARCH, "--json"])
    assert match.exit_code == 0 and json.loads(match.output)["generator"]["name"] == installed.name
    table = runner.invoke(_cli(), [], env={"COLUMNS": "300"})
    assert table.exit_code == 0 and "resnet_6blocks" in table.output
    widened = runner.invoke(_cli(), ["--arch", "pix2pix:unet_256", "--json"])  # the bundled unet_64, carried
    assert widened.exit_code == 0, widened.output
    served = json.loads(widened.output)
    assert served["generator"]["name"] == "bundled" and served["exact"] is False
    assert served["transfer"] == "widened from ngf 16 to 64; deepened from 6 to 8 U-Net levels (level 4 repeated)"
    missing = runner.invoke(_cli(), ["--arch", "pix2pix:unet_256,ngf=8"])
    assert isinstance(missing.exception, LayoutMismatch) and "no installed generator serves" in str(missing.exception)


def test_readme_table_is_rewritten_between_its_markers(tmp_path):
    from weightinit.errors import WeightinitError
    from weightinit.generators import README_END, README_START, installed_generators, write_readme_table

    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{README_START}\nold table\n{README_END}\n\nafter\n")
    rows = [g.to_dict() for g in installed_generators()]
    write_readme_table(readme, rows)
    text = readme.read_text()
    assert "old table" not in text and text.startswith("# title\n\n") and text.endswith("\n\nafter\n")
    bundled = next(r for r in rows if r["kind"] == "bundled")
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {bundled['name']} |"))
    step0 = bundled["quality"]["held-out PSNR at step 0, median dB"]
    assert (
        f"`{bundled['arch']}`" in line and "define_G has no 'unet_64'" in line and f"{step0['generated_1']:.2f}" in line
    )
    write_readme_table(readme, rows)  # idempotent
    assert readme.read_text() == text
    readme.write_text("no markers\n")
    with pytest.raises(WeightinitError, match="no <!-- generators:start -->"):
        write_readme_table(readme, rows)
    assert readme.read_text() == "no markers\n"


def test_a_plugin_ships_a_generator_and_bad_or_duplicate_registrations_are_warnings(
    resnet_generator_dir, installed_generator, tmp_path
):
    from weightinit import initialize, plugins
    from weightinit.hookspecs import hookimpl

    installed_generator("shipped", resnet_generator_dir)
    (tmp_path / "half-copied").mkdir()  # no generator_config.json: not a generator

    class Careless:
        @hookimpl
        def register_generators(self, register):
            register("shipped", resnet_generator_dir)  # taken by the first plugin
            register("bundled", resnet_generator_dir)  # the bundled one's name
            register("half", tmp_path / "half-copied")
            register("fine.one", resnet_generator_dir)

    plugins.register_plugin(Careless(), name="careless")
    with pytest.warns(UserWarning) as caught:
        names = [g.name for g in installed_generators() if g.kind == "installed"]
    assert names == ["shipped", "fine.one"]
    messages = " | ".join(str(w.message) for w in caught)
    assert "already registered by 'test-generator-shipped'" in messages
    assert "named 'bundled'" in messages and "holds no generator_config.json" in messages
    assert "'careless'" in messages
    torch.manual_seed(0)
    report = initialize(plugins.build_model(RESNET_ARCH), "photo to sepia", generator="shipped")  # by its name
    assert report.parameters_set > 0
