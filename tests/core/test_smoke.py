"""The baseline recipe trains end to end on the embedded data (tiny)."""
import pytest


@pytest.mark.slow
def test_baseline_recipe_runs(run_tiny):
    from conftest import RECIPES
    res = run_tiny(RECIPES / "baseline.yaml")
    test = res["summary"]["test"]
    assert set(test) == {"a", "t", "v", "at", "av", "tv", "atv", "mean"}
