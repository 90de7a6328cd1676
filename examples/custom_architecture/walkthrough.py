"""The whole path for a new architecture: adapter plugin -> zoo -> generator -> initialize.

The architecture here is ``TinyEncoderDecoder`` from the adapter template plugin
(``adapters/template``, installed with ``pip install -e adapters/template``); for your own
network, copy that plugin and change its adapter (see README.md next to this file).

    python examples/custom_architecture/walkthrough.py --tiny --workdir /tmp/custom   # CI size, seconds
    python examples/custom_architecture/walkthrough.py --workdir ./custom             # a usable size

The same steps on the command line:

    weightinit zoo build --arch template:tiny,width=8 --out custom/zoo
    weightinit train --zoo custom/zoo --out custom/generator
    weightinit sample "sketch to photo" --generator custom/generator -o tiny_init.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def get_options(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--workdir", type=Path, default=Path("custom_architecture_run"), help="where the zoo and the generator go"
    )
    p.add_argument("--arch", default="template:tiny,width=8", help="arch string the plugin builds")
    p.add_argument("--concept", default="sketch to photo", help="the concept to initialise for at the end")
    p.add_argument("--generator", default=None, help="a generator already trained for --arch: skip steps 2 and 3")
    p.add_argument("--n_concepts", type=int, default=12, help="training concepts in the zoo (plus one held-out)")
    p.add_argument("--base_steps", type=int, default=300)
    p.add_argument("--concept_steps", type=int, default=100)
    p.add_argument("--generator_steps", type=int, default=1000)
    p.add_argument(
        "--finetune_steps",
        type=int,
        default=50,
        help="fine-tune steps after initialize, to compare with the default init",
    )
    p.add_argument("--tiny", action="store_true", help="everything at toy size: for CI")
    opt = p.parse_args(argv)
    if opt.tiny:
        opt.n_concepts, opt.base_steps, opt.concept_steps, opt.generator_steps, opt.finetune_steps = 3, 4, 3, 6, 3
    return opt


def main(argv=None) -> None:
    opt = get_options(argv)
    from weightinit import initialize, plugins
    from weightinit.errors import WeightinitError

    # 1. The adapter plugin: installed as a distribution, found through the `weightinit` entry point.
    try:
        adapter = plugins.adapter_for_arch(opt.arch)
    except WeightinitError as exc:
        sys.exit(f"{exc}\nInstall the template plugin first: pip install -e adapters/template")
    model = plugins.build_model(opt.arch)
    layout = adapter.layout(model)
    print(
        f"1. adapter {adapter.name!r} ({type(adapter).__module__}): {opt.arch} has {len(layout)} generated tensors, "
        f"{layout.num_params:,} values in {layout.num_blocks} blocks (layout {layout.fingerprint})",
        flush=True,
    )

    # 2. A zoo: one base model trained on a mix of concepts, then one aligned LoRA per concept.
    from weightinit.concepts.catalog import default_catalog
    from weightinit.images import PhotoSet
    from weightinit.zoo.build import ZooBuilder
    from weightinit.zoo.manifest import ZooConfig

    catalog = default_catalog()
    concepts = catalog.by_split("train")[: opt.n_concepts] + catalog.by_split("heldout")[:1]
    config = ZooConfig(
        arch=opt.arch,
        base_steps=opt.base_steps,
        concept_steps=opt.concept_steps,
        lora_rank=2,
        pool_size=8 if opt.tiny else 128,
        test_pairs=4 if opt.tiny else 32,
        base_pool_per_concept=4 if opt.tiny else 16,
        batch_size=2 if opt.tiny else 8,
    )
    generator_dir = opt.generator
    if generator_dir is None:
        zoo_dir = opt.workdir / "zoo"
        manifest = ZooBuilder(
            zoo_dir, config, concepts, photos=PhotoSet.load(None), log=lambda s: None
        ).run()  # resumes if killed
        print(
            f"2. zoo {zoo_dir}: base + {len(manifest.concepts)} concepts (layout {manifest.layout_fingerprint})",
            flush=True,
        )

        # 3. A generator trained on the zoo's training concepts.
        from weightinit.generator.training import GeneratorTrainingConfig, train_generator

        tiny_denoiser = {"hidden_dim": 32, "num_layers": 2, "emb_dim": 32, "attn_dim": 16, "attn_heads": 2}
        gen_config = GeneratorTrainingConfig(
            denoiser_kwargs=tiny_denoiser if opt.tiny else {},
            steps=opt.generator_steps,
            batch_size=8 if opt.tiny else 64,
            warmup_steps=2 if opt.tiny else 50,
            save_every=max(opt.generator_steps // 2, 1),
            log_every=max(opt.generator_steps // 5, 1),
        )
        generator_dir = opt.workdir / "generator"
        if not (generator_dir / "generator_config.json").is_file():
            train_generator(zoo_dir, generator_dir, gen_config, resume=True, progress=False)  # resumes if killed
    print(f"3. generator {generator_dir}", flush=True)

    # 4. The one line, on the user's own network (built by their code, not by weightinit).
    from weightinit.adapters.base import ArchSpec
    from weightinit.adapters.pix2pix_networks import init_normal_
    from weightinit_adapter_template.network import TinyEncoderDecoder

    width = int(ArchSpec.parse(opt.arch).options.get("width", 8))
    torch.manual_seed(0)
    netG = init_normal_(TinyEncoderDecoder(width=width))  # the training script's default init
    default_init = {k: v.clone() for k, v in netG.state_dict().items()}
    report = initialize(netG, opt.concept, generator=generator_dir, seed=0)
    print(f"4. {report}", flush=True)

    # 5. Fine-tune from both starting points with the pix2pix recipe and compare.
    from weightinit.pairs import ProceduralPairs
    from weightinit.recipe import RecipeConfig, fine_tune

    pairs = ProceduralPairs(catalog.resolve(opt.concept), size=config.image_size)
    train, test = pairs.sample(config.pool_size, "train", seed=1), pairs.sample(config.test_pairs, "test", seed=1)
    baseline = init_normal_(TinyEncoderDecoder(width=width))
    baseline.load_state_dict(default_init)
    recipe = RecipeConfig(batch_size=config.batch_size)
    for name, net in (("default init", baseline), ("weightinit", netG)):
        curve = fine_tune(net, train, opt.finetune_steps, config=recipe, eval_pairs=test).curve
        print(
            f"5. {name:>12}: PSNR {curve[0].metrics['psnr']:.2f} dB at step 0, "
            f"{curve[-1].metrics['psnr']:.2f} dB after {opt.finetune_steps} steps",
            flush=True,
        )


if __name__ == "__main__":
    main()
