"""Gradual unfreezing (treatments/gradual_unfreezing.py): the new layers train first, then the
copied blocks are unfrozen top-down, one more per stage, in as many steps as AnB+ trains."""

import os
import subprocess

import numpy as np
from test_recipes import fit_stages_on_random_images, small_base

from helpers.cli import REPO
from kerastransfer import config, surgery, training, treatments

RECIPE = treatments.get("gradual_unfreezing")


def test_it_is_a_recipe_of_the_table_that_fine_tunes_every_copied_block():
    assert "gradual_unfreezing" in treatments.RECIPES
    assert "gradual_unfreezing" in treatments.TRANSFER_MODES
    assert treatments.display_name("gradual_unfreezing") == "AnB+gradual"
    assert treatments.display_name("gradual_unfreezing", "A") == "BnA+gradual"
    assert RECIPE.fine_tuned and not RECIPE.frozen and RECIPE.tunes_every_copied_block


def test_its_name_appears_in_its_own_module_only():
    found = subprocess.run(
        ["grep", "-rl", "--include=*.py", "gradual_unfreezing", "kerastransfer"],
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout.split()
    assert found == [os.path.join("kerastransfer", "treatments", "gradual_unfreezing.py")]


def test_stages_unfreeze_one_block_more_each_in_as_many_steps_as_anb_plus():
    solver = training.Solver(learning_rate=0.01, momentum=0.9, total_steps=200, eval_every=10)
    stages = RECIPE.stages(solver, config.SolverConfig(), 3, cuts=None)
    assert [(s.name, s.trains, s.solver.total_steps) for s in stages] == [
        ("head", "the new layers above block 3", 50),
        ("from_block3", "block 3 and above", 50),
        ("from_block2", "blocks 2..3 and above", 50),
        ("from_block1", "blocks 1..3 and above", 50),
    ]
    assert {s.solver.learning_rate for s in stages} == {0.01}  # the fine-tuning rate
    # Fewer segments than n + 1: several blocks a stage, every step still trained.
    short = RECIPE.stages(solver.__class__(0.01, 0.9, 30, 10), config.SolverConfig(), 7, None)
    assert [(s.name, s.solver.total_steps) for s in short] == [
        ("head", 10),
        ("from_block5", 10),
        ("from_block1", 10),
    ]


def test_each_stage_trains_the_blocks_it_names(tmp_path):
    """Fit the stages for real on random images: after the head stage only the layers above
    n changed; each later stage also changes the block it unfroze; every layer trains at the
    end, and the record's stages and history cover all of them in order."""
    base = small_base()
    n = 3
    model = surgery.transfer(base, n, "frozen", num_classes=4)
    solver = training.Solver(learning_rate=0.01, momentum=0.9, total_steps=16, eval_every=2)
    stages = RECIPE.stages(solver, config.SolverConfig(), n, cuts=None)
    outcome, snapshots = fit_stages_on_random_images(model, stages, tmp_path)
    assert outcome.ok and outcome.steps == 16
    assert [step for step, _ in outcome.val_history] == list(range(2, 17, 2))
    assert [s["stage"] for s in outcome.stages] == [s.name for s in stages]
    blocks = surgery.block_numbers(base)
    above = {
        v.path.split("/")[0] for v in model.variables if blocks.get(v.path.split("/")[0], n + 1) > n
    }
    trained_by = []
    for before, after in zip(snapshots, [*snapshots[1:], None]):
        if after is None:
            after = {v.path: v.numpy() for v in model.variables}
        trained_by.append(
            {path.split("/")[0] for path in before if not np.array_equal(before[path], after[path])}
        )
    weighted = {name for name in blocks if base.get_layer(name).weights}
    assert trained_by[0] == above  # the head stage: the new layers above n only
    for stage, lowest in zip(trained_by[1:], (3, 2, 1)):
        unfrozen = {name for name in weighted if lowest <= blocks[name] <= n}
        assert stage == above | unfrozen
    assert all(layer.trainable for layer in model.layers)
    assert not os.path.exists(tmp_path / "run" / "head")  # earlier stages' files are gone
