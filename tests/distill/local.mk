# tests/distill: `slmops distill` (issue 9, section 2): the teacher's data set and its
# filters, the kd method's loss against a numpy oracle, and logit KD beating
# sequence-level distillation (acceptance 2); a remote teacher over HTTP (acceptance 3);
# a student's vocabulary cut to its data set.
TESTS += tests/distill/distill-data.sh tests/distill/kd-loss.sh tests/distill/kd-pays.sh \
	tests/distill/remote-faults.sh tests/distill/remote-servers.sh tests/distill/logits-cache.sh \
	tests/distill/vocab-cut.sh
EXTRA_DIST += tests/distill/distill-data.sh tests/distill/kd-loss.sh \
	tests/distill/kd-pays.sh tests/distill/kd_oracle.py \
	tests/distill/data/story-prompts.txt tests/distill/remote-faults.sh tests/distill/remote-servers.sh \
	tests/distill/logits-cache.sh tests/distill/vocab-cut.sh \
	tests/distill/fault_server.py
