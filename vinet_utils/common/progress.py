"""Progress bars: ``tqdm.auto`` (widgets in JupyterLab), or plain text bars when
``VINET_PLAIN_PROGRESS=1``, which headless runs (papermill, nbval) set so that the
saved notebooks show each bar's final state instead of an unrendered widget."""

import os

if os.environ.get("VINET_PLAIN_PROGRESS") == "1":
    from tqdm.std import tqdm
else:
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
