#!/usr/bin/env python3
"""Writes data.csv: a synthetic, learnable 4-feature / 3-class data set.

Readings from an imaginary pump (temperature in degrees C, vibration in mm/s,
pressure in bar, motor current in A) labelled with its condition: normal, worn
or failing. Each class is a Gaussian blob with its own mean and spread, so a
linear model separates them well but not perfectly. Standard library only and
seeded, so running it again gives the same file:

    python3 gen_data.py > data.csv
"""
import csv
import random
import sys

FEATURES = ["temperature", "vibration", "pressure", "current"]
# class -> (means, standard deviations), one pair per feature
CLASSES = {
    "normal": ([60.0, 2.0, 6.0, 10.0], [4.0, 0.6, 0.5, 1.0]),
    "worn": ([70.0, 4.5, 5.4, 12.0], [5.0, 0.9, 0.6, 1.2]),
    "failing": ([82.0, 7.5, 4.5, 14.5], [6.0, 1.4, 0.8, 1.5]),
}
ROWS_PER_CLASS = 120


def main() -> None:
    rng = random.Random(20240601)
    rows = []
    for label, (means, sds) in CLASSES.items():
        for _ in range(ROWS_PER_CLASS):
            rows.append([round(rng.gauss(m, s), 3) for m, s in zip(means, sds)] + [label])
    rng.shuffle(rows)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(FEATURES + ["condition"])
    out.writerows(rows)


if __name__ == "__main__":
    main()
