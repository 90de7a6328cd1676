"""The command line: exit codes (0 ok, 1 known error with one line, 2 usage), plugins, blocks commands."""

from __future__ import annotations

import json
import textwrap
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from weightinit import plugins
from weightinit.cli.app import app, register_plugin_commands

ARCH = "pix2pix:unet_64,ngf=8,norm=batch"  # 458,579 parameters, batch-norm buffers included
runner = CliRunner()


def run(args, code=0, env=None):
    result = runner.invoke(app, [str(a) for a in args], env=env)
    shown = f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        shown += f"\nexception: {result.exception!r}"
    assert result.exit_code == code, shown
    return result


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def fresh_registry(monkeypatch):
    """Plugins reloaded for the test (after monkeypatching sys.path / env) and restored afterwards."""

    def reload():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return plugins.get_registry(reload=True)

    yield reload
    monkeypatch.undo()
    reload()


def fake_distribution(tmp_path, monkeypatch, entry_points: dict[str, str], modules: dict[str, str]):
    """A distribution on sys.path that publishes ``entry_points`` in the weightinit group."""
    dist = tmp_path / "fakeplugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugins\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[weightinit]\n{lines}\n")
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A wrapped (``module.``) checkpoint to encode, and a second model's checkpoint to apply onto."""
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    source = plugins.build_model(ARCH)
    with torch.no_grad():
        for buffer in source.buffers():
            if buffer.is_floating_point():
                buffer.uniform_(0.5, 1.5)
    save_file({f"module.{k}": v.contiguous() for k, v in source.state_dict().items()}, folder / "source.safetensors")
    target = plugins.build_model(ARCH)
    torch.save(target.state_dict(), folder / "target.pt")
    return folder, source.state_dict(), target.state_dict()


# --- root -----------------------------------------------------------------------------------
def test_version():
    from weightinit import __version__

    assert run(["--version"]).stdout.strip() == f"weightinit {__version__}"


def test_help_lists_builtin_commands():
    out = run(["--help"]).stdout
    for name in ("layout", "encode", "decode", "apply", "plugins"):
        assert name in out


def test_usage_errors_exit_2():
    run(["no-such-command"], code=2)
    run(["layout"], code=2)  # missing ARCH
    run(["layout", ARCH, "--block-size", "0"], code=2)


# --- plugins --------------------------------------------------------------------------------
def test_plugins_json_fields():
    infos = json.loads(run(["plugins", "--json"]).stdout)
    assert isinstance(infos, list) and infos
    for info in infos:
        assert {"name", "version", "hooks", "adapters"} <= set(info)
    by_name = {info["name"]: info for info in infos}
    assert "pix2pix" in by_name["pix2pix"]["adapters"]
    assert "register_adapters" in by_name["pix2pix"]["hooks"]


def test_broken_plugin_is_a_warning(tmp_path, monkeypatch, fresh_registry):
    fake_distribution(
        tmp_path,
        monkeypatch,
        {"broken_import": "no_such_module_for_weightinit", "broken_register": "broken_register_plugin"},
        {
            "broken_register_plugin": """
                from weightinit import hookimpl

                @hookimpl
                def register_adapters(register):
                    register(object)
            """
        },
    )
    fresh_registry()
    result = run(["plugins", "--json"])
    names = {info["name"] for info in json.loads(result.stdout)}
    assert "pix2pix" in names and not names & {"broken_import", "broken_register"}
    assert "broken_import" in result.stderr and "broken_register" in result.stderr


def test_disable_plugins(monkeypatch, fresh_registry):
    monkeypatch.setenv("WEIGHTINIT_DISABLE_PLUGINS", "cyclegan, pix2pix")
    fresh_registry()
    names = {info["name"] for info in json.loads(run(["plugins", "--json"]).stdout)}
    assert "generic" in names and not names & {"cyclegan", "pix2pix"}
    result = run(["layout", ARCH], code=1)
    assert "no adapter named 'pix2pix'" in result.stderr


def test_generic_is_essential_and_the_built_ins_need_no_install(monkeypatch, fresh_registry):
    monkeypatch.setenv("WEIGHTINIT_DISABLE_PLUGINS", "generic,pix2pix")
    registry = fresh_registry()
    assert {"generic", "cyclegan"} <= set(registry.adapters) and "pix2pix" not in registry.adapters
    monkeypatch.delenv("WEIGHTINIT_DISABLE_PLUGINS")
    # a source tree that was never installed publishes no entry points: the built-ins come from code
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", lambda **kw: [])
    registry = fresh_registry()
    assert {"pix2pix", "cyclegan", "generic"} <= set(registry.adapters)
    assert {p.name for p in registry.plugins} == {name for name, _ in plugins.BUILTIN_PLUGINS}
    from weightinit.concepts.catalog import default_catalog

    assert len(default_catalog()) > 100


def test_misspelled_hookimpl_fails_at_start_up(tmp_path, monkeypatch, fresh_registry):
    from weightinit.cli.app import main

    fake_distribution(
        tmp_path,
        monkeypatch,
        {"typo": "typo_plugin"},
        {
            "typo_plugin": """
                from weightinit import hookimpl

                @hookimpl
                def register_adapter(register):
                    pass
            """
        },
    )
    monkeypatch.setattr(plugins, "_registry", None)
    with pytest.raises(SystemExit) as exit_info:
        main(["plugins"])
    assert exit_info.value.code == 1
    with pytest.raises(Exception, match="register_adapter"):
        fresh_registry()


def test_plugin_commands_and_a_failing_one(monkeypatch, capsys):
    from weightinit import hookimpl

    class GoodCommands:
        @staticmethod
        @hookimpl
        def register_commands(app):
            @app.command("hello-plugin")
            def hello():
                """Say hello from a plugin."""
                print("hello from a plugin")

    class BadCommands:
        @staticmethod
        @hookimpl
        def register_commands(app):
            raise RuntimeError("boom")

    saved = list(app.registered_commands), list(app.registered_groups)
    plugins.register_plugin(GoodCommands, name="good-commands")
    plugins.register_plugin(BadCommands, name="bad-commands")
    try:
        register_plugin_commands(app)
        assert "bad-commands" in capsys.readouterr().err
        assert "hello from a plugin" in run(["hello-plugin"]).stdout
    finally:
        plugins.unregister_plugin("good-commands")
        plugins.unregister_plugin("bad-commands")
        app.registered_commands[:], app.registered_groups[:] = saved


# --- layout ---------------------------------------------------------------------------------
def test_layout_json_and_table():
    data = json.loads(run(["layout", ARCH, "--json", "--block-size", "128"]).stdout)
    assert {"fingerprint", "num_blocks", "block_size", "num_params", "slots"} <= set(data)
    layout = plugins.get_adapter("pix2pix").layout(plugins.build_model(ARCH), block_size=128)
    assert (data["fingerprint"], data["num_blocks"], data["block_size"], data["num_params"]) == (
        layout.fingerprint,
        layout.num_blocks,
        128,
        458_579,
    )
    table = run(["layout", ARCH, "--block-size", "128"]).stdout
    assert layout.fingerprint in table and "458,579" in table


def test_shapes_only_builds_put_every_tensor_on_meta_without_touching_torch_init():
    """``layout``/``encode``/``decode`` build under ``accelerate.init_empty_weights``: no memory,
    ``torch.nn.init`` untouched, and the reference init skips meta tensors, so torch's compiler
    stack (a second to import) is never pulled in. A fresh interpreter, to see what it imports."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "normal = torch.nn.init.normal_\n"
        "from weightinit.cli.blocks import _build\n"
        "for arch in ('pix2pix:unet_256', 'cyclegan:resnet_9blocks,ngf=64'):\n"
        "    model, _ = _build(arch, meta=True)\n"
        "    assert all(t.is_meta for t in [*model.parameters(), *model.buffers()]), arch\n"
        "assert torch.nn.init.normal_ is normal\n"
        "assert 'torch._dynamo' not in sys.modules, 'a meta build imported torch._dynamo'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_bad_arch_is_one_line_exit_1():
    result = run(["layout", "pix2pix"], code=1)
    assert len(error_lines(result)) == 1 and "ADAPTER:NAME" in result.stderr


def test_debug_shows_traceback():
    result = run(["layout", "nope:x"], code=1, env={"WEIGHTINIT_DEBUG": "1"})
    assert "Traceback" in result.stderr and "AdapterError" in result.stderr
    assert "Traceback" not in run(["layout", "nope:x"], code=1, env={"WEIGHTINIT_DEBUG": ""}).stderr


# --- encode / decode / apply ----------------------------------------------------------------
def test_round_trip_is_bitwise(tmp_path, checkpoints):
    folder, source, target = checkpoints
    blocks = tmp_path / "g.blocks.safetensors"
    run(["encode", folder / "source.safetensors", "--arch", ARCH, "-o", blocks])

    run(["decode", blocks, "-o", tmp_path / "canonical.safetensors"])
    canonical = load_file(tmp_path / "canonical.safetensors")
    adapter = plugins.get_adapter("pix2pix")
    model = plugins.build_model(ARCH)
    assert set(canonical) == {c for _, c in adapter.canonical_names(model)}

    run(["decode", blocks, "--arch", ARCH, "-o", tmp_path / "native.safetensors"])
    native = load_file(tmp_path / "native.safetensors")
    params = dict(model.named_parameters())
    assert set(native) == set(params)
    for key, value in native.items():
        assert torch.equal(value.view(torch.int32), source[key].view(torch.int32)), key
    model.load_state_dict(native, strict=False)

    out = tmp_path / "applied.safetensors"
    run(["apply", blocks, folder / "target.pt", "--arch", ARCH, "-o", out])
    applied = load_file(out)
    assert set(applied) == set(target)  # the full state dict, buffers included
    for key, value in applied.items():
        expected = source[key] if key in params else target[key]  # buffers come from the checkpoint
        assert torch.equal(value, expected), key


class NotATensor:
    """Pickled into a .pt file: weightinit must refuse it, never unpickle it."""


def test_pickled_object_is_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"weight": NotATensor()}, evil)
    out = tmp_path / "out.blocks"
    result = run(["encode", evil, "--arch", ARCH, "-o", out], code=1)
    assert len(error_lines(result)) == 1 and "weights_only=True" in result.stderr
    assert not out.exists()


def test_failures_leave_no_output(tmp_path, checkpoints):
    folder, _, _ = checkpoints
    blocks = tmp_path / "g.blocks.safetensors"
    run(["encode", folder / "source.safetensors", "--arch", ARCH, "-o", blocks])
    other = "pix2pix:unet_64,ngf=4,norm=batch"
    cases = [
        (["encode", folder / "source.safetensors", "--arch", other, "-o", "{out}"], "out.blocks"),
        (["decode", blocks, "--arch", other, "-o", "{out}"], "out.safetensors"),
        (["decode", blocks, "-o", "{out}"], "out.pt"),
        (["apply", blocks, folder / "target.pt", "--arch", other, "-o", "{out}"], "out.safetensors"),
        (
            ["apply", folder / "source.safetensors", folder / "target.pt", "--arch", ARCH, "-o", "{out}"],
            "out.safetensors",
        ),
    ]
    for args, name in cases:
        out = tmp_path / "failed" / name
        result = run([str(out) if a == "{out}" else a for a in args], code=1)
        assert len(error_lines(result)) == 1, result.stderr
        assert not out.exists() and not list(out.parent.glob(".*.tmp")), args


def test_layout_json_names_native_keys_and_the_resnet_norm_default():
    data = json.loads(run(["layout", "pix2pix:resnet_9blocks,ngf=4", "--json"]).stdout)
    native = dict(plugins.get_adapter("pix2pix").canonical_names(plugins.build_model("pix2pix:resnet_9blocks,ngf=4")))
    assert [s["native"] for s in data["slots"]] == list(native)
    assert data["options"]["norm"] == "batch" and "instance" in data["note"]
    text = run(["layout", "pix2pix:resnet_9blocks,ngf=4"]).stdout
    assert "CycleGAN's reference default is instance norm" in " ".join(text.split())
    assert json.loads(run(["layout", "cyclegan:resnet_9blocks,ngf=4", "--json"]).stdout)["note"] is None


def test_concepts_preview_writes_the_format_the_suffix_names(tmp_path):
    from PIL import Image

    for suffix, fmt in ((".jpg", "JPEG"), (".png", "PNG")):
        out = tmp_path / f"grid{suffix}"
        run(["concepts", "preview", "sepia-light", "-o", out, "--n", "2", "--size", "16"])
        with Image.open(out) as image:
            assert image.format == fmt
    result = run(["concepts", "preview", "sepia-light", "-o", tmp_path / "grid.xyz", "--n", "2"], code=1)
    assert len(error_lines(result)) == 1 and not (tmp_path / "grid.xyz").exists()


def test_the_root_help_and_import_weightinit_do_not_import_torch():
    """`weightinit --help` lists every command from the source of its module, and `import weightinit`
    exports lazily: neither pays for torch (a second and a half on a CPU)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import weightinit\n"
        "from weightinit.cli.app import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:3]\n"
        "print('no torch')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "no torch" in out.stdout and "sample" in out.stdout and "generators" in out.stdout
