# bench build fragment.
