#!/usr/bin/env python3
"""Trains the pump-condition classifier at image build time.

    python3 train.py data.csv model.joblib

Reads the bundled CSV (four numeric features, a `condition` label), holds out
a quarter of it to check the model, refits on everything and saves a bundle
(the fitted pipeline plus the feature and class names the API needs) with
joblib. Fails the build if held-out accuracy is implausibly low, so a broken
data set or library never ships silently.
"""
import csv
import sys

import joblib
import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MIN_ACCURACY = 0.85


def load(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        features, label = header[:-1], header[-1]
        x, y = [], []
        for row in reader:
            x.append([float(v) for v in row[:-1]])
            y.append(row[-1])
    return features, label, np.array(x, dtype=float), np.array(y)


def main(data_path, model_path):
    features, label, x, y = load(data_path)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    print(f"{len(y)} rows, {len(features)} features, classes {sorted(set(y))}; held-out accuracy {accuracy:.3f}")
    if accuracy < MIN_ACCURACY:
        sys.exit(f"held-out accuracy {accuracy:.3f} is below {MIN_ACCURACY}: refusing to save the model")
    model.fit(x, y)
    bundle = {
        "model": model,
        "features": features,
        "label": label,
        "classes": [str(c) for c in model.classes_],
        "holdout_accuracy": accuracy,
        "sklearn_version": sklearn.__version__,
    }
    joblib.dump(bundle, model_path)
    print(f"saved {model_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: train.py DATA.csv MODEL.joblib")
    main(sys.argv[1], sys.argv[2])
