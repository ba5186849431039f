"""Read a gankit run's TensorBoard event files back with TensorBoard's own reader.

Prints, as JSON, what `tensorboard.backend.event_processing.event_accumulator` finds in
RUN/tensorboard: every scalar tag with its (step, value) pairs, every image tag with its
(step, width, height) and every histogram tag with its (step, number of values, min, max).
The CLI test `tensorboard_files_read_back` (crates/gankit-cli/tests/records.rs) compares
that with the run's metrics.csv; the `tensorboard` package is needed only here, never by
gankit.

    venv/bin/pip install tensorboard
    venv/bin/python scripts/read_tensorboard.py runs/NAME/tensorboard
"""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator


def main(logdir):
    acc = event_accumulator.EventAccumulator(
        logdir, size_guidance={"scalars": 0, "images": 0, "histograms": 0}
    )
    acc.Reload()
    tags = acc.Tags()
    out = {
        "scalars": {
            t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]
        },
        "images": {
            t: [[e.step, e.width, e.height] for e in acc.Images(t)] for t in tags["images"]
        },
        "histograms": {
            t: [
                [e.step, e.histogram_value.num, e.histogram_value.min, e.histogram_value.max]
                for e in acc.Histograms(t)
            ]
            for t in tags["histograms"]
        },
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
