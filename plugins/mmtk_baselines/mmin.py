"""MMIN (Zhao, Li, Jin, ACL 2021): imagine the missing modalities' embeddings.

Stage 1 of the recipe trains the encoders and a classifier on full modalities. Stage 2 runs
:class:`MMINImagination` as the reconstructor: a frozen copy of the stage-1 encoders (the
*teacher*, copied in by ``init_from`` and kept frozen by ``freeze``) gives the target, a
cascade residual autoencoder imagines the full embedding from the observed one (forward
loss ``mse``), a second cascade maps the imagination back to the observed embedding
(backward loss ``cycle``), and :class:`MMINLatents` hands the concatenated bottlenecks of
the forward cascade to the classifier.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import torch
from torch import Tensor, nn

from mmtk import Fuser, MmtkError, Slot, State

from .autoencoders import CascadeResidualAE, check_layers
from .limits import Dropout, LayerSizes, Size

# state.extras keys private to this plugin (mmin_imagination writes them, mmin_latents and
# tests read them); what other plugins' slots need is in the typed State fields.
LATENTS = "mmin_latents"      # (B, blocks * bottleneck)
IMAGINED = "mmin_imagined"    # (B, M * latent_dim), the imagined embedding


def guard_pretrained_load(part: nn.Module, loaded_flag: Tensor, owner: str, what: str, fix: str) -> None:
    """Set ``loaded_flag`` when ``part`` receives all its tensors through ``load_state_dict``
    (``init_from`` or resume); refuse a load that fills only some of them, which would leave
    a silently half-random copy of the pretraining stage's encoders."""
    def check(module: nn.Module, state_dict: dict, prefix: str, *args: Any) -> None:
        own = list(module.state_dict())
        given = [k for k in own if prefix + k in state_dict]
        if not given:
            return  # this load does not concern the part
        if len(given) != len(own):
            missing = [k for k in own if prefix + k not in state_dict]
            raise MmtkError(
                f"{owner}: {what} received only {len(given)} of its {len(own)} tensors (missing "
                f"e.g. {prefix}{missing[0]}), so it differs from the part copied in; {fix}")
        loaded_flag.fill_(True)
    part.register_load_state_dict_pre_hook(check)


def kaiming_init(module: nn.Module) -> None:
    """MMIN's ``init_net`` (its default ``--init_type kaiming``): Kaiming-normal weights
    (fan_in, gain sqrt 2) and zero biases on every Linear layer of ``module``."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_normal_(layer.weight, a=0, mode="fan_in")
            nn.init.zeros_(layer.bias)


def teacher_target(teacher: nn.ModuleDict, modalities: tuple[str, ...], state: State) -> tuple[Tensor, Tensor]:
    """MMIN's imagination target and where it counts, both (B, M*L), training only.

    The teacher encodes the complete inputs with the *available* modalities zeroed: the true
    embedding for missing slots, the teacher's response to a zero input for available ones. A
    slot whose modality the data itself lacks has no target (weight 0).
    """
    targets = state.targets
    parts, weights = [], []
    with torch.no_grad():
        for i, m in enumerate(modalities):
            x = targets.inputs[m]
            missing = ~state.present[:, i]
            keep = missing.view(-1, *([1] * (x.dim() - 1)))
            only_missing = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))
            rep = teacher[m](only_missing, targets.lengths.get(m))
            parts.append(rep)
            usable = state.present[:, i] | targets.available[:, i]
            weights.append(usable[:, None].expand_as(rep).to(rep.dtype))
    return torch.cat(parts, -1), torch.cat(weights, -1)


class TeacherImaginationContract:
    """What the generic contract test needs of MMIN's and IF-MMIN's imagination slots: the
    latents fuser they read from, and no pretrained teacher (the test has no stage 1)."""

    @staticmethod
    def contract_partners() -> dict:
        return {"fuser": {"type": "baselines:mmin_latents"}}

    @staticmethod
    def example_params(workdir: Any) -> dict:
        return {"pretrained_teacher": False}


class MMINImagination(TeacherImaginationContract, Slot):
    """MMIN's imagination: forward and backward cascade residual AEs, frozen teacher.

    The teacher is a copy of ``model.encoders`` (built by the core's ``build_encoder``). Its
    weights must be copied from the pretraining stage by ``init_from`` (map ``encoders.`` to
    ``reconstructor.teacher.``)
    and frozen with ``freeze: [reconstructor.teacher]``; with ``pretrained_teacher: true``
    (default) training refuses to start with a teacher that was never loaded.

    Training only: the teacher encodes the complete inputs with the *available* modalities
    zeroed (the reference's target: the true embedding for missing slots, the teacher's
    response to a zero input for available ones); ``mse`` is the MSE between the forward
    cascade's output and that target; ``cycle`` is the MSE between the backward cascade's
    output and the observed (detached) embedding. A slot whose modality is absent from the
    data itself has no target and is left out of ``mse``.

    Every absent modality's representation becomes its part of the imagined embedding (and
    is marked in ``state.represented``), so fusers other than ``mmin_latents`` use the
    imagination too; ``mmin_latents`` reads the bottlenecks instead, as MMIN does.

    Parameters:
        layers: encoder layer sizes of each autoencoder block, the last one being the bottleneck
        blocks: residual autoencoder blocks in each cascade
        dropout: dropout probability between layers
        share_weights: the backward cascade reuses the forward one's weights (MMIN's
            --share_weight)
        pretrained_teacher: refuse to train while the teacher was never loaded from a
            pretraining stage
        init: initialisation of the cascades' Linear layers: torch (PyTorch's default) or
            kaiming (the reference's init_net: Kaiming-normal weights, zero biases; the cascade's
            output starts orders of magnitude too large, see the plugin README)
    """

    aux_losses = ("mse", "cycle")
    needs_targets = True

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, build_encoder: Any,
                 layers: LayerSizes = (256, 128, 64),
                 blocks: Size = 5, dropout: Dropout = 0.0, share_weights: bool = False,
                 pretrained_teacher: bool = True, init: Literal["torch", "kaiming"] = "torch"):
        super().__init__()
        layers = check_layers(layers, blocks, "reconstructor 'mmin_imagination'")
        self.modalities = tuple(modalities)
        dim = latent_dim * len(self.modalities)
        self.forward_ae = CascadeResidualAE(dim, layers, blocks, dropout)
        # MMIN's --share_weight ties the backward cascade to the forward one
        self.backward_ae = self.forward_ae if share_weights else CascadeResidualAE(dim, layers, blocks, dropout)
        if init == "kaiming":
            kaiming_init(self.forward_ae)
            kaiming_init(self.backward_ae)
        self.latent_size = self.forward_ae.latent_dim
        self.teacher = nn.ModuleDict({m: build_encoder(m) for m in self.modalities})
        self.teacher.eval()
        self.pretrained_teacher = pretrained_teacher
        # set when the teacher's weights arrive through load_state_dict (init_from or resume)
        self.register_buffer("teacher_loaded", torch.zeros((), dtype=torch.bool))
        guard_pretrained_load(self.teacher, self.teacher_loaded, "reconstructor 'mmin_imagination'",
                              "the teacher", "make model.reconstructor.teacher list the same encoder "
                              "blocks (types and parameters) as model.encoders of the pretraining stage")

    def train(self, mode: bool = True) -> "MMINImagination":
        super().train(mode)
        self.teacher.eval()  # the teacher is a fixed target: no dropout, ever
        return self

    def _teacher_target(self, state: State) -> tuple[Tensor, Tensor]:
        return teacher_target(self.teacher, self.modalities, state)

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        observed = torch.cat([state.reps[m] for m in self.modalities], -1)
        imagined, latents = self.forward_ae(observed)
        extras = {**state.extras, LATENTS: latents, IMAGINED: imagined}
        # an absent modality's representation becomes its imagined one, for any fuser
        reps = dict(state.reps)
        for i, (m, guess) in enumerate(zip(self.modalities, imagined.chunk(len(self.modalities), -1))):
            reps[m] = torch.where(state.present[:, i:i + 1], reps[m], guess)
        losses: dict[str, Tensor] = {}
        if state.targets is not None:
            if self.pretrained_teacher and not bool(self.teacher_loaded):
                raise MmtkError(
                    "reconstructor 'mmin_imagination': the teacher was never loaded from a "
                    "pretraining stage; add to this stage init_from: {stage: NAME, map: "
                    "{\"encoders.\": [\"encoders.\", \"reconstructor.teacher.\"]}} and freeze: "
                    "[reconstructor.teacher] (or set pretrained_teacher: false to train against "
                    "a random teacher on purpose)")
            target, weight = self._teacher_target(state)
            sq = (imagined.float() - target.float()) ** 2
            losses["mse"] = (sq * weight).sum() / weight.sum().clamp_min(1.0)
            cycled, _ = self.backward_ae(imagined)
            losses["cycle"] = nn.functional.mse_loss(cycled.float(), observed.detach().float())
        return replace(state, reps=reps, represented=torch.ones_like(state.present),
                       extras=extras), losses


class MMINLatents(Fuser):
    """MMIN's classifier input: the imagination's block bottlenecks, concatenated.

    Reads what ``mmin_imagination`` left in ``state.extras``; ``dim`` must equal that
    reconstructor's blocks × last layer size (5 × 64 = 320 by default).

    Parameters:
        dim: size of the imagination's latents: its blocks x last layer size (5 x 64 = 320 by
            default)
    """

    def __init__(self, dim: Size = 320):
        super().__init__()
        if dim <= 0:
            raise MmtkError(f"fuser 'mmin_latents': dim must be positive, got {dim}")
        self.out_dim = dim

    @staticmethod
    def contract_partners() -> dict:
        return {"reconstructor": {"type": "baselines:mmin_imagination", "pretrained_teacher": False}}

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        latents = state.extras.get(LATENTS)
        if latents is None:
            raise MmtkError("fuser 'mmin_latents' found no MMIN latents in the state: it needs "
                            "model.reconstructor: {type: mmin_imagination}")
        if latents.shape[-1] != self.out_dim:
            raise MmtkError(f"fuser 'mmin_latents' expects {self.out_dim}-d latents (its 'dim') "
                            f"but the reconstructor produced {latents.shape[-1]}-d ones (blocks × "
                            "last layer size); set model.fuser.dim to match")
        state.fused = latents
        return state, {}
