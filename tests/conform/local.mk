# tests/conform build fragment.
