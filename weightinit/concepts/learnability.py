"""Is a concept learnable? A model trained from scratch on its pairs must beat the better of two
trivial baselines on test pairs by a clear margin (3 dB PSNR by default):

- ``identity``: output = input;
- ``mean target``: output = the per-pixel mean of the training targets.

The training function is injected: ``train_fn((inputs, targets)) -> predict_fn`` where the
tensors are ``NCHW`` in ``[-1, 1]`` and ``predict_fn(inputs) -> outputs``. :func:`quick_unet`
gives a small pix2pix U-Net trained with Adam + L1, good enough for a check on a CPU.

Measure from the command line::

    python -m weightinit.concepts.learnability --family tone --per-family 2 --steps 400
    python -m weightinit.concepts.learnability --baselines-only      # every concept, seconds
    python -m weightinit.concepts.learnability --reverses --procs 2 \
        --out weightinit/data/reverse_learnability.json                # which reverses the catalog adds
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from weightinit.adapters.pix2pix_networks import UnetGenerator
from weightinit.concepts.builtin import build_catalog, reverse_concept, reverse_twins
from weightinit.fileio import atomic_write_json
from weightinit.images import PhotoSet
from weightinit.pairs import ProceduralPairs

DEFAULT_MARGIN_DB = 3.0
NOOP_IDENTITY_DB = 35.0


def psnr(pred, target) -> float:
    """Mean per-image PSNR in dB of tensors in ``[-1, 1]`` (measured on the ``[0, 1]`` scale)."""
    import torch

    p = (pred.clamp(-1, 1) + 1) / 2
    t = (target.clamp(-1, 1) + 1) / 2
    mse = ((p - t) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


@dataclass
class LearnabilityResult:
    concept: str
    family: str
    psnr_model: float | None
    psnr_identity: float
    psnr_mean_target: float
    margin_db: float
    seconds: float
    threshold_db: float = DEFAULT_MARGIN_DB

    @property
    def best_baseline(self) -> float:
        return max(self.psnr_identity, self.psnr_mean_target)

    @property
    def passed(self) -> bool:
        return self.psnr_model is not None and self.margin_db >= self.threshold_db

    @property
    def noop(self) -> bool:
        """The edit barely changes the photo: identity is already above 35 dB."""
        return self.psnr_identity > NOOP_IDENTITY_DB

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(passed=self.passed, noop=self.noop, best_baseline=self.best_baseline)
        return d


def baselines(train_targets, test_inputs, test_targets) -> tuple[float, float]:
    """``(identity PSNR, mean-target PSNR)`` on the test pairs."""
    mean = train_targets.mean(0, keepdim=True).expand_as(test_targets)
    return psnr(test_inputs, test_targets), psnr(mean, test_targets)


def measure(
    concept,
    train_fn: Callable | None,
    *,
    photos=None,
    source=None,
    n_train: int = 512,
    n_test: int = 64,
    seed: int = 0,
    size: int = 64,
    threshold_db: float = DEFAULT_MARGIN_DB,
) -> LearnabilityResult:
    """Train with ``train_fn`` on train pairs, compare PSNR with the baselines on test pairs.

    ``train_fn=None`` measures the baselines only (``psnr_model`` None, margin against the
    identity baseline's own value is then meaningless and reported as ``-inf``).
    """
    start = time.perf_counter()
    source = source if source is not None else ProceduralPairs(concept, photos, size=size)
    train = source.sample(n_train, "train", seed)
    test_in, test_tg = source.sample(n_test, "test", seed + 1)
    ident, mean_t = baselines(train[1], test_in, test_tg)
    model_psnr = None
    margin = -math.inf
    if train_fn is not None:
        predict = train_fn(train)
        model_psnr = psnr(predict(test_in), test_tg)
        margin = model_psnr - max(ident, mean_t)
    return LearnabilityResult(
        concept.id, concept.family, model_psnr, ident, mean_t, margin, time.perf_counter() - start, threshold_db
    )


def quick_unet(steps: int = 400, batch_size: int = 8, lr: float = 1e-3, ngf: int = 8, seed: int = 0) -> Callable:
    """A ``train_fn``: ``UnetGenerator(3, 3, num_downs=6, ngf)`` from scratch, Adam + L1."""

    def train_fn(pairs):
        import torch

        inputs, targets = pairs
        torch.manual_seed(seed)
        net = UnetGenerator(3, 3, num_downs=int(math.log2(inputs.shape[-1])), ngf=ngf)
        opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
        g = torch.Generator().manual_seed(seed)
        net.train()
        for _ in range(steps):
            idx = torch.randint(0, inputs.shape[0], (batch_size,), generator=g)
            loss = (net(inputs[idx]) - targets[idx]).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()

        @torch.no_grad()
        def predict(x):
            return torch.cat([net(x[i : i + 64]) for i in range(0, x.shape[0], 64)])

        return predict

    return train_fn


def sample_per_family(concepts, per_family: int) -> list:
    """``per_family`` concepts of each family, spread evenly over its list."""
    by_family: dict[str, list] = {}
    for c in concepts:
        by_family.setdefault(c.family, []).append(c)
    chosen = []
    for fam in sorted(by_family):
        items = by_family[fam]
        k = min(per_family, len(items))
        idx = np.linspace(0, len(items) - 1, k).round().astype(int) if k > 1 else [0]
        chosen.extend(items[i] for i in dict.fromkeys(idx))
    return chosen


def _measure_reverse(args: tuple) -> dict:
    import torch

    concept_id, steps, lr, n_train, n_test = args
    torch.set_num_threads(1)
    concept = next(c for c in build_catalog() if c.id == concept_id)
    r = measure(
        reverse_concept(concept),
        quick_unet(steps=steps, lr=lr),
        photos=PhotoSet.bundled(),
        n_train=n_train,
        n_test=n_test,
    )
    return {"forward": concept_id, **r.to_dict()}


def measure_reverses(
    *, steps: int = 400, lr: float = 1e-3, n_train: int = 512, n_test: int = 64, procs: int = 1
) -> dict:
    """The rule applied to the reverse of every built-in concept that has no exact reverse twin
    in the catalog already; the file the catalog reads to decide which reverses it adds."""
    from concurrent.futures import ProcessPoolExecutor

    concepts = build_catalog()
    twins = reverse_twins(concepts)
    todo = [(c.id, steps, lr, n_train, n_test) for c in concepts if c.id not in twins]
    if procs > 1:
        with ProcessPoolExecutor(procs) as pool:
            rows = list(pool.map(_measure_reverse, todo))
    else:
        rows = [_measure_reverse(t) for t in todo]
    return {
        "rule": f"a pix2pix U-Net trained from scratch ({steps} steps, lr {lr}) beats the better of identity and "
        f"mean target by {DEFAULT_MARGIN_DB} dB test PSNR on the reverse pairs",
        "command": "python -m weightinit.concepts.learnability --reverses",
        "twins": twins,
        "reverses": rows,
    }


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(
        prog="python -m weightinit.concepts.learnability", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--family", action="append", help="only these families (repeatable)")
    ap.add_argument("--concept", action="append", help="only these concept ids (repeatable)")
    ap.add_argument("--split", choices=["train", "heldout"], help="only this split")
    ap.add_argument("--per-family", type=int, default=2, help="concepts measured per family (default 2)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--n-train", type=int, default=512)
    ap.add_argument("--n-test", type=int, default=64)
    ap.add_argument(
        "--baselines-only", action="store_true", help="identity and mean-target PSNR for every selected concept"
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--reverses", action="store_true", help="measure the reverse of every concept; write --out")
    ap.add_argument("--out", help="with --reverses: the measurement file to write")
    ap.add_argument("--procs", type=int, default=1, help="with --reverses: worker processes")
    args = ap.parse_args(argv)

    if args.reverses:
        if not args.out:
            ap.error("--reverses needs --out FILE")
        result = measure_reverses(
            steps=args.steps, lr=args.lr, n_train=args.n_train, n_test=args.n_test, procs=args.procs
        )
        atomic_write_json(args.out, result)
        passed = sum(r["passed"] for r in result["reverses"])
        print(
            f"{passed} of {len(result['reverses'])} reverses learnable; {len(result['twins'])} concepts have a reverse "
            f"twin; wrote {args.out}"
        )
        return 0

    concepts = build_catalog()
    if args.split:
        concepts = [c for c in concepts if c.split == args.split]
    if args.family:
        concepts = [c for c in concepts if c.family in args.family]
    if args.concept:
        concepts = [c for c in concepts if c.id in args.concept]
    elif not args.baselines_only:
        concepts = sample_per_family(concepts, args.per_family)
    photos = PhotoSet.bundled()
    train_fn = None if args.baselines_only else quick_unet(steps=args.steps, lr=args.lr)
    results = []
    for c in concepts:
        r = measure(c, train_fn, photos=photos, n_train=args.n_train if train_fn else 64, n_test=args.n_test)
        results.append(r)
        if args.json:
            print(json.dumps(r.to_dict()), flush=True)
        else:
            model = f"{r.psnr_model:6.2f}" if r.psnr_model is not None else "     -"
            flag = ("NO-OP " if r.noop else "") + ("" if train_fn is None else ("ok" if r.passed else "FAIL"))
            print(
                f"{c.family:14s} {c.id:34s} model {model}  identity {r.psnr_identity:6.2f}  mean "
                f"{r.psnr_mean_target:6.2f}  "
                f"margin {r.margin_db:+6.2f}  {r.seconds:5.1f}s {flag}",
                flush=True,
            )
    bad = [r for r in results if r.noop or (train_fn is not None and not r.passed)]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
