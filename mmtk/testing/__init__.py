"""The registry-wide contract test, for mmtk's own plugins and for yours, in one line.

In your plugin's test suite (``pip install mmtk[test]``, or mmtk plus pytest)::

    from mmtk.testing import contract_test

    test_contract = contract_test("myplugin")      # entry-point name(s); none = every plugin

pytest then runs, for each component your plugin registers, the checks of its kind:

- model parts (encoder, aligner, reconstructor, refiner, fuser, head), inside a real
  pipeline (basic MLP encoders, concat fuser and MLP head around it): ``train_step`` —
  training forward on a batch where some samples have one modality only, finite logits and
  auxiliary losses, declared loss names, backward, **a gradient on every trainable
  parameter** (the failure names those without one) and finite gradients; ``absent_modality``
  — one modality absent for every sample, in training and evaluation, gives no NaN;
- encoders also: ``encoder_output`` — ``(B, latent_dim)`` — and ``padding`` — frames past a
  sample's length do not change its representation;
- reconstructors that are input imputers (``mmtk.InputImputer``) also: ``input_imputer`` —
  after ``fit``, ``impute`` leaves observed inputs exactly as they are, marks what it fills
  in, produces finite values, and a model reloaded from the state dict imputes the same;
- ``loss``, ``metric``, ``optimizer``, ``scheduler``, ``missing`` and ``dataset`` components:
  the contract of their kind (see CONTRIBUTING.md);
- every component: ``parameter_docs`` — its ``Parameters:`` docstring section documents only
  real parameters;
- every selected plugin: ``load`` — it loaded. A plugin that fails to import, is disabled
  or is not installed makes this test fail rather than leaving nothing to run.

A component whose constructor needs more than the context values provides a static
``example_params(workdir) -> dict``; one that needs partners in other slots provides
``contract_partners() -> {slot: {"type": ..., ...}}``; an encoder with its own input format
provides ``example_input(n, in_dim) -> (x, lengths)``. A parameter that legitimately gets no
gradient from one training step (e.g. a teacher trained in an earlier stage and frozen by the
recipe) is allowed explicitly, with the reason::

    test_contract = contract_test("myplugin", allow_no_gradient={
        "reconstructor/myplugin:distill": {"teacher.": "trained in stage 1, frozen in stage 2"}})

The checks are plain functions raising ``AssertionError`` (:func:`run_case`); only
:func:`contract_test` needs pytest.
"""
from __future__ import annotations

from .cases import Case, contract_cases, contract_test, run_case
from .common import CHECKS, IN_DIMS, LATENT_DIM, MODALITIES, NUM_CLASSES, ContractSkip, NoGradient
from .model_checks import build_pipeline, make_batch

__all__ = ["CHECKS", "Case", "ContractSkip", "IN_DIMS", "LATENT_DIM", "MODALITIES", "NUM_CLASSES",
           "NoGradient", "build_pipeline", "contract_cases", "contract_test", "make_batch", "run_case"]
