"""CycleGAN with weightinit: both generators start from generated weights.

``netG_A`` (A -> B) gets the concept, ``netG_B`` (B -> A) its reverse, in one call:
``initialize(CycleGANPair(netG_A, netG_B), concept)``. The discriminators keep the default
init. The training step is the reference CycleGAN one without the identity loss: LSGAN losses
for both directions plus the cycle-consistency L1 (weight 10), on unpaired images.

Run it (the bundled generator covers unet_64 with ngf=16 and batch norm, the defaults here):

    python examples/cyclegan_train.py --concept "sketch to photo"
    python examples/cyclegan_train.py --tiny --generator ./my-generator    # seconds on a CPU
"""

from __future__ import annotations

import argparse
import itertools

import torch
from torch import nn

from weightinit.adapters.pix2pix_networks import NLayerDiscriminator, UnetGenerator, get_norm_layer, init_normal_

UNET_DEPTH = {"unet_64": 6, "unet_128": 7, "unet_256": 8}


def get_options(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--concept", default="sketch to photo", help="the A -> B edit (netG_A); netG_B gets its reverse")
    p.add_argument("--reverse", default=None, help="the B -> A text (default: the catalog's reverse, or 'Y to X')")
    p.add_argument("--generator", default=None, help="weight generator folder or hub id (default: the bundled one)")
    p.add_argument("--netG", default="unet_64", choices=sorted(UNET_DEPTH))
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--ndf", type=int, default=32)
    p.add_argument("--norm", default="batch", choices=["batch", "instance", "none"])
    p.add_argument("--n_steps", type=int, default=400)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--lambda_cycle", type=float, default=10.0)
    p.add_argument("--crop_size", type=int, default=64)
    p.add_argument("--n_train", type=int, default=256)
    p.add_argument("--n_test", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="a few steps on tiny nets (ngf=4): for CI")
    opt = p.parse_args(argv)
    if opt.tiny:
        opt.ngf, opt.ndf, opt.n_steps, opt.batch_size, opt.n_train, opt.n_test = 4, 8, 3, 2, 8, 4
    return opt


def unwrap(net: nn.Module) -> nn.Module:
    return net.module if hasattr(net, "module") else net


class CycleGANModel:
    """``netG_A``: A -> B, ``netG_B``: B -> A; ``netD_A`` judges B images, ``netD_B`` judges A images."""

    def __init__(self, opt: argparse.Namespace):
        self.opt = opt
        norm = get_norm_layer(opt.norm)
        depth = UNET_DEPTH[opt.netG]
        self.netG_A = UnetGenerator(3, 3, depth, opt.ngf, norm_layer=norm)
        self.netG_B = UnetGenerator(3, 3, depth, opt.ngf, norm_layer=norm)
        self.netD_A = NLayerDiscriminator(3, opt.ndf, 3, norm_layer=norm)
        self.netD_B = NLayerDiscriminator(3, opt.ndf, 3, norm_layer=norm)

    def setup(self) -> None:
        for net in (self.netG_A, self.netG_B, self.netD_A, self.netD_B):
            init_normal_(net)
        betas = (0.5, 0.999)
        self.optimizer_G = torch.optim.Adam(
            itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()), lr=self.opt.lr, betas=betas
        )
        self.optimizer_D = torch.optim.Adam(
            itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()), lr=self.opt.lr, betas=betas
        )

    @staticmethod
    def gan_loss(pred: torch.Tensor, real: bool) -> torch.Tensor:  # LSGAN, the CycleGAN default
        return nn.functional.mse_loss(pred, torch.full_like(pred, float(real)))

    def optimize_parameters(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, float]:
        fake_B, fake_A = self.netG_A(real_A), self.netG_B(real_B)
        rec_A, rec_B = self.netG_B(fake_B), self.netG_A(fake_A)
        for d in (self.netD_A, self.netD_B):
            d.requires_grad_(False)
        loss_G = (
            self.gan_loss(self.netD_A(fake_B), True)
            + self.gan_loss(self.netD_B(fake_A), True)
            + self.opt.lambda_cycle * (nn.functional.l1_loss(rec_A, real_A) + nn.functional.l1_loss(rec_B, real_B))
        )
        self.optimizer_G.zero_grad()
        loss_G.backward()
        self.optimizer_G.step()
        for d in (self.netD_A, self.netD_B):
            d.requires_grad_(True)
        loss_D = 0.5 * (
            self.gan_loss(self.netD_A(real_B), True)
            + self.gan_loss(self.netD_A(fake_B.detach()), False)
            + self.gan_loss(self.netD_B(real_A), True)
            + self.gan_loss(self.netD_B(fake_A.detach()), False)
        )
        self.optimizer_D.zero_grad()
        loss_D.backward()
        self.optimizer_D.step()
        return {"G": loss_G.item(), "D": loss_D.item()}


@torch.no_grad()
def psnr(netG: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    from weightinit.recipe import batch_statistics  # norms on batch statistics, running stats untouched

    with batch_statistics(netG):
        fake = netG(inputs)
    mse = (((fake + 1) / 2).clamp(0, 1) - (targets + 1) / 2).pow(2).flatten(1).mean(1).clamp(min=1e-10)
    return float((10 * torch.log10(1 / mse)).mean())  # per image, averaged (images in [-1, 1])


def main(argv=None) -> None:
    opt = get_options(argv)
    torch.manual_seed(opt.seed)

    # Unpaired data: domain A and domain B images come from different photos.
    from weightinit.concepts.catalog import default_catalog
    from weightinit.pairs import ProceduralPairs

    pairs = ProceduralPairs(default_catalog().resolve(opt.concept), size=opt.crop_size)
    domain_A, _ = pairs.sample(opt.n_train, "train", seed=opt.seed)
    _, domain_B = pairs.sample(opt.n_train, "train", seed=opt.seed + 1)
    test_A, test_B = pairs.sample(opt.n_test, "test", seed=opt.seed)  # aligned pairs, only to measure

    model = CycleGANModel(opt)
    model.setup()

    # --- weightinit: both generators, one call (G_A: the concept, G_B: its reverse) -------------
    # (In the reference train.py: after model.setup(opt), and not when opt.continue_train.)
    from weightinit import initialize
    from weightinit.adapters.cyclegan import CycleGANPair

    pair = CycleGANPair(unwrap(model.netG_A), unwrap(model.netG_B))  # holds the same modules: written in place
    report = initialize(pair, opt.concept, generator=opt.generator, reverse=opt.reverse, seed=opt.seed)
    print(report, flush=True)
    print(f"netG_A: {report.directions['netG_A']!r}, netG_B: {report.directions['netG_B']!r}", flush=True)
    # ---------------------------------------------------------------------------------------------

    before_A, before_B = psnr(model.netG_A, test_A, test_B), psnr(model.netG_B, test_B, test_A)
    batches = torch.Generator().manual_seed(opt.seed)
    for step in range(1, opt.n_steps + 1):
        ia = torch.randint(len(domain_A), (opt.batch_size,), generator=batches)
        ib = torch.randint(len(domain_B), (opt.batch_size,), generator=batches)
        losses = model.optimize_parameters(domain_A[ia], domain_B[ib])
        if step % max(opt.n_steps // 5, 1) == 0 or step == opt.n_steps:
            print(f"step {step}/{opt.n_steps}  loss G {losses['G']:.3f}  D {losses['D']:.3f}", flush=True)
    after_A, after_B = psnr(model.netG_A, test_A, test_B), psnr(model.netG_B, test_B, test_A)
    print(
        f"PSNR A->B before {before_A:.2f} dB, after {after_A:.2f} dB; B->A before {before_B:.2f} dB, after "
        f"{after_B:.2f} dB",
        flush=True,
    )


if __name__ == "__main__":
    main()
