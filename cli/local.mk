# cli build fragment.
