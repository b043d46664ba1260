"""The 12 SparkNet classes, in the order of the classifier's outputs."""

LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
          "_unknown_", "_silence_"]
KEYWORDS = LABELS[:10]
UNKNOWN = LABELS.index("_unknown_")
SILENCE = LABELS.index("_silence_")
