"""``warden demo``: train a small CNN on digits, save it safely, assess it, write the reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from warden.assess import Suite, run
from warden.cli._common import err, out, progress_bars, user_errors
from warden.cli.assess import summary_table, write_and_tell
from warden.data.bundled import load_digits
from warden.models.loading import load_model, save_torch_model
from warden.models.zoo import TrainConfig, train_model


def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the model and reports.")
    ] = Path("warden-demo"),
    seed: Annotated[int, typer.Option(help="Seed for the split, training and attacks.")] = 0,
) -> None:
    """The main job on the bundled example: train, save safely, assess, report."""
    with user_errors():
        data = load_digits()
        train, test = data.split(0.25, seed=seed)
        err.print(f"training digits-cnn on {len(train)} digits (seed {seed})", highlight=False)
        trained = train_model(train, config=TrainConfig(seed=seed))
        spec = save_torch_model(trained, out_dir / "model")
        err.print(f"  saved as safetensors + spec: {spec}", highlight=False)
        model = load_model(spec)
        suite = Suite.named("quick")
        err.print(f"assessing on {len(test)} held-out digits, suite {suite.name}", highlight=False)
        with progress_bars() as progress:
            result = run(suite, model, test, progress=progress, model_info={"source": str(spec)})
        paths = write_and_tell(result, out_dir)
        out.print(summary_table(result))
        out.print(f"overall grade: {result.scorecard.overall}")
        for kind, path in paths.items():
            out.print(f"{kind}: {path}", highlight=False)
