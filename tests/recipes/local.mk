# tests/recipes: the demo's parts that need no model (issue 9, section 4): the task
# generator's split and the teacher fetcher's checks, offline.
TESTS += tests/recipes/task-split.sh tests/recipes/fetch-teacher.sh
EXTRA_DIST += tests/recipes/task-split.sh tests/recipes/fetch-teacher.sh
