"""Worker for test_train.py's torchrun test (not collected: no test_ prefix)."""

import hashlib
import sys
from pathlib import Path

import torch
from torch import nn

from winoforge.model.data import make_loader, synthetic_dataset
from winoforge.model.train import OptimConfig, Trainer


def main(run_dir: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    train = make_loader(synthetic_dataset(64, num_classes=3, size=8, seed=1), batch_size=8, shuffle=True, seed=3)
    test = make_loader(synthetic_dataset(24, num_classes=3, size=8, seed=2), batch_size=8)

    def loss_fn(net, x, y):
        return nn.functional.cross_entropy(net(x), y), {}

    trainer = Trainer(model, train, test, OptimConfig(epochs=2, lr=0.1), loss_fn, run_dir, seed=1, progress=False)
    trainer.fit()
    digest = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values())).hexdigest()
    rank = trainer.ctx.rank
    Path(run_dir, f"rank{rank}.txt").write_text(f"{trainer.ctx.world_size} {len(trainer.train_loader.sampler)} {digest}\n")
    # leave the process group together: a rank exiting with gloo's threads alive while its peer still
    # talks aborted the peer once in CI on loaded cores ("terminate called without an active exception")
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
