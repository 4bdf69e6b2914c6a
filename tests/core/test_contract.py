"""Every component of mmtk's built-in plugins honours its kind's contract: the same one line
a third-party plugin writes (see mmtk/testing.py for what is checked)."""
from mmtk.testing import contract_test

test_contract = contract_test(distribution="mmtk", allow_no_gradient={
    "reconstructor/baselines:mmin_imagination": {
        "teacher.": "MMIN's teacher encoders are trained in the recipe's first stage and frozen "
                    "(freeze: [reconstructor.teacher]) while the imagination module trains"},
})
