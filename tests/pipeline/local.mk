# tests/pipeline: `slmops pipeline` (issue 9, section 3): the recipe schema against its
# validator, stage caching, resume after SIGKILL, and the report in headless Chromium.
TESTS += tests/pipeline/recipe-schema.sh tests/pipeline/pipeline-cache.sh \
	tests/pipeline/pipeline-resume.sh tests/pipeline/report-page.sh
EXTRA_DIST += tests/pipeline/recipe-schema.sh tests/pipeline/pipeline-cache.sh \
	tests/pipeline/pipeline-resume.sh tests/pipeline/schema_verdict.py \
	tests/pipeline/report_page.py tests/pipeline/report-page.sh \
	tests/pipeline/recipes/invalid/bad-recipe-name.err \
	tests/pipeline/recipes/invalid/bad-recipe-name.json \
	tests/pipeline/recipes/invalid/bench-reps-zero.err \
	tests/pipeline/recipes/invalid/bench-reps-zero.json \
	tests/pipeline/recipes/invalid/compare-extra-key.err \
	tests/pipeline/recipes/invalid/compare-extra-key.json \
	tests/pipeline/recipes/invalid/distill-alpha-range.err \
	tests/pipeline/recipes/invalid/distill-alpha-range.json \
	tests/pipeline/recipes/invalid/distill-kd-loss.err \
	tests/pipeline/recipes/invalid/distill-kd-loss.json \
	tests/pipeline/recipes/invalid/distill-no-student.err \
	tests/pipeline/recipes/invalid/distill-no-student.json \
	tests/pipeline/recipes/invalid/distill-train-array.err \
	tests/pipeline/recipes/invalid/distill-train-array.json \
	tests/pipeline/recipes/invalid/distill-two-students.err \
	tests/pipeline/recipes/invalid/distill-two-students.json \
	tests/pipeline/recipes/invalid/eval-bad-label.err \
	tests/pipeline/recipes/invalid/eval-bad-label.json \
	tests/pipeline/recipes/invalid/eval-no-models.err \
	tests/pipeline/recipes/invalid/eval-no-models.json \
	tests/pipeline/recipes/invalid/eval-nothing-to-measure.err \
	tests/pipeline/recipes/invalid/eval-nothing-to-measure.json \
	tests/pipeline/recipes/invalid/finetune-schedule.err \
	tests/pipeline/recipes/invalid/finetune-schedule.json \
	tests/pipeline/recipes/invalid/inputs-not-string.err \
	tests/pipeline/recipes/invalid/inputs-not-string.json \
	tests/pipeline/recipes/invalid/missing-recipe.err \
	tests/pipeline/recipes/invalid/missing-recipe.json \
	tests/pipeline/recipes/invalid/model-not-ref.err \
	tests/pipeline/recipes/invalid/model-not-ref.json \
	tests/pipeline/recipes/invalid/package-adapter-not-ref.err \
	tests/pipeline/recipes/invalid/package-adapter-not-ref.json \
	tests/pipeline/recipes/invalid/quant-not-string.err \
	tests/pipeline/recipes/invalid/quant-not-string.json \
	tests/pipeline/recipes/invalid/quantize-no-quant.err \
	tests/pipeline/recipes/invalid/quantize-no-quant.json \
	tests/pipeline/recipes/invalid/stage-bad-name.err \
	tests/pipeline/recipes/invalid/stage-bad-name.json \
	tests/pipeline/recipes/invalid/stage-bad-type.err \
	tests/pipeline/recipes/invalid/stage-bad-type.json \
	tests/pipeline/recipes/invalid/stage-no-type.err \
	tests/pipeline/recipes/invalid/stage-no-type.json \
	tests/pipeline/recipes/invalid/stages-empty.err \
	tests/pipeline/recipes/invalid/stages-empty.json \
	tests/pipeline/recipes/invalid/stages-object.err \
	tests/pipeline/recipes/invalid/stages-object.json \
	tests/pipeline/recipes/invalid/threads-real.err \
	tests/pipeline/recipes/invalid/threads-real.json \
	tests/pipeline/recipes/invalid/unknown-stage-key.err \
	tests/pipeline/recipes/invalid/unknown-stage-key.json \
	tests/pipeline/recipes/invalid/unknown-top-key.err \
	tests/pipeline/recipes/invalid/unknown-top-key.json \
	tests/pipeline/recipes/invalid/wrong-version.err \
	tests/pipeline/recipes/invalid/wrong-version.json \
	tests/pipeline/recipes/links/duplicate-stage-name.err \
	tests/pipeline/recipes/links/duplicate-stage-name.json \
	tests/pipeline/recipes/links/ref-later-stage.err \
	tests/pipeline/recipes/links/ref-later-stage.json \
	tests/pipeline/recipes/links/ref-unknown-artifact.err \
	tests/pipeline/recipes/links/ref-unknown-artifact.json \
	tests/pipeline/recipes/links/ref-unknown-input.err \
	tests/pipeline/recipes/links/ref-unknown-input.json \
	tests/pipeline/recipes/links/stage-named-inputs.err \
	tests/pipeline/recipes/links/stage-named-inputs.json \
	tests/pipeline/recipes/valid/distill-student-file.json \
	tests/pipeline/recipes/valid/eval-task-only.json \
	tests/pipeline/recipes/valid/everything.json \
	tests/pipeline/recipes/valid/minimal-quantize.json
