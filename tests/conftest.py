"""Shared test set-up."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The test tensors are small: one intra-op thread is fastest, and avoids OpenMP spinning
    when the two cores are shared (pytest -n 2)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
