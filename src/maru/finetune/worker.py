"""``python -m maru.finetune.worker REQUEST.json``: what each torchrun process runs."""

import sys

from .run import run_request

if __name__ == "__main__":
    run_request(sys.argv[1])
