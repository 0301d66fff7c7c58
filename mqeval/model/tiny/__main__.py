"""`python -m mqeval.model.tiny tiny://<name>`: build one tiny model into the cache (used by ranks > 0)."""

import sys

from mqeval.model.tiny import materialize

if __name__ == "__main__":
    materialize(sys.argv[1])
