# tests/recipes: the demo's parts that need no model (issue 9, section 4): the task
# generator's split, the teacher fetcher's checks (offline) and the closing table.
TESTS += tests/recipes/task-split.sh tests/recipes/fetch-teacher.sh tests/recipes/demo-table.sh
EXTRA_DIST += tests/recipes/task-split.sh tests/recipes/fetch-teacher.sh \
	tests/recipes/demo-table.sh
