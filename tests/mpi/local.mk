# tests/mpi: data-parallel finetune over MPI (issue 13): 1 vs 2 ranks, resuming across
# rank counts, dead and mismatched ranks. Skipped (77) when MPI is not built.
TESTS += tests/mpi/parity.sh tests/mpi/faults.sh
EXTRA_DIST += tests/mpi/lib.sh tests/mpi/parity.sh tests/mpi/faults.sh
AM_TESTS_ENVIRONMENT += MPIRUN='$(MPIRUN)'; export MPIRUN;
