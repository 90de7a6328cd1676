"""A pix2pix training script in the style of the reference code, plus weightinit's one line.

The structure follows pytorch-CycleGAN-and-pix2pix: options, a model whose constructor (the
reference ``create_model``) applies the default init and builds the optimizers, ``setup()`` that
loads checkpoints (``--continue_train``) and wraps the nets in DDP, then the training loop.
The only weightinit-specific part is the marked block between the two: the default init has run,
and the generator is not wrapped yet, so both modes work there, also under DDP; it uses the same
seed on every rank and is skipped when resuming. ``--init_mode lora`` hands the LoRA factors to
the optimizer the model already built (``optimizer=``); the saved ``latest_net_G`` still has the
plain network's keys (merged weights), so ``--continue_train`` loads it.

Run it (the bundled generator covers unet_64 with ngf=16 and batch norm, the defaults here):

    python examples/pix2pix_train.py --concept "sketch to photo"
    python examples/pix2pix_train.py --tiny --generator ./my-generator           # seconds on a CPU
    torchrun --nproc_per_node 2 examples/pix2pix_train.py --tiny --generator ./my-generator
    python examples/pix2pix_train.py --continue_train ...                         # keeps its checkpoint
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

# Your copy of the reference networks.py works the same: weightinit recognises the structure.
from weightinit.adapters.pix2pix_networks import NLayerDiscriminator, UnetGenerator, get_norm_layer, init_normal_

UNET_DEPTH = {"unet_64": 6, "unet_128": 7, "unet_256": 8}


def get_options(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--concept", default="sketch to photo", help="the edit to learn (its pairs come from weightinit's catalog)"
    )
    p.add_argument("--generator", default=None, help="weight generator folder or hub id (default: the bundled one)")
    p.add_argument("--netG", default="unet_64", choices=sorted(UNET_DEPTH))
    p.add_argument("--ngf", type=int, default=16, help="generator filters in the first conv layer")
    p.add_argument("--ndf", type=int, default=32, help="discriminator filters in the first conv layer")
    p.add_argument("--norm", default="batch", choices=["batch", "instance", "none"])
    p.add_argument("--no_dropout", action="store_true", help="no dropout in the generator")
    p.add_argument("--n_steps", type=int, default=400, help="training steps")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--lambda_L1", type=float, default=100.0)
    p.add_argument("--crop_size", type=int, default=64, help="image size")
    p.add_argument("--n_train", type=int, default=256, help="training pairs")
    p.add_argument("--n_test", type=int, default=32, help="test pairs for PSNR")
    p.add_argument("--checkpoints_dir", default="./checkpoints")
    p.add_argument("--name", default="pix2pix_weightinit", help="experiment name (checkpoint folder)")
    p.add_argument("--continue_train", action="store_true", help="resume from the latest checkpoint (no initialize)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--init_mode",
        default="merge",
        choices=["merge", "lora"],
        help="merge: generated weights in the existing parameters; lora: frozen base + trainable LoRA factors",
    )
    p.add_argument(
        "--init_pairs",
        type=int,
        default=0,
        help="make the start from the text and this many train pairs (initialize(..., pairs=...)); 0: text alone",
    )
    p.add_argument("--tiny", action="store_true", help="a few steps on a tiny net (ngf=4): for CI")
    opt = p.parse_args(argv)
    if opt.tiny and opt.generator is None:
        p.error(
            "--tiny builds ngf=4, which the bundled generator (ngf=16) does not cover: pass --generator GEN, "
            "a generator for pix2pix:unet_64,ngf=4 (see examples/README.md), or drop --tiny"
        )
    if opt.tiny:
        opt.ngf, opt.ndf, opt.n_steps, opt.batch_size, opt.n_train, opt.n_test = 4, 8, 3, 2, 8, 4
    return opt


def unwrap(net: nn.Module) -> nn.Module:
    return net.module if hasattr(net, "module") else net


class Pix2PixModel:
    """``netG`` maps A to B; ``netD`` (PatchGAN) judges (A, B) pairs. Vanilla GAN + L1."""

    def __init__(self, opt: argparse.Namespace, device: torch.device):
        self.opt, self.device = opt, device
        norm = get_norm_layer(opt.norm)
        self.netG = UnetGenerator(
            3, 3, UNET_DEPTH[opt.netG], opt.ngf, norm_layer=norm, use_dropout=not opt.no_dropout
        ).to(device)
        self.netD = NLayerDiscriminator(6, opt.ndf, 3, norm_layer=norm).to(device)
        init_normal_(self.netG)  # the default init runs here, as define_G -> init_net does in the reference
        init_normal_(self.netD)
        betas = (opt.beta1, 0.999)  # the reference builds the optimizers in the model's __init__ too
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=opt.lr, betas=betas)
        self.optimizer_D = torch.optim.Adam(self.netD.parameters(), lr=opt.lr, betas=betas)
        self.save_dir = Path(opt.checkpoints_dir) / opt.name

    def setup(self) -> None:
        """The checkpoint (``--continue_train``), then DDP wrapping (the current reference's setup)."""
        if self.opt.continue_train:
            self.load_networks()
        if dist.is_initialized():
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.netG = nn.parallel.DistributedDataParallel(self.netG, device_ids=ids)
            self.netD = nn.parallel.DistributedDataParallel(self.netD, device_ids=ids)

    def set_input(self, real_A: torch.Tensor, real_B: torch.Tensor) -> None:
        self.real_A, self.real_B = real_A.to(self.device), real_B.to(self.device)

    @staticmethod
    def gan_loss(pred: torch.Tensor, real: bool) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(pred, torch.full_like(pred, float(real)))

    def optimize_parameters(self) -> dict[str, float]:
        fake_B = self.netG(self.real_A)
        # D: real pairs vs generated pairs.
        loss_D = 0.5 * (
            self.gan_loss(self.netD(torch.cat([self.real_A, fake_B.detach()], 1)), False)
            + self.gan_loss(self.netD(torch.cat([self.real_A, self.real_B], 1)), True)
        )
        self.optimizer_D.zero_grad()
        loss_D.backward()
        self.optimizer_D.step()
        # G: fool D, and stay close to the target (L1).
        loss_G = self.gan_loss(
            self.netD(torch.cat([self.real_A, fake_B], 1)), True
        ) + self.opt.lambda_L1 * nn.functional.l1_loss(fake_B, self.real_B)
        self.optimizer_G.zero_grad()
        loss_G.backward()
        self.optimizer_G.step()
        return {"D": loss_D.item(), "G": loss_G.item()}

    def save_networks(self) -> None:
        from safetensors.torch import save_file

        self.save_dir.mkdir(parents=True, exist_ok=True)
        for name in ("G", "D"):
            state = {
                k: v.detach().cpu().contiguous() for k, v in unwrap(getattr(self, f"net{name}")).state_dict().items()
            }
            save_file(state, str(self.save_dir / f"latest_net_{name}.safetensors"))

    def load_networks(self) -> None:
        from safetensors.torch import load_file

        for name in ("G", "D"):
            path = self.save_dir / f"latest_net_{name}.safetensors"
            if not path.is_file():
                raise SystemExit(f"--continue_train: no checkpoint at {path}")
            unwrap(getattr(self, f"net{name}")).load_state_dict(load_file(str(path), device=str(self.device)))


@torch.no_grad()
def psnr(netG: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """PSNR (dB) of the generator's outputs, evaluated as the reference test.py does (train-mode norms)."""
    from weightinit.recipe import batch_statistics  # norms on batch statistics, running stats untouched

    device = next(netG.parameters()).device
    with batch_statistics(netG):
        fake = netG(inputs.to(device)).cpu()
    mse = (((fake + 1) / 2).clamp(0, 1) - (targets + 1) / 2).pow(2).flatten(1).mean(1).clamp(min=1e-10)
    return float((10 * torch.log10(1 / mse)).mean())  # per image, averaged (images in [-1, 1])


def main(argv=None) -> None:
    opt = get_options(argv)
    distributed = "WORLD_SIZE" in os.environ  # started by torchrun
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(opt.seed + rank)  # ranks start from different random numbers, as in real runs

    # Data: pairs of the concept built from real photos (your dataset in a real run).
    from weightinit.concepts.catalog import default_catalog
    from weightinit.pairs import ProceduralPairs

    pairs = ProceduralPairs(default_catalog().resolve(opt.concept), size=opt.crop_size)
    train_A, train_B = pairs.sample(opt.n_train, "train", seed=opt.seed)
    test_A, test_B = pairs.sample(opt.n_test, "test", seed=opt.seed)

    model = Pix2PixModel(opt, device)  # create_model(opt): the default init and the optimizers

    # --- weightinit: the one line (after the default init, before the DDP wrap, not when resuming) ---
    if not opt.continue_train:
        from weightinit import initialize

        chosen_on = (train_A[: opt.init_pairs], train_B[: opt.init_pairs]) if opt.init_pairs else None
        report = initialize(
            model.netG,
            opt.concept,
            generator=opt.generator,
            seed=opt.seed,
            pairs=chosen_on,
            mode=opt.init_mode,
            optimizer=model.optimizer_G,
        )  # same seed on every rank
        if rank == 0:
            print(report, flush=True)
    elif rank == 0:
        print(f"weightinit: skipped, continuing from {model.save_dir}", flush=True)
    # ---------------------------------------------------------------------------------------------
    model.setup()  # --continue_train's checkpoint, then the DDP wrap

    before = psnr(unwrap(model.netG), test_A, test_B)
    batches = torch.Generator().manual_seed(opt.seed * 1000 + rank)  # each rank its own batches
    for step in range(1, opt.n_steps + 1):
        idx = torch.randint(len(train_A), (opt.batch_size,), generator=batches)
        model.set_input(train_A[idx], train_B[idx])
        losses = model.optimize_parameters()
        if rank == 0 and (step % max(opt.n_steps // 5, 1) == 0 or step == opt.n_steps):
            print(f"step {step}/{opt.n_steps}  loss D {losses['D']:.3f}  G {losses['G']:.3f}", flush=True)
    after = psnr(unwrap(model.netG), test_A, test_B)
    if rank == 0:
        model.save_networks()
        print(f"PSNR before {before:.2f} dB, after {opt.n_steps} steps {after:.2f} dB (world size {world})", flush=True)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
