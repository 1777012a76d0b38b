# docs build fragment.
