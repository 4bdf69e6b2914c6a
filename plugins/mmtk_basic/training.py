"""Losses, optimizers and schedulers (the metrics are in metric_factories.py)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .limits import BelowOne, LearningRate, NonNegative, NonNegativeInt, Positive, Probability, Size


class CrossEntropy(nn.Module):
    """Cross-entropy on class logits, with optional label smoothing.

    Parameters:
        label_smoothing: share of the target probability spread over all classes (0 = none)
    """

    def __init__(self, label_smoothing: Probability = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        return nn.functional.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)


class _ScoreLoss(nn.Module):
    """A regression task loss: reads batch.scores, so the head gives one value per sample."""

    target = "scores"

    def forward(self, pred: Tensor, scores: Tensor) -> Tensor:
        return self.error(pred[..., 0].float(), scores.float())


class L1(_ScoreLoss):
    """Mean absolute error between the predicted and the true score (MMSA's training loss)."""

    error = staticmethod(nn.functional.l1_loss)


class MSE(_ScoreLoss):
    """Mean squared error between the predicted and the true score."""

    error = staticmethod(nn.functional.mse_loss)


def adam(params: list, lr: LearningRate = 1e-3, betas: tuple[BelowOne, BelowOne] = (0.9, 0.999),
         weight_decay: NonNegative = 0.0) -> torch.optim.Optimizer:
    """Adam.

    Parameters:
        lr: learning rate
        betas: decay rates of the running averages of the gradient and of its square
        weight_decay: L2 penalty added to the gradient
    """
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)


def adamw(params: list, lr: LearningRate = 1e-3, betas: tuple[BelowOne, BelowOne] = (0.9, 0.999),
          weight_decay: NonNegative = 0.01) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay).

    Parameters:
        lr: learning rate
        betas: decay rates of the running averages of the gradient and of its square
        weight_decay: decoupled weight decay (applied to the weights, not the gradient)
    """
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)


def sgd(params: list, lr: LearningRate = 0.01, momentum: BelowOne = 0.9, weight_decay: NonNegative = 0.0,
        nesterov: bool = False) -> torch.optim.Optimizer:
    """SGD with momentum.

    Parameters:
        lr: learning rate
        momentum: momentum factor (0 = plain SGD)
        weight_decay: L2 penalty added to the gradient
        nesterov: use Nesterov momentum
    """
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def cosine(optimizer: torch.optim.Optimizer, epochs: int, min_lr: NonNegative = 0.0):
    """Cosine annealing over the stage's epochs (stepped once per epoch).

    Parameters:
        min_lr: learning rate reached at the last epoch
    """
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1), eta_min=min_lr)


def step(optimizer: torch.optim.Optimizer, step_size: Size = 10, gamma: Positive = 0.5):
    """Multiply the learning rate by gamma every step_size epochs.

    Parameters:
        step_size: epochs between two reductions
        gamma: factor applied at each reduction
    """
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


def linear_decay(optimizer: torch.optim.Optimizer, epochs: int, constant_epochs: NonNegativeInt = 0):
    """Constant for constant_epochs, then linear decay to zero (MMIN's schedule).

    Parameters:
        constant_epochs: epochs at the initial learning rate before the linear decay starts
    """
    decay = max(epochs - constant_epochs, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda e: 1.0 if e < constant_epochs else max(0.0, 1 - (e - constant_epochs + 1) / (decay + 1)))
