# recipes/: the demo (issue 9, section 4): the teacher fetcher, the task generator, the
# demo with the plain verbs and its closing table, and the recipe for `slmops pipeline`.
EXTRA_DIST += recipes/fetch-teacher.sh recipes/capitals.py recipes/demo.sh \
	recipes/demo-table.py recipes/demo.json \
	recipes/capitals/train.prompts.jsonl recipes/capitals/train.task.jsonl \
	recipes/capitals/heldout.task.jsonl
