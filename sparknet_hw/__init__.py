"""SparkNet keyword spotting to a verified FPGA accelerator."""
__version__ = "0.1.0"
