"""Operations a person runs on a root, apart from any pipeline run: the champion record rolled back or
repaired (rollback.py) and old checkpoints cleaned (gc.py). Built on the shared library; the CLI calls
them."""
