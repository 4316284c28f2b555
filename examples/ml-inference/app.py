"""Pump-condition classifier served over HTTP.

    GET  /health   -> {"status": "ok"} once the model is loaded
    POST /predict  {"temperature": 71.2, "vibration": 4.4, "pressure": 5.5, "current": 12.1}
                   -> {"condition": "worn", "probabilities": {...}, ...}

Bad input (a missing or extra field, a non-number, a value out of range) is
answered with 422 and FastAPI's usual error body. The model is loaded once at
start-up from MODEL_PATH (trained by train.py during the image build); the
app writes nothing to disk, so it runs with a read-only root filesystem.
"""
import os

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, Field

MODEL_PATH = os.environ.get("MODEL_PATH", "/app/model.joblib")
BUNDLE = joblib.load(MODEL_PATH)
MODEL = BUNDLE["model"]
FEATURES = BUNDLE["features"]
CLASSES = BUNDLE["classes"]


class Reading(BaseModel):
    """One set of sensor readings; the ranges reject NaN, infinities and nonsense."""

    temperature: float = Field(..., ge=-50, le=200, description="degrees C")
    vibration: float = Field(..., ge=0, le=100, description="mm/s RMS")
    pressure: float = Field(..., ge=0, le=50, description="bar")
    current: float = Field(..., ge=0, le=200, description="A")

    class Config:
        extra = "forbid"


class Prediction(BaseModel):
    condition: str
    class_index: int
    probabilities: dict
    model: dict


app = FastAPI(title="pump-condition classifier", version="1.0")


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/predict", response_model=Prediction)
def predict(reading: Reading):
    row = np.array([[getattr(reading, name) for name in FEATURES]], dtype=float)
    probs = MODEL.predict_proba(row)[0]
    best = int(np.argmax(probs))
    return {
        "condition": CLASSES[best],
        "class_index": best,
        "probabilities": {c: round(float(p), 6) for c, p in zip(CLASSES, probs)},
        "model": {
            "type": type(MODEL[-1]).__name__,
            "features": FEATURES,
            "holdout_accuracy": BUNDLE["holdout_accuracy"],
            "sklearn_version": BUNDLE["sklearn_version"],
        },
    }
