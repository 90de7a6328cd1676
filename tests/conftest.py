import os

# Tests run offline with one torch thread: on a busy 2-core machine two threads can be 10x slower.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
