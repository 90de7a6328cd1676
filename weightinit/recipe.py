"""The pix2pix fine-tune recipe shared by the zoo, the demo and the benchmark.

Adam 2e-4 with betas (0.5, 0.999), L1 weight 100, a PatchGAN discriminator, vanilla or LSGAN
loss, seeded. Mixed precision (bf16 autocast) on a GPU by default; on a CPU full precision and one
torch thread per process by default, with bf16 autocast on request (the same code path, tested on
CPU at tiny size). Evaluation follows the reference pix2pix ``test.py`` default: batch norm uses the
statistics of the evaluated batch (running statistics are neither used nor changed).
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from weightinit.errors import WeightinitError
from weightinit.metrics import paired_metrics

#: ``--device`` choices of the heavy commands (zoo build, train): ``auto`` is CUDA when visible.
DEVICES = ("auto", "cpu", "cuda")
#: ``--mixed-precision`` choices: ``auto`` is bf16 autocast on a CUDA device that supports it, else none.
MIXED_PRECISIONS = ("auto", "no", "bf16")


def select_device(device: str = "auto", local_rank: int | None = None) -> torch.device:
    """The device of this process: ``cpu``, or CUDA device ``LOCAL_RANK % device_count``.

    ``auto`` is CUDA when a CUDA device is visible, else the CPU; ``cuda`` without one is an error;
    ``cuda:N`` is taken as given. Under ``torchrun`` / ``accelerate launch`` each process takes its
    ``LOCAL_RANK``'s device; with more processes than devices they share them round-robin
    (``torchrun --nproc_per_node 4`` on one GPU puts all four on ``cuda:0``).
    """
    if device not in DEVICES and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise WeightinitError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got {device!r}")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise WeightinitError(
            f"device {device!r} was asked for, but torch sees no CUDA device (torch {torch.__version__})"
        )
    if device.startswith("cuda:"):
        return torch.device(device)
    rank = int(os.environ.get("LOCAL_RANK", "0") or 0) if local_rank is None else int(local_rank)
    return torch.device("cuda", rank % torch.cuda.device_count())


def resolve_mixed_precision(mixed_precision: str, device: torch.device | str) -> str:
    """``"bf16"`` or ``"no"``: ``auto`` is bf16 on a CUDA device with bf16 support, else no autocast."""
    if mixed_precision not in MIXED_PRECISIONS:
        raise WeightinitError(f"mixed precision must be one of {', '.join(MIXED_PRECISIONS)}, got {mixed_precision!r}")
    if mixed_precision != "auto":
        return mixed_precision
    device = torch.device(device)
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "no"


def autocast(device: torch.device | str, mixed_precision: str):
    """The autocast context of a resolved precision (``"no"``: none) on ``device``'s type."""
    if mixed_precision == "no":
        return contextlib.nullcontext()
    if mixed_precision != "bf16":
        raise WeightinitError(f"autocast needs a resolved precision (no or bf16), got {mixed_precision!r}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def device_name(device: torch.device | str) -> str:
    """A human name of the device: the CUDA card's name, or the CPU's."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s))"


@dataclass
class RecipeConfig:
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of the generator and the discriminator."})
    beta1: float = field(default=0.5, metadata={"help": "Adam's beta1."})
    beta2: float = field(default=0.999, metadata={"help": "Adam's beta2."})
    lambda_l1: float = field(default=100.0, metadata={"help": "Weight of the L1 loss beside the adversarial one."})
    gan_mode: str = field(default="vanilla", metadata={"help": "Adversarial loss: 'vanilla' (BCE) or 'lsgan' (MSE)."})
    batch_size: int = field(default=8, metadata={"help": "Pairs per step."})
    ndf: int = field(default=32, metadata={"help": "Filters of the discriminator's first layer."})
    n_layers_d: int = field(default=3, metadata={"help": "Strided layers of the discriminator."})
    seed: int = field(default=0, metadata={"help": "Seed of the batch order (the discriminator's init: seed + 1)."})
    # Adam's first updates move every trained weight by about the learning rate whatever its gradient,
    # which costs a start that is already good some of its quality.
    lr_warmup_steps: int = field(
        default=0, metadata={"help": "Linear warm-up of the generator's learning rate over this many steps (0: none)."}
    )
    d_warmup_steps: int = field(
        default=0,
        metadata={
            "help": "Discriminator-only steps before the first generator step (0: none): the generator's first "
            "adversarial gradients then come from a discriminator that has seen its outputs, not a random one."
        },
    )
    # A start that is already good then keeps what the step-to-step noise of adversarial updates would cost it.
    ema_decay: float = field(
        default=0.0,
        metadata={
            "help": "The generator handed back (and evaluated during the run) is an exponential moving average of "
            "the trained one's weights with this decay (0: none), ramped up as (1 + n) / (10 + n) over the first "
            "updates."
        },
    )

    def __post_init__(self) -> None:
        if self.gan_mode not in ("vanilla", "lsgan"):
            raise ValueError(f"gan_mode must be 'vanilla' or 'lsgan', got {self.gan_mode!r}")
        if self.lr_warmup_steps < 0 or self.d_warmup_steps < 0:
            raise ValueError(f"warm-up steps must be >= 0, got {self.lr_warmup_steps} and {self.d_warmup_steps}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    def to_dict(self) -> dict:
        out = asdict(self)
        # Fields added after benchmark runs were keyed on this dict appear only when set, so those keys stay valid.
        for name in _ADDED_LATER:
            if out[name] == 0:
                del out[name]
        return out


_ADDED_LATER = ("lr_warmup_steps", "d_warmup_steps", "ema_decay")


@dataclass
class CurvePoint:
    step: int
    seconds: float
    metrics: dict[str, float]


@dataclass
class TrainResult:
    steps: int
    seconds: float
    curve: list[CurvePoint] = field(default_factory=list)

    @property
    def final(self) -> dict[str, float]:
        return self.curve[-1].metrics if self.curve else {}


@contextlib.contextmanager
def batch_statistics(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluate as the reference pix2pix test does: norms on batch statistics, no dropout,
    and running statistics left untouched."""
    saved = [(m, m.training, getattr(m, "momentum", None)) for m in model.modules()]
    try:
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()
                m.momentum = 0.0
        yield model
    finally:
        for m, training, momentum in saved:
            m.train(training)
            if momentum is not None:
                m.momentum = momentum


@torch.no_grad()
def evaluate(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 64) -> dict[str, float]:
    device = next(model.parameters()).device
    preds = []
    with batch_statistics(model):
        for i in range(0, len(inputs), batch_size):
            preds.append(model(inputs[i : i + batch_size].to(device)).float().cpu())
    return paired_metrics(torch.cat(preds), targets)


def trivial_baselines(inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """PSNR of "output = input" and of "output = mean target": what a model has to beat."""
    identity = paired_metrics(inputs, targets)["psnr"]
    mean = paired_metrics(targets.mean(0, keepdim=True).expand_as(targets), targets)["psnr"]
    return {"identity_psnr": identity, "mean_target_psnr": mean, "trivial_psnr": max(identity, mean)}


def build_discriminator(config: RecipeConfig, net_g: nn.Module, adapter=None) -> nn.Module:
    """The discriminator ``net_g`` trains against: its adapter's
    (:meth:`~weightinit.adapters.base.Adapter.discriminator`, pix2pix's PatchGAN by default), of
    ``config.ndf`` filters and ``config.n_layers_d`` layers, drawn from seed ``config.seed + 1``
    without touching the caller's random state. ``adapter``: the one that recognises ``net_g``."""
    if adapter is None:
        from weightinit import plugins

        adapter = plugins.adapter_for_model(net_g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        return adapter.discriminator(net_g, ndf=config.ndf, n_layers=config.n_layers_d)


class Pix2PixTrainer:
    """One generator, its discriminator and their optimizers; ``step`` is one pix2pix update.

    With ``config.ema_decay`` the updates go to a copy of ``net_g`` and ``net_g`` itself holds
    their moving average, so whoever holds ``net_g`` (an evaluation during the run, the caller
    afterwards) sees the averaged weights without knowing about it. The discriminator is
    ``adapter``'s (by default the adapter that recognises ``net_g``; see :func:`build_discriminator`).
    """

    def __init__(
        self,
        net_g: nn.Module,
        config: RecipeConfig | None = None,
        params: list[nn.Parameter] | None = None,
        *,
        mixed_precision: str = "auto",
        adapter=None,
    ):
        self.config = config = config or RecipeConfig()
        g_params = params if params is not None else [p for p in net_g.parameters() if p.requires_grad]
        self.averaged, self._averages = None, 0
        if config.ema_decay:
            trained = copy.deepcopy(net_g)
            names = {id(p): n for n, p in net_g.named_parameters()}
            copies = dict(trained.named_parameters())
            self._ema_pairs = [(p, copies[names[id(p)]]) for p in g_params]
            self._ema_buffers = list(zip(net_g.buffers(), trained.buffers()))
            self.averaged, net_g, g_params = net_g, trained, [t for _, t in self._ema_pairs]
        self.net_g = net_g
        self.device = next(net_g.parameters()).device
        self.net_d = build_discriminator(config, net_g, adapter).to(self.device)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(g_params, lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=config.lr, betas=betas)
        warmup = config.lr_warmup_steps
        self.lr_g = (
            torch.optim.lr_scheduler.LambdaLR(self.opt_g, lambda done: min(1.0, (done + 1) / warmup))
            if warmup
            else None
        )
        #: ``"bf16"`` or ``"no"``: ``auto`` is bf16 autocast on a CUDA device, none on a CPU.
        self.mixed_precision = resolve_mixed_precision(mixed_precision, self.device)

    def _gan_loss(self, pred: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(pred) if real else torch.zeros_like(pred)
        if self.config.gan_mode == "lsgan":
            return nn.functional.mse_loss(pred, target)
        return nn.functional.binary_cross_entropy_with_logits(pred, target)

    def _autocast(self):
        return autocast(self.device, self.mixed_precision)

    def _update_d(self, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """One discriminator update: real pairs against generated ones."""
        with self._autocast():
            loss_d = 0.5 * (
                self._gan_loss(self.net_d(torch.cat([x, fake.detach()], 1)), False)
                + self._gan_loss(self.net_d(torch.cat([x, y], 1)), True)
            )
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        return loss_d

    def step_d(self, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """A discriminator-only step for ``d_warmup_steps``: the generator is run on batch statistics
        and changes in nothing, running statistics included."""
        self.net_d.train()
        x, y = inputs.to(self.device), targets.to(self.device)
        with torch.no_grad(), batch_statistics(self.net_g), self._autocast():
            fake = self.net_g(x)
        return {"loss_d": self._update_d(x, y, fake).item()}

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        self.net_g.train()
        self.net_d.train()
        x, y = inputs.to(self.device), targets.to(self.device)
        with self._autocast():
            fake = self.net_g(x)
        loss_d = self._update_d(x, y, fake)
        with self._autocast():
            loss_gan = self._gan_loss(self.net_d(torch.cat([x, fake], 1)), True)
            loss_l1 = nn.functional.l1_loss(fake.float(), y.float())
            loss_g = loss_gan + self.config.lambda_l1 * loss_l1
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if self.lr_g is not None:
            self.lr_g.step()
        if self.averaged is not None:
            self._update_average()
        return {"loss_d": loss_d.item(), "loss_g_gan": loss_gan.item(), "loss_l1": loss_l1.item()}

    @torch.no_grad()
    def _update_average(self) -> None:
        decay = min(self.config.ema_decay, (1 + self._averages) / (10 + self._averages))
        self._averages += 1
        for averaged, trained in self._ema_pairs:
            averaged.lerp_(trained, 1.0 - decay)
        for averaged, trained in self._ema_buffers:  # running statistics follow the trained copy
            averaged.copy_(trained)


def fine_tune(
    net_g: nn.Module,
    train_pairs: tuple[torch.Tensor, torch.Tensor],
    steps: int,
    *,
    config: RecipeConfig | None = None,
    params: list[nn.Parameter] | None = None,
    eval_pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
    eval_every: int = 0,
    on_step: Callable[[int], None] | None = None,
    time_offset: float = 0.0,
    mixed_precision: str = "auto",
) -> TrainResult:
    """Train ``net_g`` for ``steps`` pix2pix steps on batches drawn (seeded) from a pool of pairs.

    With ``eval_pairs``, metrics are recorded at step 0, every ``eval_every`` steps and at the
    end; seconds exclude evaluation time and start at ``time_offset`` (e.g. generation time).
    Training runs on ``net_g``'s device under ``mixed_precision`` (:func:`resolve_mixed_precision`);
    evaluation is in full precision. ``config.d_warmup_steps`` discriminator-only steps run first,
    their seconds counted into the training time.
    """
    config = config or RecipeConfig()
    inputs, targets = train_pairs
    trainer = Pix2PixTrainer(net_g, config, params, mixed_precision=mixed_precision)
    gen = torch.Generator().manual_seed(config.seed)
    result = TrainResult(steps=steps, seconds=time_offset)
    train_seconds = time_offset

    def record(step: int) -> None:
        if eval_pairs is not None:
            result.curve.append(CurvePoint(step, train_seconds, evaluate(net_g, *eval_pairs)))

    record(0)
    if steps and config.d_warmup_steps:
        # Its own batch stream, so the generator's steps see the same batches with or without it.
        warm = torch.Generator().manual_seed(config.seed + 2)
        start = time.perf_counter()
        for _ in range(config.d_warmup_steps):
            idx = torch.randint(len(inputs), (config.batch_size,), generator=warm)
            trainer.step_d(inputs[idx], targets[idx])
        train_seconds += time.perf_counter() - start
    for step in range(1, steps + 1):
        start = time.perf_counter()
        idx = torch.randint(len(inputs), (config.batch_size,), generator=gen)
        trainer.step(inputs[idx], targets[idx])
        train_seconds += time.perf_counter() - start
        if on_step is not None:
            on_step(step)
        if eval_pairs is not None and eval_every and step % eval_every == 0 and step != steps:
            record(step)
    if steps:
        record(steps)
    result.seconds = train_seconds
    return result
