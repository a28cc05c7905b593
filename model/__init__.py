"""winoforge.model -- datasets, teachers, Brevitas students with Winograd-domain SRBS layers,
KD losses, gradual pruning, mixed precision, the trainer and the run recipes (README.md, Training)."""
